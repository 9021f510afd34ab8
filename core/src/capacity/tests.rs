use super::*;
use crate::event::EventRecord;
use crate::measure::measure;

fn plan_of(toml: &str) -> Plan {
    let spec = crate::scenario::parse(toml, "cap.toml").expect("valid scenario");
    crate::plan::compile(&spec)
}

const SEARCH: &str = r#"
name = "cap"
duration = "20s"
[[groups]]
name = "speakers"
count = 1
[[groups]]
name = "listeners"
count = 6
publish-audio = false
[capacity]
add = "listeners"
step = 2
step-every = "5s"
[capacity.stop-on]
"connect.signal" = ["max < 2s"]
"#;

fn rec(t_us: u64, event: Event) -> EventRecord {
    EventRecord { t_us, event }
}

/// Steps start on the run clock 1 s after the bots' clock (a lead), every 5 s; each
/// step's listeners join and connect in 100 ms; the SFU's CPU grows 0.1 core a step;
/// `fail_at` makes that step's joins fail.
fn run(plan: &Plan, fail_at: Option<usize>, lag_at: Option<usize>) -> Vec<EventRecord> {
    let mut ev = Vec::new();
    let cap = plan.capacity.as_ref().unwrap();
    for s in &cap.steps {
        let t0 = 1_000_000 + s.at.as_micros() as u64;
        ev.push(rec(
            t0,
            Event::PhaseStarted {
                name: CapacityPlan::phase(s.number),
            },
        ));
        for b in plan
            .bots
            .iter()
            .filter(|b| b.join_at >= s.at && b.join_at < s.at + cap.step_every)
        {
            let t = 1_000_000 + b.join_at.as_micros() as u64;
            ev.push(rec(
                t,
                Event::BotJoinStarted {
                    bot: b.identity.clone(),
                    group: b.group.clone(),
                    room: b.room.clone(),
                },
            ));
            if fail_at == Some(s.number) {
                ev.push(rec(
                    t + 100_000,
                    Event::JoinFailed {
                        bot: b.identity.clone(),
                        error: "room is full".into(),
                    },
                ));
            } else {
                ev.push(rec(
                    t + 100_000,
                    Event::SignalConnected {
                        bot: b.identity.clone(),
                        participant_sid: "PA".into(),
                        server_version: "1".into(),
                        node_id: String::new(),
                    },
                ));
            }
        }
        for sec in 0..5u64 {
            let t = t0 + sec * 1_000_000 + 500_000;
            ev.push(rec(
                t,
                Event::ResourcesSampled {
                    source: "sfu".into(),
                    node: "lk1".into(),
                    cpu_cores: 0.1 * f64::from(s.level),
                    memory_bytes: 1_000_000 * u64::from(s.level),
                },
            ));
            ev.push(rec(
                t,
                Event::ResourcesSampled {
                    source: "harness".into(),
                    node: String::new(),
                    cpu_cores: 0.01 * f64::from(s.level),
                    memory_bytes: 500_000 * u64::from(s.level),
                },
            ));
            let lag = if lag_at == Some(s.number) {
                300_000
            } else {
                2_000
            };
            ev.push(rec(
                t,
                Event::EventLoopChecked {
                    max_lag_us: lag,
                    ticks: 100,
                },
            ));
        }
    }
    let end = 1_000_000 + 20_000_000;
    ev.push(rec(
        end,
        Event::RunEnded {
            reason: "completed".into(),
        },
    ));
    ev.sort_by_key(|r| r.t_us);
    ev
}

/// `ev` with every `source` CPU sample replaced by `f` of it.
fn with_cpu(ev: &[EventRecord], source: &str, f: impl Fn(f64) -> f64) -> Vec<EventRecord> {
    ev.iter()
        .cloned()
        .map(|mut r| {
            if let Event::ResourcesSampled {
                source: s,
                cpu_cores,
                ..
            } = &mut r.event
                && s == source
            {
                *cpu_cores = f(*cpu_cores);
            }
            r
        })
        .collect()
}

fn analyse_run(plan: &Plan, ev: &[EventRecord]) -> CapacityReport {
    let m = measure(ev);
    analyse(plan, ev, &m, 2).expect("a capacity plan")
}

#[test]
fn the_plan_lays_the_steps_out_as_phases_and_joins() {
    let plan = plan_of(SEARCH);
    let cap = plan.capacity.as_ref().unwrap();
    let levels: Vec<u32> = cap.steps.iter().map(|s| s.level).collect();
    assert_eq!(levels, vec![2, 4, 6]);
    assert_eq!(cap.unit(), "bots");
    let phases: Vec<&str> = plan.phases.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(phases, vec!["step-1", "step-2", "step-3"]);
    let joins: Vec<(String, u64)> = plan
        .bots
        .iter()
        .map(|b| (b.identity.clone(), b.join_at.as_secs()))
        .collect();
    assert_eq!(
        joins,
        [
            ("listeners-1", 0),
            ("listeners-2", 0),
            ("speakers-1", 0),
            ("listeners-3", 5),
            ("listeners-4", 5),
            ("listeners-5", 10),
            ("listeners-6", 10)
        ]
        .map(|(a, b)| (a.to_owned(), b))
    );
    // participants count the speaker too
    assert_eq!(
        cap.steps.iter().map(|s| s.bots).collect::<Vec<_>>(),
        vec![3, 5, 7]
    );
}

