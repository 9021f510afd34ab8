//! Scenario files (spec v1): TOML in, a validated [`ScenarioSpec`] out, or *every*
//! problem in the file with its position.
//!
//! ```toml
//! name = "smoke"
//! duration = "10s"
//! [[groups]]
//! name = "speakers"
//! count = 2
//! [thresholds]
//! "continuity" = ["min >= 0.99"]
//! ```
//!
//! Keys are kebab-case and unknown keys are errors (with a did-you-mean); durations are
//! humantime strings (`"250ms"`, `"10s"`, `"2m"`). `scenarios/smoke.toml` documents the
//! base keys; `scenarios/faults/ws-drop.toml` the groups' reconnection keys (`reconnect`,
//! `health-check`, `media-timeout`, `token-ttl`) and `[[faults]]`, which are named
//! `faults[N]` (N from 1, in file order). `[sfu.config]` is the one free-form table:
//! LiveKit's own snake_case config keys, passed through untouched.
//!
//! How: a serde derive with `deny_unknown_fields` stops at the first problem, and users
//! fixing a file deserve all of them at once (`sfu-harness check`). So the parser reads
//! the spanned document (`toml::de::DeTable`) itself, in one walk that knows each table's
//! keys (modules `walk`, `sfu`, `thresholds`, `faults`): every unknown key, wrong type, bad value and bad threshold is
//! collected with its byte span, then cross-field checks run over whatever was readable
//! (module `validate`). A spec is only returned when nothing was wrong, so its required
//! fields are plain values. TOML syntax errors (all the parser can recover from) are
//! reported alone: a document that is not valid TOML has no reliable structure to check.
//!
//! Contract: [`parse`] and [`load`] do no I/O beyond reading the file; a returned spec
//! always compiles ([`crate::plan::compile`] cannot fail).

mod capacity;
pub(crate) mod diagnostic;
mod faults;
mod nginx;
mod phases;
mod sfu;
mod sites;
mod stages;
mod thresholds;
mod validate;
mod walk;

use std::fmt;
use std::time::Duration;

pub use capacity::{ADD_ROOMS, CapacitySpec};
pub use diagnostic::{Problem, ScenarioErrors};
pub use phases::PhaseSpec;
pub use sites::SiteSpec;
pub use stages::{StageSpec, schedule as stage_schedule};
pub use toml::Spanned;

use crate::fault::FaultKind;
use crate::plan::{DEFAULT_LIVEKIT_IMAGE, DEFAULT_TOKEN_TTL, ReconnectPlan, SfuKind};
use crate::threshold::{ThresholdExpr, ThresholdKey};

/// How often a `reconnect = "reinit"` group checks its session when it does not say.
pub const DEFAULT_HEALTH_CHECK: Duration = Duration::from_secs(2);
/// How long a `reconnect = "reinit"` group waits for media before it rejoins, when it
/// does not say.
pub const DEFAULT_MEDIA_TIMEOUT: Duration = Duration::from_secs(5);

/// A validated scenario file. Spans are byte ranges into the file.
#[derive(Debug, Clone, PartialEq)]
pub struct ScenarioSpec {
    pub name: Spanned<String>,
    /// Measured part of the run, from the first join.
    pub duration: Spanned<Duration>,
    /// Default: the scenario name.
    pub room: Option<Spanned<String>>,
    /// `rooms`: the groups are repeated in this many rooms, shaped alike (default 1).
    pub rooms: Option<Spanned<u32>>,
    /// `room-spacing`: room k's bots join (k-1) times this later (within a capacity
    /// step: counted from the step's first new room); default 0s.
    pub room_spacing: Option<Spanned<Duration>>,
    /// `[capacity]`: a capacity search, if the file asks for one.
    pub capacity: Option<CapacitySpec>,
    pub sfu: SfuSpec,
    /// Never empty.
    pub groups: Vec<GroupSpec>,
    /// In file order.
    pub thresholds: Vec<ThresholdSpec>,
    /// Threshold keys, exactly as written in `[thresholds]`, that must fail.
    pub expected_failures: Vec<Spanned<String>>,
    /// `[[faults]]`, in file order.
    pub faults: Vec<FaultSpec>,
    /// `[[phases]]`, in time order (the first at 0s); empty: no phase tags.
    pub phases: Vec<PhaseSpec>,
    /// `[nginx]`: a real nginx in front of the SFU's signal port, if the file asks.
    pub nginx: Option<crate::plan::NginxPlan>,
    /// `[sites.NAME]` tables, each naming a site some group lives in.
    pub sites: Vec<SiteSpec>,
}

