//! The compiled plan: everything a run will do, decided before anything runs.
//!
//! A [`Plan`] is produced from a validated [`crate::scenario::ScenarioSpec`] by
//! [`compile`]; `sfu-harness plan FILE` prints it. The runtime only executes a plan; it
//! makes no decision a user could not have read here first.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

mod nginx;
mod render;
mod video;

pub use nginx::NginxPlan;
pub use render::render;
pub use video::{
    DEFAULT_VIDEO_FPS, DEFAULT_VIDEO_KBPS, KEYFRAME_EVERY_S, KEYFRAME_SIZE_FACTOR, LayerPlan,
    MAX_PACKET_PAYLOAD, VideoPlan, VideoQuality,
};

use crate::fault::{FaultPlan, FaultTarget, TargetKind};
use crate::scenario::{FaultSpec, ScenarioSpec};
use crate::threshold::ThresholdPlan;

/// The default LiveKit image (tag built locally where no registry is reachable).
pub const DEFAULT_LIVEKIT_IMAGE: &str = "livekit/livekit-server:v1.13.5";

#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Scenario name (also the reports directory name).
    pub name: String,
    /// How long the measured part of the run lasts, from the first join.
    pub duration: Duration,
    /// The room every bot joins.
    pub room: String,
    pub sfu: SfuPlan,
    /// Every bot, ordered by join time then identity.
    pub bots: Vec<BotPlan>,
    pub thresholds: Vec<ThresholdPlan>,
    /// In file order; ids `faults[1]`, `faults[2]`, ...
    pub faults: Vec<crate::fault::FaultPlan>,
    /// `[[phases]]` in time order, on the bots' clock; empty: metrics carry no phase.
    pub phases: Vec<PhasePlan>,
    /// The network sites the groups name, in order of first use.
    pub sites: Vec<SitePlan>,
    /// A real nginx in front of the SFU's signal port (node 1), if the scenario asks.
    pub nginx: Option<NginxPlan>,
    /// How many rooms the groups are repeated in (1: the room is `room` itself; more:
    /// `<room>-1`, `<room>-2`, ...).
    pub rooms: u32,
    /// A capacity search, if the scenario asks for one: its steps are the phases.
    pub capacity: Option<CapacityPlan>,
}

/// A capacity search: load grows step by step; the run stops at the first step whose
/// window breaks a stop-on condition or refuses a join.
#[derive(Debug, Clone, PartialEq)]
pub struct CapacityPlan {
    /// The group whose bots a step adds; `None`: a step adds rooms.
    pub group: Option<String>,
    pub step_every: Duration,
    /// In order; step `i` is phase `step-i`.
    pub steps: Vec<StepPlan>,
    /// Judged on each step's window alone (a `phase=step-i` filter is added).
    pub stop_on: Vec<ThresholdPlan>,
}

impl CapacityPlan {
    /// What a level counts: `rooms` or `bots`.
    pub fn unit(&self) -> &'static str {
        if self.group.is_some() {
            "bots"
        } else {
            "rooms"
        }
    }

    /// A load level in words: `1 room`, `3 rooms`, `5 bots`.
    pub fn level(&self, n: u32) -> String {
        let unit = self.unit();
        if n == 1 {
            format!("1 {}", &unit[..unit.len() - 1])
        } else {
            format!("{n} {unit}")
        }
    }

    /// The phase name of step `number` (from 1).
    pub fn phase(number: usize) -> String {
        format!("step-{number}")
    }
}

/// One step of a capacity search.
#[derive(Debug, Clone, PartialEq)]
pub struct StepPlan {
    /// From 1.
    pub number: usize,
    /// Rooms or bots (of the searched group) in the run from this step on.
    pub level: u32,
    /// When it starts, on the bots' clock.
    pub at: Duration,
    /// Every bot of the run that has started joining by the end of this step.
    pub bots: u32,
}

/// A network site: a namespace of the run that some groups' bots live in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SitePlan {
    pub name: String,
    /// VPN-like interfaces besides its link, whose addresses the SFU cannot reach.
    pub extra_interfaces: u8,
}

