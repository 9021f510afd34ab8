//! Table-driven parser tests with exact error text.

use std::time::Duration;

use super::*;

const SMOKE: &str = include_str!("../../../scenarios/smoke.toml");

/// A minimal valid scenario; cases append or replace lines.
const BASE: &str = r#"name = "t"
duration = "10s"
[[groups]]
name = "a"
count = 2
"#;

fn errors(src: &str) -> String {
    match parse(src, "s.toml") {
        Ok(_) => "ok".to_owned(),
        Err(e) => e.to_string(),
    }
}

/// Inserts `line` before line `at` (1-based) of `src`.
fn insert_line(src: &str, at: usize, line: &str) -> String {
    let mut lines: Vec<&str> = src.lines().collect();
    lines.insert(at - 1, line);
    lines.join("\n") + "\n"
}

#[test]
fn smoke_parses_with_every_field() {
    let spec = parse(SMOKE, "smoke.toml").unwrap();
    assert_eq!(spec.name.get_ref(), "smoke");
    assert_eq!(*spec.duration.get_ref(), Duration::from_secs(10));
    assert_eq!(spec.room(), "smoke");
    assert_eq!(spec.sfu.image(), "livekit/livekit-server:v1.13.5");
    let g = &spec.groups[0];
    assert_eq!(
        (
            g.name.get_ref().as_str(),
            *g.count.get_ref(),
            g.identity_prefix()
        ),
        ("speakers", 2, "speaker")
    );
    let keys: Vec<&str> = spec
        .thresholds
        .iter()
        .map(|t| t.key.get_ref().as_str())
        .collect();
    assert_eq!(keys, ["continuity", "connect.media"]);
}