impl ScenarioSpec {
    pub fn room(&self) -> &str {
        self.room.as_ref().unwrap_or(&self.name).get_ref()
    }

    pub fn rooms(&self) -> u32 {
        self.rooms.as_ref().map_or(1, |r| *r.get_ref())
    }

    pub fn room_spacing(&self) -> Duration {
        self.room_spacing
            .as_ref()
            .map_or(Duration::ZERO, |d| *d.get_ref())
    }
}

/// `[sfu]`: which SFU to start and how.
#[derive(Debug, Clone, PartialEq)]
pub struct SfuSpec {
    pub kind: SfuKind,
    /// Default: [`DEFAULT_LIVEKIT_IMAGE`].
    pub image: Option<Spanned<String>>,
    /// Both or neither; generated per run when absent.
    pub api_key: Option<Spanned<String>>,
    pub api_secret: Option<Spanned<Secret>>,
    /// `[sfu.config]`: merged over the harness's LiveKit config.
    pub config: toml::Table,
    /// `config-file`: the user's own LiveKit YAML, relative to the scenario.
    pub config_file: Option<Spanned<String>>,
    /// The file read and parsed, by [`load`] (`parse` alone does not read it).
    pub config_file_loaded: Option<LoadedConfigFile>,
    /// `env`: environment variables for LiveKit (e.g. `LIVEKIT_KEYS`). Values may be
    /// secrets: never printed.
    pub env: std::collections::BTreeMap<String, Secret>,
    /// Extra Docker networks the SFU container is attached to, which the bots cannot
    /// reach (a multi-homed host, incident 000); default 0.
    pub extra_networks: u8,
    /// LiveKit nodes sharing one Redis (multi-node); default 1 (no Redis).
    pub nodes: u8,
}

impl SfuSpec {
    pub fn image(&self) -> &str {
        self.image
            .as_ref()
            .map_or(DEFAULT_LIVEKIT_IMAGE, |i| i.get_ref())
    }
}

impl Default for SfuSpec {
    fn default() -> Self {
        SfuSpec {
            kind: SfuKind::Livekit,
            image: None,
            api_key: None,
            api_secret: None,
            config: toml::Table::new(),
            config_file: None,
            config_file_loaded: None,
            env: std::collections::BTreeMap::new(),
            extra_networks: 0,
            nodes: 1,
        }
    }
}

/// A string that must not be printed: `Debug` shows `(hidden)`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    /// The secret itself, for the one place that needs it (the SFU's config).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(hidden)")
    }
}