#[test]
fn a_search_that_holds_everywhere_reaches_the_maximum_and_fits_the_cost() {
    let plan = plan_of(SEARCH);
    let r = analyse_run(&plan, &run(&plan, None, None));
    assert_eq!(r.knee.held, Some(6));
    assert_eq!(r.knee.broke, None);
    assert!(r.knee.reached_max, "{:?}", r.knee);
    assert_eq!(
        r.steps
            .iter()
            .map(|s| s.outcome.as_str())
            .collect::<Vec<_>>(),
        ["held"; 3]
    );
    // CPU grows by 0.2 core per 2 listeners, each subscribing to the speaker's track.
    let f = r.cost.sfu_cpu_per_subscribed_track.unwrap();
    assert!(
        f.points == 3 && (f.slope - 0.1).abs() < 1e-9 && (f.r2 - 1.0).abs() < 1e-9,
        "{f:?}"
    );
    let p = r.cost.sfu_cpu_per_participant.unwrap();
    assert!((p.slope - 0.1).abs() < 1e-9, "{p:?}");
    let ratio = r.cost.harness_to_sfu.unwrap();
    assert!((ratio - 0.1).abs() < 1e-9, "{ratio}");
    let mem = r.cost.harness_memory_per_bot.unwrap();
    assert!((mem.slope - 500_000.0).abs() < 1e-3, "{mem:?}");
}

#[test]
fn refused_joins_break_the_step_they_happen_in_and_the_knee_is_the_step_before() {
    let plan = plan_of(SEARCH);
    let r = analyse_run(&plan, &run(&plan, Some(3), None));
    assert_eq!(r.knee.held, Some(4));
    assert_eq!(r.knee.broke, Some(6));
    assert_eq!(r.knee.limit.as_deref(), Some("joins refused"));
    assert_eq!(r.knee.summary, "held at 4 bots; broke at 6 (joins refused)");
    // A failed join never reaches connect.signal: +inf breaks the condition too.
    assert!(
        r.steps[2]
            .limits
            .iter()
            .any(|l| l.starts_with("connect.signal")),
        "{:?}",
        r.steps[2]
    );
}

#[test]
fn a_harness_that_fell_behind_is_the_limit_never_the_sfu() {
    let plan = plan_of(SEARCH);
    let r = analyse_run(&plan, &run(&plan, Some(3), Some(2)));
    assert_eq!(r.knee.held, Some(2));
    assert_eq!(
        r.knee.broke, None,
        "a step after the harness fell behind is not judged"
    );
    assert_eq!(r.knee.harness_limited, Some(4));
    assert_eq!(r.steps[2].outcome, "not judged");
    assert!(
        r.knee.summary.contains("harness-limited at 4 bots"),
        "{}",
        r.knee.summary
    );
}

#[test]
fn the_sfu_using_most_of_the_host_is_a_limit_of_its_own() {
    let plan = plan_of(SEARCH);
    let ev = run(&plan, None, None);
    let m = measure(&ev);
    // On a 1-core host, 0.2, 0.4 and 0.6 cores stay below the 0.9 limit.
    let r = analyse(&plan, &ev, &m, 1).unwrap();
    assert!(r.knee.reached_max);
    // 0.4, 0.8, 1.2 on a 1-core host
    let hot = with_cpu(&ev, "sfu", |c| c * 2.0);
    let r = analyse(&plan, &hot, &measure(&hot), 1).unwrap();
    assert_eq!(r.knee.held, Some(4));
    assert_eq!(r.knee.limit.as_deref(), Some("sfu cpu"));
    // The SFU alone stays under 90% of 1 core, but with a harness beside it that takes
    // 0.5, the host is full at level 4 (0.4 + 0.5): a host-cpu limit.
    let busy = with_cpu(&ev, "harness", |_| 0.5);
    let r = analyse(&plan, &busy, &measure(&busy), 1).unwrap();
    assert_eq!(r.knee.held, Some(2));
    assert_eq!(
        r.knee.limit.as_deref(),
        Some("host cpu (sfu 0.40 + harness 0.50 of 1 cores)")
    );
}

#[test]
fn should_stop_names_the_first_step_that_broke_once_its_window_is_over() {
    let plan = plan_of(SEARCH);
    let ev = run(&plan, Some(2), None);
    // Mid step 2 (run clock 8 s): nothing complete has broken yet.
    let early: Vec<EventRecord> = ev.iter().filter(|r| r.t_us < 8_000_000).cloned().collect();
    assert_eq!(
        should_stop(&plan, &early, &measure(&early), 8_000_000, 2),
        None
    );
    // At 12 s step 2 (6 to 11 s) is over, and broke.
    let later: Vec<EventRecord> = ev.iter().filter(|r| r.t_us < 12_000_000).cloned().collect();
    let s = should_stop(&plan, &later, &measure(&later), 12_000_000, 2).unwrap();
    assert_eq!((s.number, s.outcome.as_str()), (2, "broke"));
}

#[test]
fn least_squares_fit_is_exact_on_a_line_and_needs_two_x() {
    let f = fit(&[(1.0, 3.0), (2.0, 5.0), (3.0, 7.0)]).unwrap();
    assert!((f.slope - 2.0).abs() < 1e-12 && (f.intercept - 1.0).abs() < 1e-12);
    assert!((f.r2 - 1.0).abs() < 1e-12);
    assert_eq!(fit(&[(1.0, 3.0)]), None);
    assert_eq!(fit(&[(1.0, 3.0), (1.0, 4.0)]), None);
}
