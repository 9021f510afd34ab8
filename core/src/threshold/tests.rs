//! Table-driven tests with exact error text, and property tests for round trips.

use proptest::prelude::*;

use super::*;
use crate::metrics::{Unit, lookup};

fn expr(text: &str) -> ThresholdExpr {
    text.parse().unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

#[test]
fn expressions_parse_into_parts() {
    let e = expr("p(99.9) <= 250ms");
    assert_eq!(e.aggregation, Aggregation::Percentile(99.9));
    assert_eq!(e.op, Op::Le);
    assert_eq!(
        e.bound,
        Bound {
            value: 250.0,
            unit: Some(TimeUnit::Ms)
        }
    );
    assert!((e.bound.base() - 0.25).abs() < 1e-15);
    assert_eq!(expr("min>=0.99"), expr("  min >= 0.99 "));
    assert_eq!(
        expr("count == 0").bound,
        Bound {
            value: 0.0,
            unit: None
        }
    );
    assert_eq!(expr("max < 1.5s").bound.base(), 1.5);
    assert_eq!(expr("avg > 2m").bound.base(), 120.0);
    assert_eq!(expr("med < 1h").bound.base(), 3600.0);
    assert_eq!(expr("rate < 5").aggregation, Aggregation::Rate);
    assert_eq!(
        expr("p(100) < 10us").aggregation,
        Aggregation::Percentile(100.0)
    );
}

/// (expression, expected error, expected span as the text it covers)
const SYNTAX_ERRORS: &[(&str, &str, &str)] = &[
    (
        "",
        "empty threshold expression; expected `AGG OP VALUE`, such as `p(95) < 2s`",
        "",
    ),
    (
        "   ",
        "empty threshold expression; expected `AGG OP VALUE`, such as `p(95) < 2s`",
        "   ",
    ),
    (
        "< 2s",
        "missing aggregation before `<`; expected one of: min, max, avg, med, p(N), count, rate",
        "<",
    ),
    (
        "p95 < 2s",
        "unknown aggregation `p95`; expected one of: min, max, avg, med, p(N), count, rate; did you mean `p(95)`?",
        "p95",
    ),
    (
        "mni < 2s",
        "unknown aggregation `mni`; expected one of: min, max, avg, med, p(N), count, rate; did you mean `min`?",
        "mni",
    ),
    (
        "mean < 2s",
        "unknown aggregation `mean`; expected one of: min, max, avg, med, p(N), count, rate",
        "mean",
    ),
    ("p(95 < 2s", "missing `)` after `p(95 < 2s`", "p(95 < 2s"),
    (
        "p() < 2s",
        "percentile must be a number, such as p(95), but is ``",
        "",
    ),
    (
        "p(x) < 2s",
        "percentile must be a number, such as p(95), but is `x`",
        "x",
    ),
    (
        "p(0) < 2s",
        "percentile must be more than 0 and at most 100, but is 0",
        "0",
    ),
    (
        "p( 100.5 ) < 2s",
        "percentile must be more than 0 and at most 100, but is 100.5",
        "100.5",
    ),
    (
        "p(95) 2s",
        "missing comparison operator after `p(95)`; expected one of: <, <=, >, >=, ==",
        "2s",
    ),
    (
        "max",
        "missing comparison operator after `max`; expected one of: <, <=, >, >=, ==",
        "",
    ),
    (
        "p(95) = 2s",
        "unknown comparison operator `=`; expected one of: <, <=, >, >=, ==",
        "=",
    ),
    (
        "p(95) => 2s",
        "unknown comparison operator `=>`; expected one of: <, <=, >, >=, ==",
        "=>",
    ),
    (
        "p(95) !=2s",
        "unknown comparison operator `!=`; expected one of: <, <=, >, >=, ==",
        "!=",
    ),
    (
        "p(95) <",
        "missing bound after `<`; expected a number or a duration, such as 2s",
        "<",
    ),
    (
        "p(95) < fast",
        "bound must be a number or a duration, such as 2s, but is `fast`",
        "fast",
    ),
    (
        "p(95) < -1s",
        "bound must be a number or a duration, such as 2s, but is `-1s`",
        "-1s",
    ),
    (
        "p(95) < 1.s",
        "bound must be a number or a duration, such as 2s, but is `1.s`",
        "1.s",
    ),
    (
        "p(95) < 1e3",
        "bound must be a number or a duration, such as 2s, but is `1e3`",
        "1e3",
    ),
    (
        "p(95) < 2x",
        "unknown unit `x` in `2x`; expected one of: us, ms, s, m, h",
        "2x",
    ),
    ("p(95) < 2 s", "unexpected `s` after the bound", "s"),
    (
        "p(95) < 2s or max < 5s",
        "unexpected `or max < 5s` after the bound",
        "or max < 5s",
    ),
];

#[test]
fn syntax_errors_have_exact_text_and_span() {
    for (text, message, at) in SYNTAX_ERRORS {
        let e = text.parse::<ThresholdExpr>().expect_err(text);
        assert_eq!(e.to_string(), *message, "{text:?}");
        assert_eq!(&text[e.span.clone()], *at, "span of {text:?}");
        assert!(!e.in_key);
    }
}

/// (key, expression, expected error, span text)
const UNIT_ERRORS: &[(&str, &str, &str, &str)] = &[
    (
        "connect.media",
        "p(95) < 2",
        "connect.media is a duration: write the bound with a unit, such as 2s",
        "2",
    ),
    (
        "latency.oneway",
        "max < 0.5",
        "latency.oneway is a duration: write the bound with a unit, such as 2s",
        "0.5",
    ),
    (
        "continuity",
        "min >= 99s",
        "continuity is a ratio: write the bound as a plain number, such as 0.99",
        "99s",
    ),
    (
        "reconnects",
        "max < 1m",
        "reconnects is a count: write the bound as a plain number, such as 1",
        "1m",
    ),
    (
        "connect.media",
        "count > 10s",
        "`count` takes a plain number, such as 10, not a duration",
        "10s",
    ),
    (
        "gap",
        "rate < 1s",
        "`rate` is per second of the run: write the bound as a plain number, such as 5",
        "1s",
    ),
];

#[test]
fn bounds_must_match_the_metric_unit() {
    for (key, text, message, at) in UNIT_ERRORS {
        let e = ThresholdExpr::parse_for(text, lookup(key).unwrap()).expect_err(text);
        assert_eq!(e.to_string(), *message, "{key} {text:?}");
        assert_eq!(&text[e.span.clone()], *at, "span of {text:?}");
    }
    for (key, text) in [
        ("connect.media", "count > 10"),
        ("gap", "rate < 0.5"),
        ("continuity", "min >= 1"),
        ("connect.ice", "max < 3s"),
    ] {
        ThresholdExpr::parse_for(text, lookup(key).unwrap())
            .unwrap_or_else(|e| panic!("{key} {text}: {e}"));
    }
}

#[test]
fn keys_parse_metric_and_filter() {
    let k: ThresholdKey = "connect.media{group=listeners, bot = speaker-1}"
        .parse()
        .unwrap();
    assert_eq!(k.metric, "connect.media");
    assert_eq!(
        k.filter,
        TagFilter::all()
            .with("group", "listeners")
            .with("bot", "speaker-1")
    );
    assert_eq!(
        k.to_string(),
        "connect.media{bot=speaker-1,group=listeners}"
    );
    let pair: ThresholdKey = "gap{pair=a-1<-b-2}".parse().unwrap();
    assert_eq!(pair.filter.tags["pair"], "a-1<-b-2");
    assert_eq!(
        "continuity".parse::<ThresholdKey>().unwrap().filter,
        TagFilter::all()
    );
}

const KEY_ERRORS: &[(&str, &str, &str)] = &[
    (
        "",
        "threshold key is empty; expected a metric name, such as `connect.media`",
        "",
    ),
    (
        "{group=a}",
        "threshold key is empty; expected a metric name, such as `connect.media`",
        "",
    ),
    (
        "conect.media",
        "unknown metric `conect.media`; did you mean `connect.media`?",
        "conect.media",
    ),
    (
        "bogus",
        "unknown metric `bogus`; expected one of: connect.signal, connect.ice, connect.media, continuity, gap, freezes, freeze.duration, layer.switches, latency.oneway, recovery, reconnects, kicks, joins.failed, data.latency, data.loss, sfu.participants, sfu.cpu, sfu.memory, sfu.bitrate.in, sfu.bitrate.out, harness.cpu, harness.memory, capacity.level, harness.lag, harness.loop.lag",
        "bogus",
    ),
    (
        "gap{group=a",
        "missing `}` at the end of the tag filter `{group=a`",
        "{group=a",
    ),
    ("gap{group=a}x", "unexpected `x` after the tag filter", "x"),
    (
        "gap{}",
        "empty tag filter `{}`; remove it or name a tag, such as `{group=listeners}`",
        "{}",
    ),
    (
        "gap{group}",
        "tag filter entry `group` must be `tag=value`, such as `group=listeners`",
        "group",
    ),
    (
        "gap{group=}",
        "tag filter entry `group=` must be `tag=value`, such as `group=listeners`",
        "group=",
    ),
    (
        "gap{group=a,}",
        "tag filter entry `` must be `tag=value`, such as `group=listeners`",
        "",
    ),
    (
        "gap{group=a=b}",
        "tag filter entry `group=a=b` must be `tag=value`, such as `group=listeners`",
        "group=a=b",
    ),
    (
        "gap{grop=a}",
        "unknown tag `grop`; expected one of: group, bot, fault, phase, pair, track; did you mean `group`?",
        "grop",
    ),
    (
        "gap{colour=a}",
        "unknown tag `colour`; expected one of: group, bot, fault, phase, pair, track",
        "colour",
    ),
    (
        "gap{group=a, group=b}",
        "tag `group` appears more than once in the filter",
        "group",
    ),
];

#[test]
fn key_errors_have_exact_text_and_span() {
    for (text, message, at) in KEY_ERRORS {
        let e = text.parse::<ThresholdKey>().expect_err(text);
        assert_eq!(e.to_string(), *message, "{text:?}");
        assert_eq!(&text[e.span.clone()], *at, "span of {text:?}");
        assert!(e.in_key);
    }
    // The duplicate is the second one.
    let e = "gap{group=a, group=b}".parse::<ThresholdKey>().unwrap_err();
    assert_eq!(e.span, 13..18);
}

#[test]
fn plans_hold_bounds_in_base_units() {
    let p = ThresholdPlan::parse("connect.media{group=a}", "p(95) < 1500ms", false).unwrap();
    assert_eq!(
        (p.metric.as_str(), p.bound, p.expr.as_str()),
        ("connect.media", 1.5, "p(95) < 1500ms")
    );
    assert!(p.holds(1.4) && !p.holds(1.5) && !p.holds(f64::INFINITY) && !p.holds(f64::NAN));
    assert_eq!(lookup(&p.metric).unwrap().unit, Unit::Duration);
    let e = ThresholdPlan::parse("gap{grop=a}", "max < 1s", false).unwrap_err();
    assert!(e.in_key);
    let e = ThresholdPlan::parse("gap", "max < 1", false).unwrap_err();
    assert!(!e.in_key);
}

fn aggregation() -> impl Strategy<Value = Aggregation> {
    prop_oneof![
        Just(Aggregation::Min),
        Just(Aggregation::Max),
        Just(Aggregation::Avg),
        Just(Aggregation::Med),
        Just(Aggregation::Count),
        Just(Aggregation::Rate),
        (0.0f64..=100.0)
            .prop_filter("more than 0", |n| *n > 0.0)
            .prop_map(Aggregation::Percentile),
        (1u32..=1000).prop_map(|n| Aggregation::Percentile(f64::from(n) / 10.0)),
    ]
}

fn bound() -> impl Strategy<Value = Bound> {
    let unit = prop_oneof![
        Just(None),
        Just(Some(TimeUnit::Us)),
        Just(Some(TimeUnit::Ms)),
        Just(Some(TimeUnit::S)),
        Just(Some(TimeUnit::M)),
        Just(Some(TimeUnit::H)),
    ];
    let value = prop_oneof![
        0.0f64..1e12,
        (0u64..100_000).prop_map(|n| n as f64 / 100.0),
        Just(0.0)
    ];
    (value, unit).prop_map(|(value, unit)| Bound { value, unit })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        Just(Op::Lt),
        Just(Op::Le),
        Just(Op::Gt),
        Just(Op::Ge),
        Just(Op::Eq)
    ]
}