/// `[[groups]]`: `count` bots that behave alike.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupSpec {
    pub name: Spanned<String>,
    /// At least 1.
    pub count: Spanned<u32>,
    /// Default: the group name.
    pub identity_prefix: Option<Spanned<String>>,
    /// Default: true (false for a lean group, which only receives).
    pub publish_audio: Option<bool>,
    /// Default: false.
    pub publish_video: Option<bool>,
    /// Only with `publish-video`; default [`crate::plan::DEFAULT_VIDEO_FPS`].
    pub video_fps: Option<Spanned<u32>>,
    /// Only with `publish-video`; default [`crate::plan::DEFAULT_VIDEO_KBPS`].
    pub video_kbps: Option<Spanned<u32>>,
    /// Only with `publish-video`: three simulcast layers; default false.
    pub simulcast: Option<bool>,
    /// The layer the group's bots ask for on every video track they receive.
    pub video_quality: Option<Spanned<crate::plan::VideoQuality>>,
    /// Each bot sends a message on `_reliable` and one on `_lossy` this often; default none.
    pub data_interval: Option<Spanned<Duration>>,
    /// The `canPublish` grant of the group's tokens; default true. False with media to
    /// publish is a misconfiguration the SFU answers with NOT_ALLOWED.
    pub can_publish: Option<bool>,
    /// A lean bot: receive-only, one task per bot, no reconnection (the listeners of a
    /// capacity run); default false.
    pub lean: Option<bool>,
    /// Which SFU node (1-based) the group's bots connect to; default 1.
    pub node: Option<Spanned<u8>>,
    /// The network site (a network namespace the run creates) the group's bots live in;
    /// default none: the host's own namespace. Groups naming the same site share it.
    pub site: Option<Spanned<String>>,
    /// Delay between successive joins; default 0s.
    pub join_spacing: Option<Spanned<Duration>>,
    /// When the first bot starts joining; default 0s.
    pub join_at: Option<Spanned<Duration>>,
    /// Default: [`ReconnectPolicy::Sdk`] ([`ReconnectPolicy::None`] for a lean group).
    pub reconnect: Option<Spanned<ReconnectPolicy>>,
    /// Only with `reconnect = "reinit"`; default [`DEFAULT_HEALTH_CHECK`], at least 100ms.
    pub health_check: Option<Spanned<Duration>>,
    /// Only with `reconnect = "reinit"`; default [`DEFAULT_MEDIA_TIMEOUT`], at least 100ms.
    pub media_timeout: Option<Spanned<Duration>>,
    /// Default: [`DEFAULT_TOKEN_TTL`]; at least 1s.
    pub token_ttl: Option<Spanned<Duration>>,
    /// How far the group's clock is off, for the tokens the harness mints for it
    /// (milliseconds, + ahead); default 0.
    pub clock_skew_ms: Option<Spanned<i64>>,
    /// `stages`: the group's count over time (ramp up, hold, ramp down); its `count` is
    /// then the largest target.
    pub stages: Option<Vec<StageSpec>>,
}

impl GroupSpec {
    pub fn identity_prefix(&self) -> &str {
        self.identity_prefix
            .as_ref()
            .unwrap_or(&self.name)
            .get_ref()
    }

    pub fn publish_audio(&self) -> bool {
        self.publish_audio.unwrap_or(!self.lean())
    }

    pub fn lean(&self) -> bool {
        self.lean == Some(true)
    }

    /// The group's synthetic video, if it publishes any.
    pub fn video(&self) -> Option<crate::plan::VideoPlan> {
        (self.publish_video == Some(true)).then(|| crate::plan::VideoPlan {
            fps: self
                .video_fps
                .as_ref()
                .map_or(crate::plan::DEFAULT_VIDEO_FPS, |f| *f.get_ref()),
            kbps: self
                .video_kbps
                .as_ref()
                .map_or(crate::plan::DEFAULT_VIDEO_KBPS, |k| *k.get_ref()),
            simulcast: self.simulcast == Some(true),
        })
    }

    pub fn data_interval(&self) -> Option<Duration> {
        self.data_interval.as_ref().map(|d| *d.get_ref())
    }

    pub fn join_spacing(&self) -> Duration {
        self.join_spacing
            .as_ref()
            .map_or(Duration::ZERO, |d| *d.get_ref())
    }

    pub fn join_at(&self) -> Duration {
        self.join_at
            .as_ref()
            .map_or(Duration::ZERO, |d| *d.get_ref())
    }

    /// When each bot (index `n - 1`) starts joining and, for a staged group, leaves.
    pub fn schedule(&self) -> Vec<(Duration, Option<Duration>)> {
        match &self.stages {
            Some(stages) => stages::schedule(stages)
                .into_iter()
                .map(|(j, l)| (self.join_at() + j, l.map(|l| self.join_at() + l)))
                .collect(),
            None => (1..=*self.count.get_ref())
                .map(|n| (self.join_at() + self.join_spacing() * (n - 1), None))
                .collect(),
        }
    }