#[test]
fn misspelled_key_at_line_2_is_named_with_its_line() {
    let src = insert_line(SMOKE, 2, r#"durration = "5s""#);
    assert_eq!(
        errors(&src),
        "s.toml:2:1: unknown key `durration` in the top level; expected one of: name, duration, room, rooms, room-spacing, sfu, groups, faults, phases, nginx, sites, thresholds, expected-failures, capacity; did you mean `duration`?"
    );
}

#[test]
fn two_different_problems_are_both_reported() {
    let src = SMOKE
        .replace("count = 2", "count = 0")
        .replace("v1.13.5\"", "\"");
    let src = src.replace(
        "image = \"livekit/livekit-server:\"",
        "image = \"livekit/livekit-server\"",
    );
    assert_eq!(
        errors(&src),
        "s.toml:8:9: sfu.image must be `name:tag`, such as `livekit/livekit-server:v1.13.5`, but is `livekit/livekit-server`\n\
         s.toml:14:9: count of group `speakers` must be at least 1, but is 0"
    );
}

#[test]
fn a_bad_threshold_expression_points_at_the_bound() {
    let src = SMOKE.replace(
        r#""connect.media" = ["p(95) < 2s"]"#,
        r#""connect.media" = ["p(95) < 2"]"#,
    );
    // Line 22: `"connect.media" = ["p(95) < 2"]`; the `2` is column 29.
    assert_eq!(
        errors(&src),
        "s.toml:22:29: connect.media is a duration: write the bound with a unit, such as 2s"
    );
}

#[test]
fn every_kind_of_problem_in_one_file_is_reported() {
    let src = r#"name = "bad name"
duration = "0s"
colour = "blue"
expected-failures = ["continuty"]
[sfu]
kind = "janus"
api-secret = "short-secret"
[[groups]]
name = "a"
count = "2"
publish_audio = true
[[groups]]
name = "a"
count = 1
join-at = 5
[thresholds]
"continuity" = ["min >= 0.99", "p95 < 1"]
"conect.media" = ["p(95) <"]
"#;
    let expected = [
        "s.toml:1:8: name must start with a letter or digit and contain only letters, digits, `.`, `_` and `-`, but is `bad name`",
        "s.toml:2:12: duration must be more than 0s, but is 0s",
        "s.toml:3:1: unknown key `colour` in the top level; expected one of: name, duration, room, rooms, room-spacing, sfu, groups, faults, phases, nginx, sites, thresholds, expected-failures, capacity",
        "s.toml:4:22: expected-failures names `continuty`, which is not a key of [thresholds]; did you mean `continuity`?",
        "s.toml:6:8: unknown sfu.kind `janus`; expected one of: livekit",
        "s.toml:7:14: sfu.api-key and sfu.api-secret must be given together, or both left out to generate them per run",
        "s.toml:7:14: sfu.api-secret must be at least 32 characters long, but has 12",
        "s.toml:10:9: count of group `a` must be an integer, but is the string \"2\"",
        "s.toml:11:1: unknown key `publish_audio` in group `a`; expected one of: name, count, identity-prefix, publish-audio, publish-video, video-fps, video-kbps, simulcast, video-quality, data-interval, can-publish, lean, node, site, join-spacing, join-at, reconnect, health-check, media-timeout, token-ttl, clock-skew, stages; did you mean `publish-audio`?",
        "s.toml:13:8: name of group #2 is `a`, which group #1 already uses; group names must be unique",
        "s.toml:15:11: join-at of group `a` must be a duration string, such as \"10s\" or \"250ms\", but is the integer 5",
        "s.toml:17:33: unknown aggregation `p95`; expected one of: min, max, avg, med, p(N), count, rate; did you mean `p(95)`?",
        "s.toml:18:2: unknown metric `conect.media`; did you mean `connect.media`?",
        "s.toml:18:26: missing bound after `<`; expected a number or a duration, such as 2s",
    ];
    assert_eq!(errors(src), expected.join("\n"));
}

#[test]
fn single_problems_have_exact_messages() {
    let cases: &[(&str, &str)] = &[
        // top level
        (
            "name = \"t\"\n[[groups]]\nname = \"a\"\ncount = 1\n",
            "s.toml:1:1: missing key `duration` in the top level; add, for example, duration = \"10s\"",
        ),
        (
            "name = \"t\"\nduration = \"10s\"\n",
            "s.toml:1:1: missing key `groups` in the top level; add at least one [[groups]] table",
        ),
        (
            "name = \"t\"\nduration = \"10s\"\ngroups = []\n",
            "s.toml:3:10: groups must not be empty; add at least one [[groups]] table",
        ),
        (
            "name = \"t\"\nduration = \"10s\"\n[groups]\nname = \"a\"\n",
            "s.toml:3:1: groups must be an array of tables ([[groups]]), but is a table",
        ),
        (
            "name = \"t\"\nduration = 10\n[[groups]]\nname = \"a\"\ncount = 1\n",
            "s.toml:2:12: duration must be a duration string, such as \"10s\" or \"250ms\", but is the integer 10",
        ),
        (
            "name = \"t\"\nduration = \"ten\"\n[[groups]]\nname = \"a\"\ncount = 1\n",
            "s.toml:2:12: duration must be a duration, such as \"10s\" or \"250ms\", but is \"ten\"",
        ),
        (
            "name = \"t\"\nduration = \"25h\"\n[[groups]]\nname = \"a\"\ncount = 1\n",
            "s.toml:2:12: duration must be at most 24h, but is 25h",
        ),
        (
            "name = 3\nduration = \"1s\"\n[[groups]]\nname = \"a\"\ncount = 1\n",
            "s.toml:1:8: name must be a string, but is the integer 3",
        ),
        (
            "name = \"t\"\nroom = \"a/b\"\nduration = \"1s\"\n[[groups]]\nname = \"a\"\ncount = 1\n",
            "s.toml:2:8: room must start with a letter or digit and contain only letters, digits, `.`, `_` and `-`, but is `a/b`",
        ),
        // syntax
        (
            "name = \"t\"\nduration = 10s\n",
            "s.toml:2:12: invalid toml: string values must be quoted, expected literal string",
        ),
        (
            "name = \"t\"\nname = \"u\"\n",
            "s.toml:2:1: invalid toml: duplicate key `name`",
        ),
        // groups
        (
            &format!("{BASE}count = 3\n"),
            "s.toml:6:1: invalid toml: duplicate key `count`",
        ),
        (
            &format!("{BASE}identity-prefix = \"x y\"\n"),
            "s.toml:6:19: identity-prefix of group `a` must start with a letter or digit and contain only letters, digits, `.`, `_` and `-`, but is `x y`",
        ),
        (
            &format!("{BASE}publish-audio = \"yes\"\n"),
            "s.toml:6:17: publish-audio of group `a` must be true or false, but is the string \"yes\"",
        ),
        (
            &BASE.replace("count = 2", "count = 20000"),
            "s.toml:5:9: count of group `a` must be at most 10000, but is 20000",
        ),
        (
            &BASE.replace("count = 2\n", ""),
            "s.toml:3:1: missing key `count` in group `a`",
        ),
        (
            &format!("{BASE}join-at = \"10s\"\n[[groups]]\nname = \"b\"\ncount = 1\n"),
            "s.toml:6:11: join-at of group `a` must be before the end of the run at 10s (first join + duration), but is 10s",
        ),
        (
            &format!("{BASE}[[groups]]\nname = \"b\"\ncount = 1\nidentity-prefix = \"a\"\n"),
            "s.toml:9:19: identity prefix `a` of group `b` is already used by group `a`; bot identities must be unique across groups",
        ),
        (
            &format!("{BASE}join-spacing = \"10s\"\n"),
            "s.toml:6:16: join-spacing of group `a` makes its last bot start joining at 10s, but the run ends at 10s (first join + duration); shorten join-spacing or lengthen duration",
        ),
        // sfu
        (
            &format!("{BASE}[sfu]\nimage = \"\"\n"),
            "s.toml:7:9: sfu.image must be `name:tag`, such as `livekit/livekit-server:v1.13.5`, but is ``",
        ),
        (
            &format!("{BASE}[sfu]\nimage = \"localhost:5000/livekit\"\n"),
            "s.toml:7:9: sfu.image must be `name:tag`, such as `livekit/livekit-server:v1.13.5`, but is `localhost:5000/livekit`",
        ),
        (
            &format!("{BASE}[sfu]\napi-key = \"k\"\n"),
            "s.toml:7:11: sfu.api-key and sfu.api-secret must be given together, or both left out to generate them per run",
        ),
        (
            &format!(
                "{BASE}[sfu]\napi-key = \"\"\napi-secret = \"0123456789abcdef0123456789abcdef\"\n"
            ),
            "s.toml:7:11: sfu.api-key must be non-empty without spaces, but is \"\"",
        ),
        (
            &format!("{BASE}[sfu]\nconfig = 1\n"),
            "s.toml:7:10: sfu.config must be a table, but is the integer 1",
        ),
        (
            &format!("{BASE}[sfu.config.rtc]\nx = inf\n"),
            "s.toml:7:5: sfu.config.rtc.x must be a finite number, but is inf",
        ),
        (
            &format!("{BASE}[sfu]\nimag = \"x:1\"\n"),
            "s.toml:7:1: unknown key `imag` in `sfu`; expected one of: kind, image, api-key, api-secret, config, config-file, env, extra-networks, nodes; did you mean `image`?",
        ),
        // thresholds
        (
            &format!("{BASE}[thresholds]\nconnect.media = [\"p(95) < 2s\"]\n"),
            "s.toml:7:1: threshold key `connect` is a table: quote metric names that contain dots, such as \"connect.media\" = [\"p(95) < 2s\"]",
        ),
        (
            &format!("{BASE}[thresholds]\n\"gap\" = \"max < 1s\"\n"),
            "s.toml:7:9: thresholds for `gap` must be an array of strings, such as [\"p(95) < 2s\"], but is the string \"max < 1s\"",
        ),
        (
            &format!("{BASE}[thresholds]\n\"gap\" = []\n"),
            "s.toml:7:9: thresholds for `gap` must not be empty",
        ),
        (
            &format!("{BASE}[thresholds]\n\"gap\" = [1]\n"),
            "s.toml:7:10: each threshold of `gap` must be a string, such as \"p(95) < 2s\", but is the integer 1",
        ),
        (
            &format!("{BASE}[thresholds]\n\"gap{{grop=a}}\" = [\"max < 1s\"]\n"),
            "s.toml:7:6: unknown tag `grop`; expected one of: group, bot, fault, phase, pair, track; did you mean `group`?",
        ),
        (
            &format!("{BASE}[thresholds]\n\"continuity\" = [\"min >= 99%\"]\n"),
            "s.toml:7:25: bound must be a number or a duration, such as 2s, but is `99%`",
        ),
        (
            &format!("{BASE}[thresholds]\n\"continuity\" = [\"min >= 1s\"]\n"),
            "s.toml:7:25: continuity is a ratio: write the bound as a plain number, such as 0.99",
        ),
        (
            &format!(
                "expected-failures = [\"gap\", \"gap\"]\n{BASE}[thresholds]\n\"gap\" = [\"max < 1s\"]\n"
            ),
            "s.toml:1:29: expected-failures names `gap` more than once",
        ),
    ];
    for (src, expected) in cases {
        assert_eq!(errors(src), *expected, "source:\n{src}");
    }
}

#[test]
fn errors_with_escapes_point_at_the_whole_string() {
    let src = format!("{BASE}[thresholds]\n\"gap\" = [\"max \\u003c 1\"]\n");
    assert_eq!(
        errors(&src),
        "s.toml:7:10: gap is a duration: write the bound with a unit, such as 2s"
    );
}

#[test]
fn optional_fields_take_their_defaults() {
    let spec = parse(BASE, "s.toml").unwrap();
    assert_eq!(spec.room(), "t");
    assert_eq!(spec.sfu.image(), crate::plan::DEFAULT_LIVEKIT_IMAGE);
    assert_eq!(spec.sfu.kind, crate::plan::SfuKind::Livekit);
    let g = &spec.groups[0];
    assert_eq!(
        (
            g.identity_prefix(),
            g.publish_audio(),
            g.join_at(),
            g.join_spacing()
        ),
        ("a", true, Duration::ZERO, Duration::ZERO)
    );
    assert!(spec.thresholds.is_empty() && spec.expected_failures.is_empty());
}

#[test]
fn expected_failures_name_threshold_keys_as_written() {
    let src = format!(
        "expected-failures = [\"continuity{{group=a}}\"]\n{BASE}[thresholds]\n\"continuity{{group=a}}\" = [\"min >= 0.99\"]\n"
    );
    let spec = parse(&src, "s.toml").unwrap();
    assert_eq!(spec.expected_failures[0].get_ref(), "continuity{group=a}");
}

#[test]
fn the_secret_never_appears_in_errors_or_debug_output() {
    let secret = "not-long-enough-secret";
    let src = format!("{BASE}[sfu]\napi-key = \"k\"\napi-secret = \"{secret}\"\n");
    let err = parse(&src, "s.toml").unwrap_err();
    assert!(!err.to_string().contains(secret));
    assert!(!format!("{err:?}").contains(secret));
    let mut rendered = format!(
        "{:?}",
        miette::Report::new(parse(&src, "s.toml").unwrap_err())
    );
    miette::NarratableReportHandler::new()
        .render_report(&mut rendered, &err)
        .unwrap();
    assert!(!rendered.contains(secret), "{rendered}");
    assert!(
        rendered.contains("api-secret = \"**********************\""),
        "{rendered}"
    );

    let good = "0123456789abcdef0123456789abcdef-also-secret";
    let spec = parse(
        &format!("{BASE}[sfu]\napi-key = \"k\"\napi-secret = \"{good}\"\n"),
        "s.toml",
    )
    .unwrap();
    assert!(!format!("{spec:?}").contains(good));
    assert_eq!(spec.sfu.api_secret.unwrap().get_ref().expose(), good);
}

#[test]
fn miette_renders_one_label_per_problem() {
    use miette::Diagnostic;
    let src = SMOKE
        .replace("count = 2", "count = 0")
        .replace("\"0s\"                #", "\"x\"                #");
    let err = parse(&src, "smoke.toml").unwrap_err();
    assert_eq!(err.labels().unwrap().count(), 2);
    assert!(err.source_code().is_some());
    let mut out = String::new();
    miette::NarratableReportHandler::new()
        .render_report(&mut out, &err)
        .unwrap();
    assert!(
        out.contains("count of group `speakers` must be at least 1, but is 0"),
        "{out}"
    );
    assert!(out.contains("smoke.toml:14:9"), "{out}");
}

#[test]
fn an_unreadable_file_is_one_problem_without_position() {
    let err = load(std::path::Path::new("/nonexistent/x.toml")).unwrap_err();
    assert_eq!(err.problems.len(), 1);
    assert_eq!((err.problems[0].line, err.problems[0].column), (0, 0));
    assert!(
        err.to_string()
            .starts_with("/nonexistent/x.toml: cannot read the scenario file: "),
        "{err}"
    );
}

/// `BASE` plus one `[[faults]]` table (at line 6) holding `body`.
fn with_fault(body: &str) -> String {
    format!("{BASE}[[faults]]\n{body}")
}

#[test]
fn reconnect_keys_have_exact_messages() {
    let cases: &[(&str, &str)] = &[
        (
            "reconnect = \"resume\"\n",
            "s.toml:6:13: unknown reconnect `resume` of group `a`; expected one of: sdk, none, reinit",
        ),
        (
            "reconnect = \"reinti\"\n",
            "s.toml:6:13: unknown reconnect `reinti` of group `a`; expected one of: sdk, none, reinit; did you mean `reinit`?",
        ),
        (
            "reconnect = true\n",
            "s.toml:6:13: reconnect of group `a` must be a string, but is the boolean true",
        ),
        (
            "health-check = \"1s\"\n",
            "s.toml:6:16: health-check of group `a` only applies to reconnect = \"reinit\"",
        ),
        (
            "reconnect = \"none\"\nmedia-timeout = \"3s\"\n",
            "s.toml:7:17: media-timeout of group `a` only applies to reconnect = \"reinit\"",
        ),
        (
            "reconnect = \"reinit\"\nhealth-check = \"50ms\"\n",
            "s.toml:7:16: health-check of group `a` must be at least 100ms, but is 50ms",
        ),
        (
            "reconnect = \"reinit\"\nmedia-timeout = \"soon\"\n",
            "s.toml:7:17: media-timeout of group `a` must be a duration, such as \"10s\" or \"250ms\", but is \"soon\"",
        ),
        // An unreadable policy is reported once, not again through the keys it governs.
        (
            "reconnect = \"bogus\"\nhealth-check = \"1s\"\n",
            "s.toml:6:13: unknown reconnect `bogus` of group `a`; expected one of: sdk, none, reinit",
        ),
        (
            "video-fps = 15\n",
            "s.toml:6:13: video-fps of group `a` only applies to publish-video = true",
        ),
        (
            "publish-video = true\nvideo-fps = 0\n",
            "s.toml:7:13: video-fps of group `a` must be from 1 to 60, but is 0",
        ),
        (
            "publish-video = true\nvideo-kbps = 5000\n",
            "s.toml:7:14: video-kbps of group `a` must be from 16 to 4000, but is 5000",
        ),
        (
            "publish-video = true\nvideo-fps = 1\nvideo-kbps = 800\n",
            "s.toml:8:14: video-kbps of group `a` must be at most 748 at 1 fps (a keyframe spans at most 255 packets), but is 800",
        ),
        (
            "simulcast = true\n",
            "s.toml:6:13: simulcast of group `a` only applies to publish-video = true",
        ),
        (
            "publish-video = true\nsimulcast = \"yes\"\n",
            "s.toml:7:13: simulcast of group `a` must be true or false, but is the string \"yes\"",
        ),
        (
            "video-quality = \"hgh\"\n",
            "s.toml:6:17: unknown video-quality `hgh` of group `a`; expected one of: low, medium, high; did you mean `high`?",
        ),
        (
            "data-interval = \"1ms\"\n",
            "s.toml:6:17: data-interval of group `a` must be at least 10ms, but is 1ms",
        ),
        (
            "token-ttl = \"500ms\"\n",
            "s.toml:6:13: token-ttl of group `a` must be at least 1s, but is 500ms",
        ),
        (
            "token-ttl = \"48h\"\n",
            "s.toml:6:13: token-ttl of group `a` must be at most 24h, but is 48h",
        ),
        (
            "clock-skew = \"ahead\"\n",
            "s.toml:6:14: clock-skew of group `a` must be a duration with an optional sign, such as \"+10m\" or \"-90s\", but is \"ahead\"",
        ),
        (
            "clock-skew = -5\n",
            "s.toml:6:14: clock-skew of group `a` must be a duration string, such as \"+10m\" or \"-90s\", but is the integer -5",
        ),
        (
            "clock-skew = \"-25h\"\n",
            "s.toml:6:14: clock-skew of group `a` must be at most 24h either way, but is -25h",
        ),
        (
            "helth-check = \"1s\"\n",
            "s.toml:6:1: unknown key `helth-check` in group `a`; expected one of: name, count, identity-prefix, publish-audio, publish-video, video-fps, video-kbps, simulcast, video-quality, data-interval, can-publish, lean, node, site, join-spacing, join-at, reconnect, health-check, media-timeout, token-ttl, clock-skew, stages; did you mean `health-check`?",
        ),
    ];
    for (lines, expected) in cases {
        let src = format!("{BASE}{lines}");
        assert_eq!(errors(&src), *expected, "source:\n{src}");
    }
}

#[test]
fn lean_groups_only_receive_and_stay_out() {
    let cases: &[(String, &str)] = &[
        (
            format!("{BASE}lean = \"yes\"\n"),
            "s.toml:6:8: lean of group `a` must be true or false, but is the string \"yes\"",
        ),
        (
            format!("{BASE}lean = true\npublish-audio = true\n"),
            "s.toml:7:17: publish-audio of group `a` cannot be used with lean = true: a lean bot only receives; publish from another group",
        ),
        (
            format!("{BASE}lean = true\npublish-video = true\n"),
            "s.toml:7:17: publish-video of group `a` cannot be used with lean = true: a lean bot only receives; publish from another group",
        ),
        (
            format!("{BASE}lean = true\ndata-interval = \"1s\"\n"),
            "s.toml:7:17: data-interval of group `a` cannot be used with lean = true: a lean bot only receives; publish from another group",
        ),
        (
            format!("{BASE}lean = true\nreconnect = \"sdk\"\n"),
            "s.toml:7:13: reconnect of group `a` must be \"none\" with lean = true: a lean bot stays out after a disconnect; drop lean for a reconnecting group",
        ),
        (
            format!(
                "{BASE}lean = true\n[[faults]]\nat = \"1s\"\nfor = \"1s\"\ntarget = \"a-1\"\neffect = \"sleep\"\n"
            ),
            "s.toml:10:10: target `a-1` of faults[1] is a bot of lean group `a`, and a lean bot only joins, receives and leaves (sleep needs the full bot); drop lean = true from the group",
        ),
    ];
    for (src, expected) in cases {
        assert_eq!(errors(src), *expected, "source:\n{src}");
    }
    // A lean listener publishes nothing and stays out unless told otherwise; it may be
    // killed, as any client can be.
    let ok = format!(
        "{BASE}lean = true\nvideo-quality = \"low\"\n[[faults]]\nat = \"1s\"\ntarget = \"a\"\neffect = \"kill\"\n"
    );
    let spec = parse(&ok, "s.toml").expect("a lean group that only receives is valid");
    let g = &spec.groups[0];
    assert!(g.lean() && !g.publish_audio() && g.video().is_none());
    assert_eq!(g.reconnect(), ReconnectPlan::None);
}

#[test]
fn site_tables_have_exact_messages() {
    let with_site = BASE.replace("count = 2\n", "count = 2\nsite = \"lab\"\n");
    for (src, expected) in [
        (
            format!("{with_site}[sites.labb]\nextra-interfaces = 1\n"),
            "s.toml:7:8: sites.labb is the site of no group; give a group `site = \"labb\"`, or remove the table; did you mean `lab`?".to_owned(),
        ),
        (
            format!("{with_site}[sites.lab]\nextra-interfaces = 3\n"),
            "s.toml:8:20: extra-interfaces of sites.lab must be from 0 to 2, but is 3".to_owned(),
        ),
        (
            format!("sites = 1\n{with_site}"),
            "s.toml:1:9: sites must be a table of sites ([sites.NAME]), but is the integer 1".to_owned(),
        ),
    ] {
        assert_eq!(errors(&src), expected, "{src}");
    }
}

#[test]
fn nginx_problems_have_exact_messages() {
    for (body, expected) in [
        (
            "[nginx]\nwebsocket = \"no\"\n",
            "s.toml:7:13: nginx.websocket must be true or false, but is the string \"no\"",
        ),
        (
            "[nginx]\nlocation = \"livekit/\"\n",
            "s.toml:7:12: nginx.location must be \"/\" or a path such as \"/livekit\" (letters, digits, `-`, `_`, `.`, `~`, `/`; no trailing `/`), but is `livekit/`",
        ),
        (
            "[nginx]\nread-timeout = \"10ms\"\n",
            "s.toml:7:16: nginx.read-timeout must be at least 1s, but is 10ms",
        ),
        (
            "[nginx]\nupgrade = true\n",
            "s.toml:7:1: unknown key `upgrade` in `nginx`; expected one of: websocket, read-timeout, location, strip-location",
        ),
    ] {
        assert_eq!(errors(&format!("{BASE}{body}")), expected, "{body}");
    }
    let spec = parse(
        &format!("{BASE}[nginx]\nlocation = \"/livekit\"\nstrip-location = false\n"),
        "s.toml",
    )
    .unwrap();
    let n = spec.nginx.unwrap();
    assert_eq!(
        (n.location.as_str(), n.strip_location, n.websocket),
        ("/livekit", false, true)
    );
}

#[test]
fn fault_problems_have_exact_messages() {
    const DROP: &str = "at = \"5s\"\ntarget = \"proxy\"\neffect = \"ws-drop\"\n";
    let cases: &[(String, &str)] = &[
        (
            format!("faults = 1\n{BASE}"),
            "s.toml:1:10: faults must be an array of tables ([[faults]]), but is the integer 1",
        ),
        (
            with_fault("target = \"proxy\"\neffect = \"ws-drop\"\n"),
            "s.toml:6:1: missing key `at` in faults[1]",
        ),
        (
            with_fault("at = \"5s\"\ntarget = \"proxy\"\neffect = \"ws-dorp\"\n"),
            "s.toml:9:10: unknown effect `ws-dorp` of faults[1]; expected one of: ws-drop, ws-refuse-upgrade, ws-stall, ws-idle-timeout, path-prefix, sfu-kill, sfu-restart, sfu-drain, block-udp, block-tcp, loss, blackhole, bandwidth, link-down, kill, duplicate-identity, delay, server-switch, sleep; did you mean `ws-drop`?",
        ),
        (
            with_fault("at = \"5s\"\ntarget = \"proxy\"\nefect = \"ws-drop\"\n"),
            "s.toml:6:1: missing key `effect` in faults[1]\n\
             s.toml:9:1: unknown key `efect` in faults[1]; expected one of: at, for, target, effect, status, idle, prefix, strip, node, ports, except-ports, direction, percent, kbps, delay, jitter; did you mean `effect`?",
        ),
        (
            with_fault("at = \"5s\"\ntarget = 1\neffect = \"ws-drop\"\n"),
            "s.toml:8:10: target of faults[1] must be a string, but is the integer 1",
        ),
        (
            format!("{}[[faults]]\n{DROP}for = \"2s\"\n", with_fault(DROP)),
            "s.toml:14:7: for of faults[2] does not apply to ws-drop: it acts once at `at`",
        ),
        (
            with_fault("at = \"5s\"\nfor = \"6s\"\ntarget = \"proxy\"\neffect = \"ws-stall\"\n"),
            "s.toml:8:7: for of faults[1] makes it clear at 11s, but the run ends at 10s (first join + duration); shorten for, or leave it out to last until the end",
        ),
        (
            with_fault("at = \"5s\"\nfor = \"0s\"\ntarget = \"proxy\"\neffect = \"ws-stall\"\n"),
            "s.toml:8:7: for of faults[1] must be more than 0s, or left out to last until the end of the run",
        ),
        (
            with_fault("at = \"10s\"\ntarget = \"proxy\"\neffect = \"ws-drop\"\n"),
            "s.toml:7:6: at of faults[1] must be before the end of the run at 10s (first join + duration), but is 10s",
        ),
        (
            with_fault("at = \"5s\"\ntarget = \"sfu\"\neffect = \"ws-drop\"\n"),
            "s.toml:8:10: target of faults[1] must be `proxy` for ws-drop, but is `sfu`",
        ),
        (
            with_fault("at = \"5s\"\ntarget = \"proxy\"\neffect = \"sfu-kill\"\n"),
            "s.toml:8:10: target of faults[1] must be `sfu` for sfu-kill, but is `proxy`",
        ),
        (
            with_fault("at = \"5s\"\ntarget = \"b\"\neffect = \"kill\"\n"),
            "s.toml:8:10: unknown target `b` of faults[1]; kill targets a group (a) or a bot (a-1, a-2)",
        ),
        (
            with_fault("at = \"5s\"\ntarget = \"proxy\"\neffect = \"duplicate-identity\"\n"),
            "s.toml:8:10: unknown target `proxy` of faults[1]; duplicate-identity targets a group (a) or a bot (a-1, a-2)",
        ),
        (
            with_fault("at = \"5s\"\ntarget = \"a-22\"\neffect = \"kill\"\n")
                .replace("count = 2", "count = 11"),
            "s.toml:8:10: unknown target `a-22` of faults[1]; kill targets a group (a) or a bot by identity, such as `a-1`; did you mean `a-2`?",
        ),
        (
            format!(
                "{}[[groups]]\nname = \"a-1\"\ncount = 1\n",
                with_fault("at = \"5s\"\ntarget = \"a-1\"\neffect = \"kill\"\n")
            ),
            "s.toml:8:10: target `a-1` of faults[1] is ambiguous: it names group `a-1` and a bot of group `a`; rename one of them",
        ),
        (
            with_fault(&format!("{DROP}status = 503\n")),
            "s.toml:10:10: status of faults[1] does not apply to ws-drop; only ws-refuse-upgrade takes it",
        ),
        (
            with_fault("at = \"5s\"\ntarget = \"proxy\"\neffect = \"ws-refuse-upgrade\"\n"),
            "s.toml:6:1: missing key `status` in faults[1]; ws-refuse-upgrade needs it, such as status = 503",
        ),
        (
            with_fault(
                "at = \"5s\"\ntarget = \"proxy\"\neffect = \"ws-refuse-upgrade\"\nstatus = 700\n",
            ),
            "s.toml:10:10: status of faults[1] must be an http status from 200 to 599, but is 700",
        ),
        (
            with_fault(
                "at = \"5s\"\ntarget = \"proxy\"\neffect = \"ws-refuse-upgrade\"\nstatus = \"503\"\n",
            ),
            "s.toml:10:10: status of faults[1] must be an integer, but is the string \"503\"",
        ),
        (
            with_fault(
                "at = \"5s\"\ntarget = \"proxy\"\neffect = \"ws-idle-timeout\"\nidle = \"10ms\"\n",
            ),
            "s.toml:10:8: idle of faults[1] must be at least 100ms, but is 10ms",
        ),
        (
            with_fault("at = \"5s\"\ntarget = \"proxy\"\neffect = \"ws-idle-timeout\"\n"),
            "s.toml:6:1: missing key `idle` in faults[1]; ws-idle-timeout needs it, such as idle = \"30s\"",
        ),
        (
            with_fault("at = \"5s\"\ntarget = \"office\"\neffect = \"block-udp\"\n"),
            "s.toml:8:10: unknown target `office` of faults[1]; block-udp targets `sfu` (every bot's path) or a site, and no group has a `site`",
        ),
        (
            with_fault("at = \"5s\"\ntarget = \"ofice\"\neffect = \"block-udp\"\n")
                .replace("count = 2\n", "count = 2\nsite = \"office\"\n"),
            "s.toml:9:10: unknown target `ofice` of faults[1]; block-udp targets `sfu` (every bot's path) or a site, and the sites are office; did you mean `office`?",
        ),
        (
            with_fault("at = \"5s\"\ntarget = \"sfu\"\neffect = \"bandwidth\"\nkbps = 64\n"),
            "s.toml:8:10: unknown target `sfu` of faults[1]; bandwidth targets a site, and no group has a `site`",
        ),
        (
            with_fault(
                "at = \"5s\"\ntarget = \"sfu\"\neffect = \"block-udp\"\nports = [0, 7882]\n",
            ),
            "s.toml:10:10: a port in ports of faults[1] must be from 1 to 65535, but is 0",
        ),
        (
            with_fault("at = \"5s\"\ntarget = \"sfu\"\neffect = \"block-tcp\"\nports = 7881\n"),
            "s.toml:10:9: ports of faults[1] must be an array of port numbers, such as [7881], but is the integer 7881",
        ),
        (
            with_fault(
                "at = \"5s\"\ntarget = \"sfu\"\neffect = \"block-udp\"\nports = [7882]\nexcept-ports = [3478]\n",
            ),
            "s.toml:11:16: except-ports of faults[1] cannot go with ports: block the ports listed, or every port but those in except-ports",
        ),
        (
            with_fault(
                "at = \"5s\"\ntarget = \"sfu\"\neffect = \"block-tcp\"\nports = [7881]\nexcept-ports = [3478]\n",
            ),
            "s.toml:11:16: except-ports of faults[1] does not apply to block-tcp; only block-udp takes it",
        ),
        (
            with_fault(
                "at = \"0s\"\ntarget = \"proxy\"\neffect = \"path-prefix\"\nprefix = \"livekit/\"\n",
            ),
            "s.toml:10:10: prefix of faults[1] must be a path such as \"/livekit\": a `/`, then letters, digits, `-`, `_`, `.`, `~` or `/`, not ending in `/`, but is `livekit/`",
        ),
        (
            with_fault("at = \"0s\"\ntarget = \"proxy\"\neffect = \"path-prefix\"\n"),
            "s.toml:6:1: missing key `prefix` in faults[1]; path-prefix needs it, such as prefix = \"/livekit\"",
        ),
        (
            with_fault("at = \"5s\"\ntarget = \"sfu\"\neffect = \"block-tcp\"\n"),
            "s.toml:6:1: missing key `ports` in faults[1]; block-tcp needs it, such as ports = [7881]",
        ),
        (
            with_fault(
                "at = \"5s\"\ntarget = \"sfu\"\neffect = \"block-udp\"\ndirection = \"up\"\n",
            ),
            "s.toml:10:13: direction of faults[1] must be one of: both, in, out, but is `up`",
        ),
        (
            with_fault(
                "at = \"5s\"\ntarget = \"sfu\"\neffect = \"loss\"\npercent = 5\nports = [1]\n",
            ),
            "s.toml:11:9: ports of faults[1] does not apply to loss; only block-udp, block-tcp takes it",
        ),
        (
            with_fault("at = \"5s\"\ntarget = \"lab\"\neffect = \"bandwidth\"\nkbps = 2\n")
                .replace("count = 2\n", "count = 2\nsite = \"lab\"\n"),
            "s.toml:11:8: kbps of faults[1] must be from 8 to 1000000, but is 2",
        ),
        (
            format!("{BASE}site = \"my site\"\n"),
            "s.toml:6:8: site of group `a` must start with a letter or digit and contain only letters, digits, `.`, `_` and `-`, but is `my site`",
        ),
        // A bad group hides its identities: no guess about bot targets then.
        (
            with_fault("at = \"5s\"\ntarget = \"a-1\"\neffect = \"kill\"\n")
                .replace("count = 2", "count = 0"),
            "s.toml:5:9: count of group `a` must be at least 1, but is 0",
        ),
    ];
    let wrong: Vec<String> = cases
        .iter()
        .filter(|(src, expected)| errors(src) != *expected)
        .map(|(src, expected)| {
            format!(
                "source:\n{src}\nexpected: {expected}\n   found: {}\n",
                errors(src)
            )
        })
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn faults_and_policies_parse_with_their_defaults() {
    let src = r#"name = "t"
duration = "20s"
[[groups]]
name = "a"
count = 2
[[groups]]
name = "b"
count = 1
reconnect = "reinit"
token-ttl = "30s"
clock-skew = "-1m 30s"
[[faults]]
at = "2s"
target = "a"
effect = "kill"
[[faults]]
at = "3s"
for = "4s"
target = "proxy"
effect = "ws-refuse-upgrade"
status = 200
"#;
    let spec = parse(src, "s.toml").unwrap();
    let (a, b) = (&spec.groups[0], &spec.groups[1]);
    assert_eq!(a.reconnect(), crate::plan::ReconnectPlan::Sdk);
    assert_eq!(a.token_ttl(), crate::plan::DEFAULT_TOKEN_TTL);
    assert_eq!(
        b.reconnect(),
        crate::plan::ReconnectPlan::Reinit {
            check_every: DEFAULT_HEALTH_CHECK,
            media_timeout: DEFAULT_MEDIA_TIMEOUT
        }
    );
    assert_eq!(b.token_ttl(), Duration::from_secs(30));
    assert_eq!((a.clock_skew_ms(), b.clock_skew_ms()), (0, -90_000));
    let ids: Vec<String> = spec.faults.iter().map(FaultSpec::id).collect();
    assert_eq!(ids, ["faults[1]", "faults[2]"]);
    let f = &spec.faults[1];
    assert_eq!(
        *f.effect.get_ref(),
        crate::fault::FaultKind::WsRefuseUpgrade
    );
    assert_eq!(
        f.duration.as_ref().map(|d| *d.get_ref()),
        Some(Duration::from_secs(4))
    );
    assert_eq!(f.status.as_ref().map(|s| *s.get_ref()), Some(200));
    assert!(spec.faults[0].duration.is_none());
}

#[test]
fn phase_problems_have_exact_messages() {
    let phase = |name: &str, at: &str| format!("[[phases]]\nname = \"{name}\"\nat = \"{at}\"\n");
    let cases: &[(String, &str)] = &[
        (
            format!("phases = \"steady\"\n{BASE}"),
            "s.toml:1:10: phases must be an array of tables ([[phases]]), but is the string \"steady\"",
        ),
        (
            format!("{BASE}{}", phase("warmup", "2s")),
            "s.toml:8:6: at of phases[1] must be 0s: the first phase starts the run, but is 2s",
        ),
        (
            format!("{BASE}{}{}", phase("warmup", "0s"), phase("warmup", "3s")),
            "s.toml:10:8: name of phases[2] is `warmup`, which phases[1] already uses; phase names must be unique",
        ),
        (
            format!(
                "{BASE}{}{}{}",
                phase("a", "0s"),
                phase("b", "5s"),
                phase("c", "5s")
            ),
            "s.toml:14:6: at of phases[3] must be after the phase before it (5s), but is 5s",
        ),
        (
            format!("{BASE}{}{}", phase("a", "0s"), phase("b", "10s")),
            "s.toml:11:6: at of phases[2] must be before the end of the run at 10s (first join + duration), but is 10s",
        ),
        (
            format!("{BASE}[[phases]]\nname = \"a\"\nstart = \"0s\"\n"),
            "s.toml:6:1: missing key `at` in phases[1]\ns.toml:8:1: unknown key `start` in phases[1]; expected one of: name, at",
        ),
    ];
    for (src, expected) in cases {
        assert_eq!(errors(src), *expected, "source:\n{src}");
    }
}

#[test]
fn phases_compile_into_the_plan_in_time_order() {
    let src = format!(
        "{BASE}[[phases]]\nname = \"warmup\"\nat = \"0s\"\n[[phases]]\nname = \"steady\"\nat = \"3s\"\n"
    );
    let plan = crate::plan::compile(&parse(&src, "s.toml").unwrap());
    let phases: Vec<(&str, u64)> = plan
        .phases
        .iter()
        .map(|p| (p.name.as_str(), p.at.as_secs()))
        .collect();
    assert_eq!(phases, [("warmup", 0), ("steady", 3)]);
    assert!(
        crate::plan::render(&plan).contains("\nphases\n  0s         warmup\n  3s         steady\n")
    );
}

#[test]
fn loss_percent_has_exact_messages() {
    let fault = |body: &str| format!("{BASE}[[faults]]\nat = \"2s\"\ntarget = \"sfu\"\n{body}");
    let cases: &[(String, &str)] = &[
        (
            fault("effect = \"loss\"\npercent = 0\n"),
            "s.toml:10:11: percent of faults[1] must be from 1 to 100, but is 0",
        ),
        (
            fault("effect = \"loss\"\n"),
            "s.toml:6:1: missing key `percent` in faults[1]; loss needs it, such as percent = 20",
        ),
        (
            fault("effect = \"sfu-kill\"\npercent = 20\n"),
            "s.toml:10:11: percent of faults[1] does not apply to sfu-kill; only loss takes it",
        ),
    ];
    for (src, expected) in cases {
        assert_eq!(errors(src), *expected, "source:\n{src}");
    }
}

#[test]
fn delay_parameters_have_exact_messages() {
    let fault = |body: &str| format!("{BASE}[[faults]]\nat = \"2s\"\ntarget = \"a\"\n{body}");
    let cases: &[(String, &str)] = &[
        (
            fault("effect = \"delay\"\n"),
            "s.toml:6:1: missing key `delay` in faults[1]; delay needs it, such as delay = \"100ms\"",
        ),
        (
            fault("effect = \"delay\"\ndelay = \"20s\"\n"),
            "s.toml:10:9: delay of faults[1] must be at most 10s, but is 20s",
        ),
        (
            fault("effect = \"kill\"\njitter = \"5ms\"\n"),
            "s.toml:10:10: jitter of faults[1] does not apply to kill; only delay takes it",
        ),
    ];
    for (src, expected) in cases {
        assert_eq!(errors(src), *expected, "source:\n{src}");
    }
}

#[test]
fn nodes_and_server_switch_have_exact_messages() {
    let cases: &[(String, &str)] = &[
        (
            "name = \"t\"\nduration = \"10s\"\n[sfu]\nnodes = 9\n[[groups]]\nname = \"a\"\ncount = 1\n"
                .to_owned(),
            "s.toml:4:9: sfu.nodes must be from 1 to 4, but is 9",
        ),
        (
            format!("{BASE}node = 2\n"),
            "s.toml:6:8: node of group `a` is 2, but the sfu has 1 node (sfu.nodes)",
        ),
        (
            format!("{BASE}[[faults]]\nat = \"2s\"\ntarget = \"a\"\neffect = \"server-switch\"\n"),
            "s.toml:9:10: faults[1] is server-switch, which needs sfu.nodes of 2 or more, but the sfu has 1 node",
        ),
    ];
    for (src, expected) in cases {
        assert_eq!(errors(src), *expected, "source:\n{src}");
    }
}

#[test]
fn capacity_problems_have_exact_messages() {
    let cap = |body: &str| format!("{BASE}[capacity]\n{body}");
    let ok = "add = \"a\"\nstep = 1\nstep-every = \"5s\"\n[capacity.stop-on]\n\"continuity\" = [\"min >= 0.9\"]\n";
    let cases: &[(String, &str)] = &[
        (cap(ok), "ok"),
        (
            cap("add = \"a\"\n"),
            "s.toml:6:1: missing key `step-every` in [capacity]\ns.toml:6:1: missing key `step` in [capacity]\ns.toml:6:1: missing key `stop-on` in [capacity]",
        ),
        (
            cap(&ok.replace("add = \"a\"", "add = \"b\"")),
            "s.toml:7:7: add of [capacity] must be \"rooms\" or a group's name (a), but is `b`",
        ),
        (
            cap(&ok.replace("add = \"a\"", "add = \"rooms\"")),
            "s.toml:7:7: add of [capacity] is \"rooms\", which adds rooms up to the scenario's rooms; add, for example, rooms = 8 at the top level",
        ),
        (
            cap(&ok.replace("step = 1", "step = 0")),
            "s.toml:8:8: step of [capacity] must be from 1 to 10000, but is 0",
        ),
        (
            cap(&ok.replace("\"5s\"", "\"1s\"")),
            "s.toml:9:14: step-every of [capacity] must be at least 4s, but is 1s",
        ),
        (
            cap(&ok.replace("\"5s\"", "\"6s\"")),
            "s.toml:2:12: duration is 10s, but [capacity] needs 2 steps of 6s = 12s to reach 2; lengthen duration or raise step",
        ),
        (
            cap(&ok.replace("min >= 0.9", "min >= 2s")),
            "s.toml:11:25: continuity is a ratio: write the bound as a plain number, such as 0.99",
        ),
        (
            cap(&ok.replace("step = 1", "step = 1\nstart = 3")),
            "s.toml:9:9: start of [capacity] is 3, more than the 2 the search can reach (the count of group `a`)",
        ),
        (
            format!("rooms = 2\n{}", cap(ok)),
            "s.toml:1:9: [capacity] adds bots of group `a` to one room, but rooms is 2; with several rooms, use add = \"rooms\"",
        ),
        (
            format!("room-spacing = \"1s\"\n{BASE}"),
            "s.toml:1:16: room-spacing spaces the joins of several rooms, but the scenario has one room; add rooms = N",
        ),
        (
            format!("rooms = 0\n{BASE}"),
            "s.toml:1:9: rooms must be from 1 to 1000, but is 0",
        ),
        (
            cap(&format!("{ok}[[phases]]\nname = \"x\"\nat = \"0s\"\n")),
            "s.toml:13:8: [[phases]] cannot be used with [capacity]: the search's steps are the run's phases (step-1, step-2, ...)",
        ),
        (
            cap("add = \"a\"\nstep = 1\nstep-every = \"5s\"\nstop-on = {}\n"),
            "s.toml:10:11: stop-on of [capacity] must name at least one condition, such as \"continuity\" = [\"p(5) >= 0.95\"]",
        ),
    ];
    for (src, expected) in cases {
        assert_eq!(errors(src), *expected, "source:\n{src}");
    }
}

#[test]
fn stage_problems_have_exact_messages() {
    let group = |stages: &str| {
        format!("name = \"t\"\nduration = \"10s\"\n[[groups]]\nname = \"a\"\nstages = {stages}\n")
    };
    let cases: &[(String, &str)] = &[
        (group("[{ target = 2, duration = \"5s\" }]"), "ok"),
        (
            group("3"),
            "s.toml:5:10: stages of group `a` must be an array of tables such as { target = 10, duration = \"10s\" }, but is the integer 3",
        ),
        (
            group("[]"),
            "s.toml:5:10: stages of group `a` must hold at least one stage",
        ),
        (
            group("[{ target = 2 }]"),
            "s.toml:5:11: missing key `duration` in stages[1] of group `a`",
        ),
        (
            group("[{ target = -1, duration = \"1s\" }]"),
            "s.toml:5:22: target of stages[1] of group `a` must be from 0 to 10000, but is -1",
        ),
        (
            group(
                "[{ target = 2, duration = \"1s\" }, { target = 0, duration = \"1s\" }, { target = 3, duration = \"1s\" }]",
            ),
            "s.toml:5:88: target of stages[3] of group `a` ramps up again after a ramp down (0 to 3); a group's stages ramp up, hold, then ramp down (bots that left do not come back)",
        ),
        (
            group("[{ target = 2, duration = \"11s\" }]"),
            "s.toml:5:10: stages of group `a` end at 11s (join-at + their durations), after the run ends at 10s (first join + duration)",
        ),
        (
            group("[{ target = 0, duration = \"1s\" }]"),
            "s.toml:5:10: stages of group `a` never bring a bot in: every target is 0",
        ),
        (
            format!(
                "{}count = 2\njoin-spacing = \"1s\"\n",
                group("[{ target = 2, duration = \"5s\" }]")
            ),
            "s.toml:6:9: count of group `a` cannot be used with stages: the stages set when its bots join (and the group's size, their largest target)\ns.toml:7:16: join-spacing of group `a` cannot be used with stages: the stages set when its bots join (and the group's size, their largest target)",
        ),
    ];
    for (src, expected) in cases {
        assert_eq!(errors(src), *expected, "source:\n{src}");
    }
}

#[test]
fn sfu_env_refuses_the_harnesss_own_variable_and_bad_names_and_never_prints_values() {
    let src = "name = \"x\"\nduration = \"5s\"\n[sfu.env]\nLIVEKIT_CONFIG = \"a\"\n\"BAD NAME\" = \"b\"\nLIVEKIT_KEYS = \"k:very-secret-value\"\n[[groups]]\nname = \"g\"\ncount = 1\n";
    let e = parse(src, "x.toml").unwrap_err();
    let text = format!("{e:?}");
    assert!(text.contains("LIVEKIT_CONFIG is the harness's"), "{text}");
    assert!(text.contains("letters, digits and `_`"), "{text}");
    assert!(!text.contains("very-secret-value"), "{text}");
    let ok = parse(
        &src.replace("LIVEKIT_CONFIG = \"a\"\n\"BAD NAME\" = \"b\"\n", ""),
        "x.toml",
    )
    .unwrap();
    assert_eq!(ok.sfu.env.len(), 1);
    assert!(!format!("{ok:?}").contains("very-secret-value"));
}

#[test]
fn a_config_file_is_read_beside_the_scenario_and_a_missing_one_is_an_error_at_its_key() {
    let dir = std::env::temp_dir().join(format!("sfu-harness-config-file-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let scenario = dir.join("s.toml");
    std::fs::write(
        &scenario,
        "name = \"x\"\nduration = \"5s\"\n[sfu]\nconfig-file = \"lk.yaml\"\n[[groups]]\nname = \"g\"\ncount = 1\n",
    )
    .unwrap();
    let missing = format!("{:?}", load(&scenario).unwrap_err());
    assert!(missing.contains("cannot read sfu.config-file"), "{missing}");
    assert!(missing.contains("line: 4, column: 15"), "{missing}");
    std::fs::write(dir.join("lk.yaml"), "room:\n  empty_timeout: 300\n").unwrap();
    let spec = load(&scenario).unwrap();
    let loaded = spec.sfu.config_file_loaded.unwrap();
    assert_eq!(loaded.map["room"]["empty_timeout"], 300);
    let _ = std::fs::remove_dir_all(&dir);
}