fn tag_value() -> impl Strategy<Value = String> {
    "[a-z0-9][a-z0-9<._-]{0,12}"
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn expression_display_parses_back_to_itself(aggregation in aggregation(), op in op(), bound in bound()) {
        let e = ThresholdExpr { aggregation, op, bound };
        let shown = e.to_string();
        prop_assert_eq!(shown.parse::<ThresholdExpr>().map_err(|e| e.to_string()), Ok(e), "{}", shown);
        // Spacing is free: the compact form means the same.
        prop_assert_eq!(shown.replace(' ', "").parse::<ThresholdExpr>().map_err(|e| e.to_string()), Ok(e));
    }

    #[test]
    fn key_display_parses_back_to_itself(
        metric in prop::sample::select(crate::metrics::catalogue().iter().map(|e| e.name).collect::<Vec<_>>()),
        tags in prop::collection::btree_map(prop::sample::select(crate::metrics::FILTER_TAGS.to_vec()), tag_value(), 0..4),
    ) {
        let k = ThresholdKey {
            metric: metric.to_owned(),
            filter: TagFilter { tags: tags.into_iter().map(|(k, v)| (k.to_owned(), v)).collect() },
        };
        let shown = k.to_string();
        prop_assert_eq!(shown.parse::<ThresholdKey>().map_err(|e| e.to_string()), Ok(k), "{}", shown);
    }

    #[test]
    fn parsing_arbitrary_text_never_panics_and_spans_stay_inside(text in "\\PC{0,24}") {
        if let Err(e) = text.parse::<ThresholdExpr>() {
            prop_assert!(e.span.end <= text.len() && text.is_char_boundary(e.span.start) && text.is_char_boundary(e.span.end));
        }
        if let Err(e) = text.parse::<ThresholdKey>() {
            prop_assert!(e.span.end <= text.len() && text.is_char_boundary(e.span.start) && text.is_char_boundary(e.span.end));
        }
    }
}