/// A named stretch of the run; it lasts until the next phase or the end.
#[derive(Debug, Clone, PartialEq)]
pub struct PhasePlan {
    pub name: String,
    pub at: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SfuPlan {
    /// Only LiveKit exists so far.
    pub kind: SfuKind,
    /// Image reference, `name:tag`.
    pub image: String,
    /// API key; `None`: generated per run.
    pub api_key: Option<String>,
    /// API secret; `None`: generated per run. Never printed.
    pub api_secret: Option<String>,
    /// User overrides merged over the harness's LiveKit config (nested tables),
    /// as JSON (LiveKit reads YAML, and JSON is YAML).
    pub config_overrides: BTreeMap<String, serde_json::Value>,
    /// The user's own LiveKit config file, read (`[sfu] config-file`).
    pub config_file: Option<crate::scenario::LoadedConfigFile>,
    /// Environment variables for LiveKit (values may be secrets: never printed).
    pub env: BTreeMap<String, crate::scenario::Secret>,
    /// Extra, unreachable networks the SFU container is also attached to.
    pub extra_networks: u8,
    /// LiveKit nodes (more than one: they share a Redis).
    pub nodes: u8,
}

impl SfuPlan {
    /// Every secret the scenario hands the SFU (its API secret, `[sfu.env]` values), to
    /// scrub from anything the run writes or shows.
    pub fn secrets(&self) -> impl Iterator<Item = &str> {
        self.api_secret
            .as_deref()
            .into_iter()
            .chain(self.env.values().map(|v| v.expose()))
            .filter(|s| !s.is_empty())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SfuKind {
    Livekit,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BotPlan {
    /// Unique participant identity, `<identity-prefix>-<n>` (n from 1).
    pub identity: String,
    /// Name of the bot group it belongs to.
    pub group: String,
    /// Offset from the run start at which this bot starts joining.
    pub join_at: Duration,
    /// When it leaves (a staged group's ramp down); `None`: at the end of the run.
    pub leave_at: Option<Duration>,
    pub publish_audio: bool,
    /// Synthetic VP8 video, if the bot publishes it.
    pub video: Option<VideoPlan>,
    /// The simulcast layer it asks the SFU for on every video track it receives
    /// (UpdateTrackSettings); `None`: LiveKit's default (the highest).
    pub video_quality: Option<VideoQuality>,
    /// How often the bot sends a data message on each of `_reliable` and `_lossy`.
    pub data_interval: Option<Duration>,
    /// The `canPublish` grant of its tokens.
    pub can_publish: bool,
    /// A lean bot (receive-only, one task, no reconnection).
    pub lean: bool,
    /// The SFU node (1-based) it connects to.
    pub node: u8,
    /// The network site it lives in; `None`: the host's namespace.
    pub site: Option<String>,
    /// The LiveKit room it joins.
    pub room: String,
    /// What the bot does when its session breaks.
    pub reconnect: ReconnectPlan,
    /// Lifetime of the tokens the harness mints for it.
    pub token_ttl: Duration,
    /// The bot's clock offset for minting tokens, ms (+ ahead of the SFU).
    pub clock_skew_ms: i64,
}

/// A bot group's reconnection policy (DESIGN.md, "Bot behaviour").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReconnectPlan {
    /// Stay out after any disconnect.
    None,
    /// LiveKit SDK behaviour: resume, then full reconnects with backoff.
    #[default]
    Sdk,
    /// Health check every `check_every`; on failure a full rejoin with a fresh token.
    Reinit {
        check_every: Duration,
        media_timeout: Duration,
    },
}

/// Token lifetime when a group does not say (LiveKit SDKs' default).
pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(6 * 3600);

/// Compiles a validated spec. Infallible: [`crate::scenario::parse`] only returns specs
/// that compile.
///
/// Bots are `<identity-prefix>-<n>` (n from 1), bot `n` of a group starts joining at
/// `join-at + (n-1) · join-spacing`, and the list is ordered by join time, then identity
/// in natural order (`speaker-2` before `speaker-10`). Thresholds keep file order, one
/// plan per expression. Faults keep file order; a group target becomes its bots'
/// identities in plan order.
pub fn compile(spec: &ScenarioSpec) -> Plan {
    let rooms = spec.rooms();
    let capacity = spec.capacity.as_ref();
    let group_count = |name: &str| {
        spec.groups
            .iter()
            .find(|g| g.name.get_ref() == name)
            .map_or(1, |g| *g.count.get_ref())
    };
    let levels = capacity.map(|c| {
        let max = if c.adds_rooms() {
            rooms
        } else {
            group_count(c.add.get_ref())
        };
        c.levels(max)
    });
    let every = capacity.map_or(Duration::ZERO, |c| *c.step_every.get_ref());
    // The step that brings in unit `k` (room or bot, from 1), and its place among the
    // units that step adds (from 0).
    let step_of = |k: u32| -> (u32, u32) {
        let levels = levels.as_deref().unwrap_or(&[]);
        let i = levels.iter().position(|l| *l >= k).unwrap_or(0);
        let before = if i == 0 { 0 } else { levels[i - 1] };
        (i as u32, k.saturating_sub(before + 1))
    };
    let adds_rooms = capacity.is_some_and(|c| c.adds_rooms());
    let schedules: Vec<_> = spec.groups.iter().map(|g| g.schedule()).collect();
    let mut bots: Vec<(Duration, u32, &str, u32, BotPlan)> = Vec::new();
    for r in 1..=rooms {
        let room = if rooms == 1 {
            spec.room().to_owned()
        } else {
            format!("{}-{r}", spec.room())
        };
        let room_offset = if adds_rooms {
            let (i, within) = step_of(r);
            every * i + spec.room_spacing() * within
        } else {
            spec.room_spacing() * (r - 1)
        };
        for (g, schedule) in spec.groups.iter().zip(&schedules) {
            let prefix = g.identity_prefix();
            let searched = capacity.is_some_and(|c| c.add.get_ref() == g.name.get_ref());
            for (n, &(at, leave_at)) in (1..).zip(schedule) {
                let join_at = if searched {
                    let (i, within) = step_of(n);
                    every * i + g.join_at() + g.join_spacing() * within
                } else {
                    room_offset + at
                };
                let bot = BotPlan {
                    identity: if rooms == 1 {
                        format!("{prefix}-{n}")
                    } else {
                        format!("r{r}-{prefix}-{n}")
                    },
                    group: g.name.get_ref().clone(),
                    join_at,
                    leave_at: leave_at.map(|l| room_offset + l),
                    publish_audio: g.publish_audio(),
                    video: g.video(),
                    video_quality: g.video_quality.as_ref().map(|q| *q.get_ref()),
                    data_interval: g.data_interval(),
                    can_publish: g.can_publish.unwrap_or(true),
                    lean: g.lean(),
                    node: g.node.as_ref().map_or(1, |n| *n.get_ref()),
                    site: g.site.as_ref().map(|s| s.get_ref().clone()),
                    room: room.clone(),
                    reconnect: g.reconnect(),
                    token_ttl: g.token_ttl(),
                    clock_skew_ms: g.clock_skew_ms(),
                };
                bots.push((bot.join_at, r, prefix, n, bot));
            }
        }
    }
    bots.sort_by(|a, b| (a.0, a.1, a.2, a.3).cmp(&(b.0, b.1, b.2, b.3)));
    let bots: Vec<BotPlan> = bots.into_iter().map(|(.., b)| b).collect();
    let capacity = capacity.zip(levels.as_ref()).map(|(c, levels)| {
        let steps = levels
            .iter()
            .enumerate()
            .map(|(i, &level)| {
                let at = every * i as u32;
                StepPlan {
                    number: i + 1,
                    level,
                    at,
                    bots: bots.iter().filter(|b| b.join_at < at + every).count() as u32,
                }
            })
            .collect();
        CapacityPlan {
            group: (!c.adds_rooms()).then(|| c.add.get_ref().clone()),
            step_every: every,
            steps,
            stop_on: c
                .stop_on
                .iter()
                .flat_map(|t| {
                    t.exprs.iter().map(|e| {
                        ThresholdPlan::new(
                            t.key.get_ref(),
                            &t.parsed,
                            e.text.get_ref(),
                            &e.parsed,
                            false,
                        )
                    })
                })
                .collect(),
        }
    });
    let faults = spec
        .faults
        .iter()
        .map(|f| compile_fault(spec, &bots, f))
        .collect();

    let expected: BTreeSet<&str> = spec
        .expected_failures
        .iter()
        .map(|k| k.get_ref().as_str())
        .collect();
    let thresholds = spec
        .thresholds
        .iter()
        .flat_map(|t| {
            let key = t.key.get_ref();
            let expected_to_fail = expected.contains(key.as_str());
            t.exprs.iter().map(move |e| {
                ThresholdPlan::new(
                    key,
                    &t.parsed,
                    e.text.get_ref(),
                    &e.parsed,
                    expected_to_fail,
                )
            })
        })
        .collect();

    let mut sites: Vec<SitePlan> = Vec::new();
    for g in &spec.groups {
        if let Some(site) = &g.site
            && !sites.iter().any(|s| &s.name == site.get_ref())
        {
            let settings = spec
                .sites
                .iter()
                .find(|s| s.name.get_ref() == site.get_ref());
            sites.push(SitePlan {
                name: site.get_ref().clone(),
                extra_interfaces: settings.map_or(0, |s| s.extra_interfaces),
            });
        }
    }

    Plan {
        name: spec.name.get_ref().clone(),
        duration: *spec.duration.get_ref(),
        room: spec.room().to_owned(),
        sfu: SfuPlan {
            kind: spec.sfu.kind,
            image: spec.sfu.image().to_owned(),
            api_key: spec.sfu.api_key.as_ref().map(|k| k.get_ref().clone()),
            api_secret: spec
                .sfu
                .api_secret
                .as_ref()
                .map(|s| s.get_ref().expose().to_owned()),
            config_overrides: spec
                .sfu
                .config
                .iter()
                .map(|(k, v)| (k.clone(), to_json(v)))
                .collect(),
            config_file: spec.sfu.config_file_loaded.clone(),
            env: spec.sfu.env.clone(),
            extra_networks: spec.sfu.extra_networks,
            nodes: spec.sfu.nodes,
        },
        bots,
        thresholds,
        faults,
        phases: match &capacity {
            Some(c) => c
                .steps
                .iter()
                .map(|s| PhasePlan {
                    name: CapacityPlan::phase(s.number),
                    at: s.at,
                })
                .collect(),
            None => spec
                .phases
                .iter()
                .map(|p| PhasePlan {
                    name: p.name.get_ref().clone(),
                    at: *p.at.get_ref(),
                })
                .collect(),
        },
        sites,
        nginx: spec.nginx.clone(),
        rooms,
        capacity,
    }
}

fn compile_fault(spec: &ScenarioSpec, bots: &[BotPlan], f: &FaultSpec) -> FaultPlan {
    let kind = *f.effect.get_ref();
    let label = f.target.get_ref();
    let site = |name: &String| FaultTarget::Site {
        name: name.clone(),
        identities: bots
            .iter()
            .filter(|b| b.site.as_ref() == Some(name))
            .map(|b| b.identity.clone())
            .collect(),
    };
    let target = match kind.target_kind() {
        TargetKind::Proxy => FaultTarget::Proxy,
        TargetKind::Sfu => FaultTarget::Sfu,
        // The parser made sure the label is `sfu` or a group's site.
        TargetKind::Network if label == "sfu" => FaultTarget::Sfu,
        TargetKind::Network | TargetKind::Site => site(label),
        // The parser made sure the label is a group's name or a bot's identity, not both.
        TargetKind::Bots => {
            let group = spec.groups.iter().any(|g| g.name.get_ref() == label);
            FaultTarget::Bots {
                label: label.clone(),
                identities: bots
                    .iter()
                    .filter(|b| {
                        if group {
                            &b.group == label
                        } else {
                            &b.identity == label
                        }
                    })
                    .map(|b| b.identity.clone())
                    .collect(),
            }
        }
    };
    FaultPlan {
        id: f.id(),
        kind,
        target,
        at: *f.at.get_ref(),
        duration: f.duration.as_ref().map(|d| *d.get_ref()),
        status: f.status.as_ref().map(|s| *s.get_ref()),
        idle: f.idle.as_ref().map(|i| *i.get_ref()),
        percent: f.percent.as_ref().map(|p| *p.get_ref()),
        delay: f.delay.as_ref().map(|d| *d.get_ref()),
        jitter: f.jitter.as_ref().map(|j| *j.get_ref()),
        ports: f
            .ports
            .as_ref()
            .map_or_else(Vec::new, |p| p.get_ref().clone()),
        except_ports: f
            .except_ports
            .as_ref()
            .map_or_else(Vec::new, |p| p.get_ref().clone()),
        direction: f
            .direction
            .as_ref()
            .map_or_else(Default::default, |d| *d.get_ref()),
        kbps: f.kbps.as_ref().map(|k| *k.get_ref()),
        prefix: f.prefix.as_ref().map(|p| p.get_ref().clone()),
        strip: f.strip.unwrap_or(false),
        node: f.node.as_ref().map_or(1, |n| *n.get_ref()),
    }
}

/// TOML to JSON. The parser already rejected what JSON cannot hold (non-finite floats);
/// datetimes become their TOML text.
fn to_json(v: &toml::Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        toml::Value::String(s) => J::String(s.clone()),
        toml::Value::Integer(i) => J::from(*i),
        toml::Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
        toml::Value::Boolean(b) => J::Bool(*b),
        toml::Value::Datetime(d) => J::String(d.to_string()),
        toml::Value::Array(a) => J::Array(a.iter().map(to_json).collect()),
        toml::Value::Table(t) => {
            J::Object(t.iter().map(|(k, v)| (k.clone(), to_json(v))).collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fault::Direction;
    use crate::scenario::parse;

    const SPEC: &str = r#"
name = "ramp"
duration = "1m"
[sfu]
api-key = "APIfixed"
api-secret = "0123456789abcdef0123456789abcdef-very-secret"
[sfu.config.rtc]
tcp_port = 7999
[sfu.config.redis]
password = "hunter2"
[[groups]]
name = "listeners"
count = 12
publish-audio = false
join-at = "2s"
join-spacing = "500ms"
[[groups]]
name = "speakers"
count = 2
identity-prefix = "spk"
[thresholds]
"continuity{group=listeners}" = ["min >= 0.99", "avg > 0.999"]
"connect.media" = ["p(95) < 2s"]
"#;

    fn plan() -> Plan {
        compile(&parse(SPEC, "ramp.toml").unwrap())
    }

    #[test]
    fn bots_expand_with_spacing_and_sort_by_join_time_then_natural_identity() {
        let p = plan();
        let order: Vec<(&str, u128)> = p
            .bots
            .iter()
            .map(|b| (b.identity.as_str(), b.join_at.as_millis()))
            .collect();
        assert_eq!(
            &order[..4],
            &[
                ("spk-1", 0),
                ("spk-2", 0),
                ("listeners-1", 2000),
                ("listeners-2", 2500)
            ]
        );
        assert_eq!(order.last(), Some(&("listeners-12", 7500)));
        assert_eq!(p.bots.len(), 14);
        assert!(!p.bots[2].publish_audio && p.bots[0].publish_audio);
        assert_eq!(p.bots[2].group, "listeners");
    }

    #[test]
    fn sfu_defaults_and_overrides_are_copied() {
        let p = plan();
        assert_eq!(p.room, "ramp");
        assert_eq!(p.sfu.image, DEFAULT_LIVEKIT_IMAGE);
        assert_eq!(p.sfu.api_key.as_deref(), Some("APIfixed"));
        assert_eq!(
            p.sfu.config_overrides["rtc"],
            serde_json::json!({"tcp_port": 7999})
        );
    }

    #[test]
    fn one_threshold_plan_per_expression_in_file_order() {
        let p = plan();
        let shown: Vec<(&str, &str, f64)> = p
            .thresholds
            .iter()
            .map(|t| (t.key.as_str(), t.expr.as_str(), t.bound))
            .collect();
        assert_eq!(
            shown,
            [
                ("continuity{group=listeners}", "min >= 0.99", 0.99),
                ("continuity{group=listeners}", "avg > 0.999", 0.999),
                ("connect.media", "p(95) < 2s", 2.0),
            ]
        );
        assert_eq!(p.thresholds[0].filter.tags["group"], "listeners");
    }

    #[test]
    fn render_shows_the_timeline_but_never_a_secret() {
        let text = render(&plan());
        assert!(!text.contains("very-secret"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("api secret  (hidden)\n"), "{text}");
        assert!(text.contains("api key     APIfixed\n"), "{text}");
        assert!(text.contains("  rtc.tcp_port = 7999\n"), "{text}");
        assert!(text.contains("  redis.password = (hidden)\n"), "{text}");
        assert!(text.contains("joins (14 bots in 2 groups)"), "{text}");
        assert!(
            text.contains("  7s 500ms   listeners-12  listeners  nothing    sdk        6h\n"),
            "{text}"
        );
        assert!(
            text.contains("  connect.media                p(95) < 2s\n"),
            "{text}"
        );
    }

    #[test]
    fn render_of_smoke_matches_exactly() {
        let smoke = include_str!("../../../scenarios/smoke.toml");
        let text = render(&compile(&parse(smoke, "smoke.toml").unwrap()));
        let expected = "\
scenario    smoke
duration    10s (measured from the first join)
room        smoke
sfu         livekit, image livekit/livekit-server:v1.13.5
api key     generated per run
api secret  (hidden) generated per run
sfu config  harness defaults

joins (2 bots in 1 group)
  at         identity   group     publishes  reconnect  token ttl
  0s         speaker-1  speakers  audio      sdk        6h
  0s         speaker-2  speakers  audio      sdk        6h

faults
  none

thresholds
  continuity     min >= 0.99
  connect.media  p(95) < 2s
";
        assert_eq!(text, expected);
    }

    const FAULTS: &str = r#"
name = "faults"
duration = "30s"
[[groups]]
name = "late"
count = 2
reconnect = "none"
join-at = "1s"
join-spacing = "2s"
token-ttl = "10m"
[[groups]]
name = "early"
count = 1
identity-prefix = "e"
reconnect = "reinit"
media-timeout = "3s"
[[groups]]
name = "default"
count = 1
[[faults]]
at = "5s"
target = "late"
effect = "kill"
[[faults]]
at = "6s"
for = "2s"
target = "proxy"
effect = "ws-idle-timeout"
idle = "500ms"
[[faults]]
at = "7s"
target = "e-1"
effect = "duplicate-identity"
[[faults]]
at = "8s"
target = "sfu"
effect = "sfu-kill"
[[faults]]
at = "9s"
for = "1s"
target = "proxy"
effect = "ws-refuse-upgrade"
status = 503
"#;

    #[test]
    fn policies_and_token_ttls_are_filled_in_per_bot() {
        let p = compile(&parse(FAULTS, "faults.toml").unwrap());
        let shown: Vec<(&str, ReconnectPlan, Duration)> = p
            .bots
            .iter()
            .map(|b| (b.identity.as_str(), b.reconnect, b.token_ttl))
            .collect();
        let reinit = ReconnectPlan::Reinit {
            check_every: crate::scenario::DEFAULT_HEALTH_CHECK,
            media_timeout: Duration::from_secs(3),
        };
        let ten_minutes = Duration::from_secs(600);
        assert_eq!(
            shown,
            [
                ("default-1", ReconnectPlan::Sdk, DEFAULT_TOKEN_TTL),
                ("e-1", reinit, DEFAULT_TOKEN_TTL),
                ("late-1", ReconnectPlan::None, ten_minutes),
                ("late-2", ReconnectPlan::None, ten_minutes),
            ]
        );
    }

    #[test]
    fn faults_compile_in_file_order_with_resolved_targets() {
        use crate::fault::FaultKind;
        let p = compile(&parse(FAULTS, "faults.toml").unwrap());
        let secs = Duration::from_secs;
        let bots = |label: &str, ids: &[&str]| FaultTarget::Bots {
            label: label.to_owned(),
            identities: ids.iter().map(|s| s.to_string()).collect(),
        };
        let fault = |n: usize, kind, target, at, duration| FaultPlan {
            id: format!("faults[{n}]"),
            kind,
            target,
            at: secs(at),
            duration,
            status: None,
            idle: None,
            percent: None,
            delay: None,
            jitter: None,
            ports: Vec::new(),
            except_ports: Vec::new(),
            direction: Direction::Both,
            kbps: None,
            prefix: None,
            strip: false,
            node: 1,
        };
        let expected = [
            fault(
                1,
                FaultKind::Kill,
                bots("late", &["late-1", "late-2"]),
                5,
                None,
            ),
            FaultPlan {
                idle: Some(Duration::from_millis(500)),
                ..fault(
                    2,
                    FaultKind::WsIdleTimeout,
                    FaultTarget::Proxy,
                    6,
                    Some(secs(2)),
                )
            },
            fault(
                3,
                FaultKind::DuplicateIdentity,
                bots("e-1", &["e-1"]),
                7,
                None,
            ),
            fault(4, FaultKind::SfuKill, FaultTarget::Sfu, 8, None),
            FaultPlan {
                status: Some(503),
                ..fault(
                    5,
                    FaultKind::WsRefuseUpgrade,
                    FaultTarget::Proxy,
                    9,
                    Some(secs(1)),
                )
            },
        ];
        assert_eq!(p.faults, expected);
    }

    #[test]
    fn render_lists_policies_and_faults() {
        let text = render(&compile(&parse(FAULTS, "faults.toml").unwrap()));
        let joins = "\
joins (4 bots in 3 groups)
  at         identity   group    publishes  reconnect                    token ttl
  0s         default-1  default  audio      sdk                          6h
  0s         e-1        early    audio      reinit (check 2s, media 3s)  6h
  1s         late-1     late     audio      none                         10m
  3s         late-2     late     audio      none                         10m
";
        assert!(text.contains(joins), "{text}");
        let faults = "\
faults
  id         at  for            effect              target                params
  faults[1]  5s  instant        kill                late (group, 2 bots)
  faults[2]  6s  2s             ws-idle-timeout     proxy                 idle 500ms
  faults[3]  7s  instant        duplicate-identity  e-1
  faults[4]  8s  until the end  sfu-kill            sfu
  faults[5]  9s  1s             ws-refuse-upgrade   proxy                 status 503

thresholds
";
        assert!(text.contains(faults), "{text}");
    }

    #[test]
    fn sites_collect_their_groups_bots_and_network_faults_resolve_to_them() {
        let src = r#"name = "t"
duration = "10s"
[[groups]]
name = "office"
count = 2
site = "hq"
[[groups]]
name = "remote"
count = 1
[[groups]]
name = "lab"
count = 1
site = "hq"
[[faults]]
at = "1s"
target = "hq"
effect = "block-tcp"
ports = [7881, 443]
direction = "in"
[[faults]]
at = "2s"
target = "sfu"
effect = "block-udp"
[[faults]]
at = "3s"
for = "2s"
target = "hq"
effect = "bandwidth"
kbps = 256
"#;
        let plan = compile(&parse(src, "t.toml").unwrap());
        assert_eq!(
            plan.sites,
            [SitePlan {
                name: "hq".into(),
                extra_interfaces: 0
            }]
        );
        let site_of = |id: &str| {
            plan.bots
                .iter()
                .find(|b| b.identity == id)
                .unwrap()
                .site
                .clone()
        };
        assert_eq!(site_of("lab-1").as_deref(), Some("hq"));
        assert_eq!(site_of("remote-1"), None);
        let hq = FaultTarget::Site {
            name: "hq".into(),
            identities: vec!["lab-1".into(), "office-1".into(), "office-2".into()],
        };
        assert_eq!(plan.faults[0].target, hq);
        assert_eq!(
            (plan.faults[0].ports.clone(), plan.faults[0].direction),
            (vec![7881, 443], Direction::In)
        );
        assert_eq!(plan.faults[1].target, FaultTarget::Sfu);
        assert_eq!(plan.faults[1].direction, Direction::Both);
        assert_eq!(plan.faults[2].kbps, Some(256));
        let text = render(&plan);
        assert!(text.contains("  hq: lab-1, office-1, office-2\n"), "{text}");
        assert!(text.contains("hq (site, 3 bots)"), "{text}");
        assert!(text.contains("ports 7881,443, in only"), "{text}");
        assert!(text.contains("sfu (every bot's path)"), "{text}");
        assert!(text.contains("256 kbit/s each way"), "{text}");
    }

    #[test]
    fn nginx_config_forwards_the_upgrade_and_strips_the_location_as_asked() {
        let n = NginxPlan::default();
        let c = n.config("10.0.0.2:7880");
        assert!(c.contains("location / {\n"), "{c}");
        assert!(c.contains("proxy_pass http://10.0.0.2:7880/;"), "{c}");
        assert!(c.contains("proxy_set_header Upgrade $http_upgrade;"), "{c}");
        assert!(
            c.contains("proxy_set_header Connection \"upgrade\";"),
            "{c}"
        );
        assert!(c.contains("proxy_read_timeout 60s;"), "{c}");
        let broken = NginxPlan {
            websocket: false,
            read_timeout: Duration::from_secs(3),
            location: "/livekit".into(),
            strip_location: false,
        };
        let c = broken.config("10.0.0.2:7880");
        assert!(c.contains("location /livekit/ {"), "{c}");
        assert!(c.contains("proxy_pass http://10.0.0.2:7880;"), "{c}");
        assert!(!c.contains("Upgrade"), "{c}");
        assert!(c.contains("proxy_read_timeout 3s;"), "{c}");
        assert_eq!(broken.url_path(), "/livekit");
        assert_eq!(n.url_path(), "");
    }
}