    /// The group's reconnection policy with its defaults filled in.
    pub fn reconnect(&self) -> ReconnectPlan {
        let policy = self.reconnect.as_ref().map_or_else(
            || {
                if self.lean() {
                    ReconnectPolicy::None
                } else {
                    ReconnectPolicy::default()
                }
            },
            |r| *r.get_ref(),
        );
        let or =
            |d: &Option<Spanned<Duration>>, default| d.as_ref().map_or(default, |d| *d.get_ref());
        match policy {
            ReconnectPolicy::None => ReconnectPlan::None,
            ReconnectPolicy::Sdk => ReconnectPlan::Sdk,
            ReconnectPolicy::Reinit => ReconnectPlan::Reinit {
                check_every: or(&self.health_check, DEFAULT_HEALTH_CHECK),
                media_timeout: or(&self.media_timeout, DEFAULT_MEDIA_TIMEOUT),
            },
        }
    }

    pub fn clock_skew_ms(&self) -> i64 {
        self.clock_skew_ms.as_ref().map_or(0, |s| *s.get_ref())
    }

    pub fn token_ttl(&self) -> Duration {
        self.token_ttl
            .as_ref()
            .map_or(DEFAULT_TOKEN_TTL, |d| *d.get_ref())
    }
}

/// A group's `reconnect` value, as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReconnectPolicy {
    /// `"none"`: stay out after any disconnect.
    None,
    /// `"sdk"`: what LiveKit's client SDKs do.
    #[default]
    Sdk,
    /// `"reinit"`: health checks, and a full rejoin with a fresh token on failure.
    Reinit,
}

impl ReconnectPolicy {
    /// In the order messages list them.
    pub const ALL: [ReconnectPolicy; 3] = [
        ReconnectPolicy::Sdk,
        ReconnectPolicy::None,
        ReconnectPolicy::Reinit,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ReconnectPolicy::None => "none",
            ReconnectPolicy::Sdk => "sdk",
            ReconnectPolicy::Reinit => "reinit",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }
}

/// One `[[faults]]` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultSpec {
    /// 1-based position among `[[faults]]`: the fault is `faults[number]`.
    pub number: usize,
    /// Offset from the start of the run's clock; before its end.
    pub at: Spanned<Duration>,
    /// `for`: never for instantaneous kinds; `None`: until the end of the run.
    pub duration: Option<Spanned<Duration>>,
    /// As written: `proxy`, `sfu`, a group name or a bot identity, as the kind requires.
    pub target: Spanned<String>,
    pub effect: Spanned<FaultKind>,
    /// `ws-refuse-upgrade` (required there, 200 to 599).
    pub status: Option<Spanned<u16>>,
    /// `ws-idle-timeout` (required there, at least 100ms).
    pub idle: Option<Spanned<Duration>>,
    /// `loss` (required there, 1 to 100).
    pub percent: Option<Spanned<u8>>,
    /// `delay` (required there) and its optional `jitter`, at most 10s each.
    pub delay: Option<Spanned<Duration>>,
    pub jitter: Option<Spanned<Duration>>,
    /// `block-udp` (optional) and `block-tcp` (required): SFU-side ports, 1 to 65535.
    pub ports: Option<Spanned<Vec<u16>>>,
    /// `block-udp` (optional, not with `ports`): SFU-side ports left open.
    pub except_ports: Option<Spanned<Vec<u16>>>,
    /// `block-udp`/`block-tcp`: `in`, `out` or `both` (default).
    pub direction: Option<Spanned<crate::fault::Direction>>,
    /// `bandwidth` (required): kbit/s each way.
    pub kbps: Option<Spanned<u32>>,
    /// `path-prefix` (required): `/segment[/segment…]`.
    pub prefix: Option<Spanned<String>>,
    /// `path-prefix`: whether the proxy strips the prefix (default false: the mistake).
    pub strip: Option<bool>,
    /// `sfu-kill`, `sfu-restart`, `sfu-drain`: the node, 1 to `sfu.nodes` (default 1).
    pub node: Option<Spanned<u8>>,
}

impl FaultSpec {
    /// `faults[N]`: how messages, events and reports name it.
    pub fn id(&self) -> String {
        format!("faults[{}]", self.number)
    }
}

/// One `[thresholds]` entry: a key and its expressions, parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct ThresholdSpec {
    /// As written.
    pub key: Spanned<String>,
    pub parsed: ThresholdKey,
    pub exprs: Vec<ExprSpec>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ExprSpec {
    /// As written.
    pub text: Spanned<String>,
    pub parsed: ThresholdExpr,
}

/// Parses and validates scenario text; `path` names the file in messages.
pub fn parse(source: &str, path: &str) -> Result<ScenarioSpec, ScenarioErrors> {
    let (doc, syntax) = toml::de::DeTable::parse_recoverable(source);
    let shown = sfu::redact_secret(source, doc.get_ref());
    if !syntax.is_empty() {
        let problems = syntax
            .iter()
            .map(|e| {
                let span = e.span().unwrap_or(0..0);
                let mut message = format!("invalid toml: {}", e.message().trim());
                if let Some(key) = source
                    .get(span.clone())
                    .filter(|_| message.ends_with("duplicate key"))
                {
                    message.push_str(&format!(" `{key}`"));
                }
                (span, message)
            })
            .collect();
        return Err(ScenarioErrors::new(path, shown, problems));
    }
    let mut cx = walk::Cx::new(source);
    let draft = walk::scenario(&mut cx, doc.get_ref());
    validate::check(&mut cx, &draft);
    match draft.finish() {
        Some(spec) if cx.problems.is_empty() => Ok(spec),
        _ => Err(ScenarioErrors::new(path, shown, cx.problems)),
    }
}

/// The user's LiveKit config file as read.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedConfigFile {
    /// As the messages and the report name it.
    pub path: String,
    pub text: String,
    pub map: serde_json::Map<String, serde_json::Value>,
}

/// Reads and parses a scenario file, and the LiveKit config file it names. An
/// unreadable scenario is one problem without a position (line 0, column 0); an
/// unreadable or broken config file is a problem at its `config-file` key, naming the
/// file's own line and column.
pub fn load(path: &std::path::Path) -> Result<ScenarioSpec, ScenarioErrors> {
    let shown = path.display().to_string();
    let source = std::fs::read_to_string(path).map_err(|e| {
        ScenarioErrors::unreadable(&shown, format!("cannot read the scenario file: {e}"))
    })?;
    let mut spec = parse(&source, &shown)?;
    if let Some(file) = spec.sfu.config_file.clone() {
        let full = path
            .parent()
            .unwrap_or_else(|| std::path::Path::new("."))
            .join(file.get_ref());
        let name = full.display().to_string();
        let loaded = std::fs::read_to_string(&full)
            .map_err(|e| format!("cannot read sfu.config-file {name}: {e}"))
            .and_then(|text| match crate::sfu_file::parse(&text) {
                Ok(map) => Ok(LoadedConfigFile {
                    path: name.clone(),
                    text,
                    map,
                }),
                Err(e) => Err(format!(
                    "{name}:{}:{}: the LiveKit config is not valid YAML: {}",
                    e.line, e.column, e.message
                )),
            });
        match loaded {
            Ok(l) => spec.sfu.config_file_loaded = Some(l),
            Err(message) => {
                let (doc, _) = toml::de::DeTable::parse_recoverable(&source);
                let shown_source = sfu::redact_secret(&source, doc.get_ref());
                return Err(ScenarioErrors::new(
                    &shown,
                    shown_source,
                    vec![(file.span(), message)],
                ));
            }
        }
    }
    Ok(spec)
}

#[cfg(test)]
mod tests;
