//! Reads the spanned TOML document into a [`Draft`], collecting every problem.
//!
//! Each table is read against its list of known keys, so unknown keys, missing keys,
//! wrong types and single-value checks (ranges, formats) are all found in one walk. A
//! field that has a problem stays `None` in the draft, so the cross-field checks in
//! [`super::validate`] only ever see values that are fine on their own (no cascades).

use std::ops::Range;
use std::time::Duration;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::diagnostic::hint;
use super::faults::FaultDraft;
use super::{GroupSpec, ReconnectPolicy, ScenarioSpec, SfuSpec, ThresholdSpec};

pub(super) const TOP_KEYS: &[&str] = &[
    "name",
    "duration",
    "room",
    "rooms",
    "room-spacing",
    "sfu",
    "groups",
    "faults",
    "phases",
    "nginx",
    "sites",
    "thresholds",
    "expected-failures",
    "capacity",
];
/// Most rooms a scenario may spread its groups over.
pub(super) const MAX_ROOMS: i64 = 1_000;
const GROUP_KEYS: &[&str] = &[
    "name",
    "count",
    "identity-prefix",
    "publish-audio",
    "publish-video",
    "video-fps",
    "video-kbps",
    "simulcast",
    "video-quality",
    "data-interval",
    "can-publish",
    "lean",
    "node",
    "site",
    "join-spacing",
    "join-at",
    "reconnect",
    "health-check",
    "media-timeout",
    "token-ttl",
    "clock-skew",
    "stages",
];

/// Longest run, join-at and join-spacing a scenario may ask for.
pub(super) const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);
/// Most bots one group may hold.
pub(super) const MAX_COUNT: i64 = 10_000;
/// Shortest health-check period (and media timeout) a reinit group may ask for.
pub(super) const MIN_HEALTH_CHECK: Duration = Duration::from_millis(100);
/// Frame rates a video group may ask for.
pub(super) const VIDEO_FPS: std::ops::RangeInclusive<i64> = 1..=60;
/// Video bitrates a group may ask for, kbit/s (of the top layer, with simulcast): from
/// one small packet per frame (it must hold the measurement stamp) to 1080p rates.
pub(super) const VIDEO_KBPS: std::ops::RangeInclusive<i64> = 16..=4000;
/// Shortest interval between a bot's data messages.
pub(super) const MIN_DATA_INTERVAL: Duration = Duration::from_millis(10);
/// Shortest token lifetime a group may ask for.
pub(super) const MIN_TOKEN_TTL: Duration = Duration::from_secs(1);

/// The problems found so far, as byte spans of the source.
pub(super) struct Cx<'s> {
    pub source: &'s str,
    pub problems: Vec<(Range<usize>, String)>,
}

impl<'s> Cx<'s> {
    pub fn new(source: &'s str) -> Self {
        Cx {
            source,
            problems: Vec::new(),
        }
    }

    pub fn error(&mut self, span: Range<usize>, message: impl Into<String>) {
        self.problems.push((span, message.into()));
    }
}

/// Everything readable from the file; `None` where a value was missing or wrong.
pub(super) struct Draft {
    pub name: Option<Spanned<String>>,
    pub duration: Option<Spanned<Duration>>,
    pub room: Option<Spanned<String>>,
    pub rooms: Option<Spanned<u32>>,
    pub room_spacing: Option<Spanned<Duration>>,
    pub capacity: Option<super::capacity::CapacityDraft>,
    pub sfu: SfuSpec,
    pub groups: Option<Vec<GroupDraft>>,
    pub thresholds: Vec<ThresholdSpec>,
    /// Every `[thresholds]` key as written, readable or not.
    pub threshold_keys: Vec<String>,
    pub expected_failures: Vec<Spanned<String>>,
    /// `[[faults]]` in file order.
    pub faults: Vec<FaultDraft>,
    /// `[[phases]]` in file order.
    pub phases: Vec<super::phases::PhaseDraft>,
    pub nginx: Option<crate::plan::NginxPlan>,
    pub sites: Vec<super::sites::SiteSpec>,
    complete: bool,
}

pub(super) struct GroupDraft {
    /// 1-based position among `[[groups]]`.
    pub number: usize,
    /// The `[[groups]]` header.
    pub span: Range<usize>,
    pub name: Option<Spanned<String>>,
    pub count: Option<Spanned<u32>>,
    pub identity_prefix: Option<Spanned<String>>,
    pub publish_audio: Option<bool>,
    pub publish_video: Option<bool>,
    pub video_fps: Option<Spanned<u32>>,
    pub video_kbps: Option<Spanned<u32>>,
    pub simulcast: Option<bool>,
    pub video_quality: Option<Spanned<crate::plan::VideoQuality>>,
    pub data_interval: Option<Spanned<Duration>>,
    pub can_publish: Option<bool>,
    pub lean: Option<bool>,
    pub node: Option<Spanned<u8>>,
    pub site: Option<Spanned<String>>,
    pub join_spacing: Option<Spanned<Duration>>,
    pub join_at: Option<Spanned<Duration>>,
    pub reconnect: Option<Spanned<ReconnectPolicy>>,
    pub health_check: Option<Spanned<Duration>>,
    pub media_timeout: Option<Spanned<Duration>>,
    pub token_ttl: Option<Spanned<Duration>>,
    pub clock_skew_ms: Option<Spanned<i64>>,
    pub stages: Option<Spanned<Vec<super::stages::StageSpec>>>,
    /// Nothing in the group's table had a problem: its bots' identities are known.
    pub ok: bool,
}

impl GroupDraft {
    /// How messages name the group: by name when it has a good one.
    pub fn label(&self) -> String {
        match &self.name {
            Some(n) => format!("group `{}`", n.get_ref()),
            None => format!("group #{}", self.number),
        }
    }
}

impl Draft {
    /// The spec, when every required part was readable.
    pub fn finish(self) -> Option<ScenarioSpec> {
        let groups = self
            .groups?
            .into_iter()
            .map(|g| {
                Some(GroupSpec {
                    name: g.name?,
                    count: g.count?,
                    identity_prefix: g.identity_prefix,
                    publish_audio: g.publish_audio,
                    publish_video: g.publish_video,
                    video_fps: g.video_fps,
                    video_kbps: g.video_kbps,
                    simulcast: g.simulcast,
                    video_quality: g.video_quality,
                    data_interval: g.data_interval,
                    can_publish: g.can_publish,
                    lean: g.lean,
                    node: g.node,
                    site: g.site,
                    join_spacing: g.join_spacing,
                    join_at: g.join_at,
                    reconnect: g.reconnect,
                    health_check: g.health_check,
                    media_timeout: g.media_timeout,
                    token_ttl: g.token_ttl,
                    clock_skew_ms: g.clock_skew_ms,
                    stages: g.stages.map(|s| s.into_inner()),
                })
            })
            .collect::<Option<Vec<_>>>()?;
        let faults = self
            .faults
            .into_iter()
            .map(FaultDraft::finish)
            .collect::<Option<Vec<_>>>()?;
        let phases = self
            .phases
            .into_iter()
            .map(super::phases::PhaseDraft::finish)
            .collect::<Option<Vec<_>>>()?;
        let capacity = match self.capacity {
            Some(c) => Some(c.finish()?),
            None => None,
        };
        self.complete.then_some(())?;
        Some(ScenarioSpec {
            name: self.name?,
            duration: self.duration?,
            room: self.room,
            rooms: self.rooms,
            room_spacing: self.room_spacing,
            capacity,
            sfu: self.sfu,
            groups,
            thresholds: self.thresholds,
            expected_failures: self.expected_failures,
            faults,
            phases,
            nginx: self.nginx,
            sites: self.sites,
        })
    }
}

pub(super) fn spanned<T>(span: Range<usize>, value: T) -> Spanned<T> {
    Spanned::new(span, value)
}

/// `the integer 10`, `the string "x"`, `a table`: a value as messages show it.
pub(super) fn describe(v: &DeValue<'_>) -> String {
    match v {
        DeValue::String(s) => format!("the string {s:?}"),
        DeValue::Integer(i) => format!("the integer {i}"),
        DeValue::Float(f) => format!("the float {f}"),
        DeValue::Boolean(b) => format!("the boolean {b}"),
        DeValue::Datetime(d) => format!("the datetime {d}"),
        DeValue::Array(_) => "an array".to_owned(),
        DeValue::Table(_) => "a table".to_owned(),
    }
}

/// The known fields of `table`; every unknown key is reported against `place`.
pub(super) fn fields<'t, 'i>(
    cx: &mut Cx<'_>,
    table: &'t DeTable<'i>,
    place: &str,
    known: &[&'static str],
) -> Vec<(&'static str, &'t Spanned<DeValue<'i>>)> {
    let mut out = Vec::new();
    for (k, v) in table.iter() {
        match known.iter().find(|n| **n == k.get_ref().as_ref()) {
            Some(name) => out.push((*name, v)),
            None => {
                let key = k.get_ref();
                let hint = hint(key, known.iter().copied());
                cx.error(
                    k.span(),
                    format!(
                        "unknown key `{key}` in {place}; expected one of: {}{hint}",
                        known.join(", ")
                    ),
                );
            }
        }
    }
    out
}

pub(super) fn get<'t, 'i>(
    fields: &[(&str, &'t Spanned<DeValue<'i>>)],
    name: &str,
) -> Option<&'t Spanned<DeValue<'i>>> {
    fields.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
}

pub(super) fn string(
    cx: &mut Cx<'_>,
    v: &Spanned<DeValue<'_>>,
    what: &str,
) -> Option<Spanned<String>> {
    match v.get_ref() {
        DeValue::String(s) => Some(spanned(v.span(), s.to_string())),
        other => {
            cx.error(
                v.span(),
                format!("{what} must be a string, but is {}", describe(other)),
            );
            None
        }
    }
}

/// A name used in paths, tags or identities: `[A-Za-z0-9][A-Za-z0-9._-]*`.
pub(super) fn ident(
    cx: &mut Cx<'_>,
    v: &Spanned<DeValue<'_>>,
    what: &str,
) -> Option<Spanned<String>> {
    let s = string(cx, v, what)?;
    let text = s.get_ref();
    let ok = text.starts_with(|c: char| c.is_ascii_alphanumeric())
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !ok {
        cx.error(
            s.span(),
            format!(
                "{what} must start with a letter or digit and contain only letters, digits, `.`, `_` and `-`, but is `{text}`"
            ),
        );
        return None;
    }
    Some(s)
}

/// `/`, or a path such as `/livekit`: `/`, then letters, digits, `-`, `_`, `.`, `~` or
/// `/`, not ending in `/`.
pub(super) fn is_url_path(text: &str) -> bool {
    text.starts_with('/')
        && (text == "/" || !text.ends_with('/'))
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '_' | '.' | '~'))
}

pub(super) fn boolean(cx: &mut Cx<'_>, v: &Spanned<DeValue<'_>>, what: &str) -> Option<bool> {
    match v.get_ref() {
        DeValue::Boolean(b) => Some(*b),
        other => {
            cx.error(
                v.span(),
                format!("{what} must be true or false, but is {}", describe(other)),
            );
            None
        }
    }
}

/// A duration with an optional sign (`"+10m"`, `"-90s"`, `"30s"`), in milliseconds.
pub(super) fn signed_duration(
    cx: &mut Cx<'_>,
    v: &Spanned<DeValue<'_>>,
    what: &str,
) -> Option<Spanned<i64>> {
    let (negative, d) = bounded_duration(cx, v, what, true)?;
    let ms = d.as_millis() as i64;
    Some(spanned(v.span(), if negative { -ms } else { ms }))
}

/// A humantime duration string, at most [`MAX_DURATION`].
pub(super) fn duration(
    cx: &mut Cx<'_>,
    v: &Spanned<DeValue<'_>>,
    what: &str,
) -> Option<Spanned<Duration>> {
    let (_, d) = bounded_duration(cx, v, what, false)?;
    Some(spanned(v.span(), d))
}

/// Reads a duration string of at most [`MAX_DURATION`]; with `signed` it may start
/// with `+` or `-` (returned as the first value: negative).
fn bounded_duration(
    cx: &mut Cx<'_>,
    v: &Spanned<DeValue<'_>>,
    what: &str,
    signed: bool,
) -> Option<(bool, Duration)> {
    let (examples, kind, bound) = if signed {
        (
            "\"+10m\" or \"-90s\"",
            "a duration with an optional sign",
            "at most 24h either way",
        )
    } else {
        ("\"10s\" or \"250ms\"", "a duration", "at most 24h")
    };
    let DeValue::String(text) = v.get_ref() else {
        let found = describe(v.get_ref());
        cx.error(
            v.span(),
            format!("{what} must be a duration string, such as {examples}, but is {found}"),
        );
        return None;
    };
    let trimmed = text.trim();
    let (negative, digits) = match trimmed.strip_prefix('-') {
        Some(rest) if signed => (true, rest.trim_start()),
        _ if signed => (
            false,
            trimmed.strip_prefix('+').unwrap_or(trimmed).trim_start(),
        ),
        _ => (false, text.as_ref()),
    };
    let Ok(d) = humantime::parse_duration(digits) else {
        cx.error(
            v.span(),
            format!("{what} must be {kind}, such as {examples}, but is {text:?}"),
        );
        return None;
    };
    if d > MAX_DURATION {
        cx.error(
            v.span(),
            format!("{what} must be {bound}, but is {trimmed}"),
        );
        return None;
    }
    Some((negative, d))
}

pub(super) fn table<'t, 'i>(
    cx: &mut Cx<'_>,
    v: &'t Spanned<DeValue<'i>>,
    what: &str,
) -> Option<&'t DeTable<'i>> {
    match v.get_ref() {
        DeValue::Table(t) => Some(t),
        other => {
            cx.error(
                v.span(),
                format!("{what} must be a table, but is {}", describe(other)),
            );
            None
        }
    }
}

pub(super) fn scenario(cx: &mut Cx<'_>, doc: &DeTable<'_>) -> Draft {
    let f = fields(cx, doc, "the top level", TOP_KEYS);
    let mut complete = true;
    let mut required = |cx: &mut Cx<'_>, key: &str, extra: &str| {
        let v = get(&f, key);
        if v.is_none() {
            cx.error(0..0, format!("missing key `{key}` in the top level{extra}"));
            complete = false;
        }
        v
    };
    let name_v = required(cx, "name", "");
    let duration_v = required(cx, "duration", "; add, for example, duration = \"10s\"");
    let groups_v = required(cx, "groups", "; add at least one [[groups]] table");

    let name = name_v.and_then(|v| ident(cx, v, "name"));
    let duration = duration_v
        .and_then(|v| duration(cx, v, "duration"))
        .filter(|d| {
            let zero = d.get_ref().is_zero();
            if zero {
                let written = cx.source[d.span()]
                    .trim_matches(['"', '\''])
                    .trim()
                    .to_owned();
                cx.error(
                    d.span(),
                    format!("duration must be more than 0s, but is {written}"),
                );
            }
            !zero
        });
    let room = get(&f, "room").and_then(|v| ident(cx, v, "room"));
    let rooms = ranged(cx, &f, "rooms", "rooms", 1..=MAX_ROOMS)
        .map(|n| spanned(n.span(), *n.get_ref() as u32));
    let room_spacing =
        get(&f, "room-spacing").and_then(|v| super::walk::duration(cx, v, "room-spacing"));
    let capacity = match get(&f, "capacity").map(|v| (v.span(), table(cx, v, "capacity"))) {
        None => None,
        Some((_, None)) => {
            complete = false;
            None
        }
        Some((span, Some(t))) => Some(super::capacity::read(cx, t, span)),
    };
    let sfu = get(&f, "sfu")
        .and_then(|v| table(cx, v, "sfu"))
        .map_or_else(SfuSpec::default, |t| super::sfu::read(cx, t));
    let groups = groups_v.and_then(|v| groups(cx, v));
    let (thresholds, threshold_keys) =
        match get(&f, "thresholds").and_then(|v| table(cx, v, "thresholds")) {
            Some(t) => super::thresholds::read(cx, t),
            None => (Vec::new(), Vec::new()),
        };
    let expected_failures =
        get(&f, "expected-failures").map_or_else(Vec::new, |v| strings(cx, v, "expected-failures"));
    let faults = get(&f, "faults").map_or_else(Vec::new, |v| super::faults::read(cx, v));
    let phases = get(&f, "phases").map_or_else(Vec::new, |v| super::phases::read(cx, v));
    let sites = get(&f, "sites").map_or_else(Vec::new, |v| super::sites::read(cx, v));
    let nginx = match get(&f, "nginx").map(|v| table(cx, v, "nginx")) {
        None => None,
        Some(None) => {
            complete = false;
            None
        }
        Some(Some(t)) => {
            let n = super::nginx::read(cx, t);
            complete &= n.is_some();
            n
        }
    };
    Draft {
        name,
        duration,
        room,
        rooms,
        room_spacing,
        capacity,
        sfu,
        groups,
        thresholds,
        threshold_keys,
        expected_failures,
        faults,
        phases,
        nginx,
        sites,
        complete,
    }
}

fn strings(cx: &mut Cx<'_>, v: &Spanned<DeValue<'_>>, what: &str) -> Vec<Spanned<String>> {
    let DeValue::Array(items) = v.get_ref() else {
        cx.error(
            v.span(),
            format!(
                "{what} must be an array of strings, but is {}",
                describe(v.get_ref())
            ),
        );
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|item| string(cx, item, &format!("each entry of {what}")))
        .collect()
}

fn groups(cx: &mut Cx<'_>, v: &Spanned<DeValue<'_>>) -> Option<Vec<GroupDraft>> {
    let not_tables = |cx: &mut Cx<'_>, found: String| {
        cx.error(
            v.span(),
            format!("groups must be an array of tables ([[groups]]), but is {found}"),
        );
    };
    let DeValue::Array(items) = v.get_ref() else {
        not_tables(cx, describe(v.get_ref()));
        return None;
    };
    if items.is_empty() {
        cx.error(
            v.span(),
            "groups must not be empty; add at least one [[groups]] table",
        );
        return None;
    }
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let DeValue::Table(t) = item.get_ref() else {
            not_tables(cx, format!("an array holding {}", describe(item.get_ref())));
            return None;
        };
        out.push(group(cx, t, i + 1, item.span()));
    }
    Some(out)
}

fn group(cx: &mut Cx<'_>, t: &DeTable<'_>, number: usize, span: Range<usize>) -> GroupDraft {
    let problems_before = cx.problems.len();
    // Read the name first: every other message names the group by it.
    let name_v = t
        .iter()
        .find(|(k, _)| k.get_ref() == "name")
        .map(|(_, v)| v);
    let name = name_v.and_then(|v| ident(cx, v, &format!("name of group #{number}")));
    let mut g = GroupDraft {
        number,
        span,
        name,
        count: None,
        identity_prefix: None,
        publish_audio: None,
        publish_video: None,
        video_fps: None,
        video_kbps: None,
        simulcast: None,
        video_quality: None,
        data_interval: None,
        can_publish: None,
        lean: None,
        node: None,
        site: None,
        join_spacing: None,
        join_at: None,
        reconnect: None,
        health_check: None,
        media_timeout: None,
        token_ttl: None,
        clock_skew_ms: None,
        stages: None,
        ok: false,
    };
    let label = g.label();
    let f = fields(cx, t, &label, GROUP_KEYS);
    let staged = get(&f, "stages").is_some();
    for key in ["name", "count"] {
        if get(&f, key).is_none() && !(key == "count" && staged) {
            cx.error(g.span.clone(), format!("missing key `{key}` in {label}"));
        }
    }
    if staged {
        for key in ["count", "join-spacing"] {
            if let Some(v) = get(&f, key) {
                cx.error(
                    v.span(),
                    format!(
                        "{key} of {label} cannot be used with stages: the stages set when its bots join (and the group's size, their largest target)"
                    ),
                );
            }
        }
    }
    g.count = get(&f, "count")
        .and_then(|v| integer(cx, v, &format!("count of {label}")))
        .and_then(|n| {
            let (span, n) = (n.span(), *n.get_ref());
            if (1..=MAX_COUNT).contains(&n) {
                return Some(spanned(span, n as u32));
            }
            let bound = if n < 1 {
                "at least 1".to_owned()
            } else {
                format!("at most {MAX_COUNT}")
            };
            let written = cx.source[span.clone()].to_owned();
            cx.error(
                span,
                format!("count of {label} must be {bound}, but is {written}"),
            );
            None
        });
    if let Some(v) = get(&f, "stages") {
        g.stages = super::stages::read(cx, v, &label);
        if let Some(s) = &g.stages
            && get(&f, "count").is_none()
        {
            let max = s.get_ref().iter().map(|s| s.target).max().unwrap_or(0);
            g.count = Some(spanned(s.span(), max));
        }
    }
    g.identity_prefix = get(&f, "identity-prefix")
        .and_then(|v| ident(cx, v, &format!("identity-prefix of {label}")));
    g.publish_audio =
        get(&f, "publish-audio").and_then(|v| boolean(cx, v, &format!("publish-audio of {label}")));
    video(cx, &f, &label, &mut g);
    g.data_interval = get(&f, "data-interval")
        .and_then(|v| duration(cx, v, &format!("data-interval of {label}")))
        .and_then(|d| {
            at_least(
                cx,
                d,
                MIN_DATA_INTERVAL,
                &format!("data-interval of {label}"),
            )
        });
    g.can_publish =
        get(&f, "can-publish").and_then(|v| boolean(cx, v, &format!("can-publish of {label}")));
    g.node = get(&f, "node")
        .and_then(|v| integer(cx, v, &format!("node of {label}")))
        .and_then(|n| {
            let (span, n) = (n.span(), *n.get_ref());
            if (1..=super::sfu::MAX_NODES).contains(&n) {
                return Some(spanned(span, n as u8));
            }
            cx.error(
                span,
                format!(
                    "node of {label} must be from 1 to {}, but is {n}",
                    super::sfu::MAX_NODES
                ),
            );
            None
        });
    g.site = get(&f, "site").and_then(|v| ident(cx, v, &format!("site of {label}")));
    g.join_spacing =
        get(&f, "join-spacing").and_then(|v| duration(cx, v, &format!("join-spacing of {label}")));
    g.join_at = get(&f, "join-at").and_then(|v| duration(cx, v, &format!("join-at of {label}")));
    reconnect(cx, &f, &label, &mut g);
    lean(cx, &f, &label, &mut g);
    g.token_ttl = get(&f, "token-ttl")
        .and_then(|v| duration(cx, v, &format!("token-ttl of {label}")))
        .and_then(|d| at_least(cx, d, MIN_TOKEN_TTL, &format!("token-ttl of {label}")));
    g.clock_skew_ms = get(&f, "clock-skew")
        .and_then(|v| signed_duration(cx, v, &format!("clock-skew of {label}")));
    g.ok = cx.problems.len() == problems_before;
    g
}

/// `lean`, and what a lean group cannot do: publish anything, or reconnect.
fn lean(cx: &mut Cx<'_>, f: &[(&str, &Spanned<DeValue<'_>>)], label: &str, g: &mut GroupDraft) {
    g.lean = get(f, "lean").and_then(|v| boolean(cx, v, &format!("lean of {label}")));
    if g.lean != Some(true) {
        return;
    }
    let publishes = [
        ("publish-audio", g.publish_audio == Some(true)),
        ("publish-video", g.publish_video == Some(true)),
        ("data-interval", g.data_interval.is_some()),
    ];
    for (key, set) in publishes {
        if let (true, Some(v)) = (set, get(f, key)) {
            cx.error(
                v.span(),
                format!(
                    "{key} of {label} cannot be used with lean = true: a lean bot only receives; publish from another group"
                ),
            );
        }
    }
    if let Some(r) = &g.reconnect
        && *r.get_ref() != ReconnectPolicy::None
    {
        cx.error(
            r.span(),
            format!(
                "reconnect of {label} must be \"none\" with lean = true: a lean bot stays out after a disconnect; drop lean for a reconnecting group"
            ),
        );
    }
}

/// `publish-video`, and the keys only a video group takes: `video-fps`, `video-kbps` and
/// `simulcast`; and `video-quality`, which any group may take (it is about receiving).
fn video(cx: &mut Cx<'_>, f: &[(&str, &Spanned<DeValue<'_>>)], label: &str, g: &mut GroupDraft) {
    g.publish_video =
        get(f, "publish-video").and_then(|v| boolean(cx, v, &format!("publish-video of {label}")));
    let publishes = g.publish_video == Some(true);
    let only_video = |cx: &mut Cx<'_>, key: &str| {
        let v = get(f, key)?;
        if !publishes {
            cx.error(
                v.span(),
                format!("{key} of {label} only applies to publish-video = true"),
            );
            return None;
        }
        Some(v)
    };
    for (key, range, slot) in [
        ("video-fps", VIDEO_FPS, &mut g.video_fps),
        ("video-kbps", VIDEO_KBPS, &mut g.video_kbps),
    ] {
        *slot = only_video(cx, key)
            .and_then(|_| ranged(cx, f, key, &format!("{key} of {label}"), range))
            .map(|n| spanned(n.span(), *n.get_ref() as u32));
    }
    // A keyframe (three delta frames) spans at most 255 packets.
    let fps = g
        .video_fps
        .as_ref()
        .map_or(crate::plan::DEFAULT_VIDEO_FPS, |f| *f.get_ref());
    let max_kbps = u64::from(fps) * 255 * crate::plan::MAX_PACKET_PAYLOAD as u64 * 8
        / 1000
        / crate::plan::KEYFRAME_SIZE_FACTOR as u64;
    if let Some(k) = g.video_kbps.take() {
        if u64::from(*k.get_ref()) > max_kbps {
            let written = cx.source[k.span()].to_owned();
            cx.error(
                k.span(),
                format!(
                    "video-kbps of {label} must be at most {max_kbps} at {fps} fps (a keyframe spans at most 255 packets), but is {written}"
                ),
            );
        } else {
            g.video_kbps = Some(k);
        }
    }
    g.simulcast =
        only_video(cx, "simulcast").and_then(|v| boolean(cx, v, &format!("simulcast of {label}")));
    g.video_quality = get(f, "video-quality")
        .and_then(|v| string(cx, v, &format!("video-quality of {label}")))
        .and_then(|s| {
            let q = crate::plan::VideoQuality::from_name(s.get_ref());
            if q.is_none() {
                let names = crate::plan::VideoQuality::ALL.map(crate::plan::VideoQuality::name);
                let hint = hint(s.get_ref(), names);
                cx.error(
                    s.span(),
                    format!(
                        "unknown video-quality `{}` of {label}; expected one of: {}{hint}",
                        s.get_ref(),
                        names.join(", ")
                    ),
                );
            }
            q.map(|q| spanned(s.span(), q))
        });
}

/// `reconnect`, and the keys only `reconnect = "reinit"` takes.
fn reconnect(
    cx: &mut Cx<'_>,
    f: &[(&str, &Spanned<DeValue<'_>>)],
    label: &str,
    g: &mut GroupDraft,
) {
    let written = get(f, "reconnect");
    g.reconnect = written
        .and_then(|v| string(cx, v, &format!("reconnect of {label}")))
        .and_then(|s| {
            let policy = ReconnectPolicy::from_name(s.get_ref());
            if policy.is_none() {
                let names = ReconnectPolicy::ALL.map(ReconnectPolicy::name);
                let hint = hint(s.get_ref(), names);
                cx.error(
                    s.span(),
                    format!(
                        "unknown reconnect `{}` of {label}; expected one of: {}{hint}",
                        s.get_ref(),
                        names.join(", ")
                    ),
                );
            }
            policy.map(|p| spanned(s.span(), p))
        });
    // With an unreadable `reconnect` the policy is unknown: say nothing more.
    let policy = match (written, &g.reconnect) {
        (None, _) => Some(ReconnectPolicy::default()),
        (Some(_), p) => p.as_ref().map(|p| *p.get_ref()),
    };
    for (key, slot) in [
        ("health-check", &mut g.health_check),
        ("media-timeout", &mut g.media_timeout),
    ] {
        let Some(v) = get(f, key) else { continue };
        let what = format!("{key} of {label}");
        let value = duration(cx, v, &what).and_then(|d| at_least(cx, d, MIN_HEALTH_CHECK, &what));
        match policy {
            Some(ReconnectPolicy::Reinit) => *slot = value,
            Some(_) => cx.error(
                v.span(),
                format!("{what} only applies to reconnect = \"reinit\""),
            ),
            None => {}
        }
    }
}

/// An integer that fits in an i64 (larger ones read as i64::MAX, for range messages).
pub(super) fn integer(
    cx: &mut Cx<'_>,
    v: &Spanned<DeValue<'_>>,
    what: &str,
) -> Option<Spanned<i64>> {
    match v.get_ref() {
        DeValue::Integer(i) => {
            let n =
                i64::from_str_radix(&i.as_str().replace('_', ""), i.radix()).unwrap_or(i64::MAX);
            Some(spanned(v.span(), n))
        }
        other => {
            cx.error(
                v.span(),
                format!("{what} must be an integer, but is {}", describe(other)),
            );
            None
        }
    }
}

/// The integer at `key` (named `what` in messages), when it is within `range`; else one
/// problem naming both.
pub(super) fn ranged(
    cx: &mut Cx<'_>,
    f: &[(&str, &Spanned<DeValue<'_>>)],
    key: &str,
    what: &str,
    range: std::ops::RangeInclusive<i64>,
) -> Option<Spanned<i64>> {
    let n = get(f, key).and_then(|v| integer(cx, v, what))?;
    if range.contains(n.get_ref()) {
        return Some(n);
    }
    let written = cx.source[n.span()].to_owned();
    cx.error(
        n.span(),
        format!(
            "{what} must be from {} to {}, but is {written}",
            range.start(),
            range.end()
        ),
    );
    None
}

/// `d`, when it is at least `min`.
pub(super) fn at_most(
    cx: &mut Cx<'_>,
    d: Spanned<Duration>,
    max: Duration,
    what: &str,
) -> Option<Spanned<Duration>> {
    if *d.get_ref() <= max {
        return Some(d);
    }
    cx.error(
        d.span(),
        format!(
            "{what} must be at most {}, but is {}",
            show(max),
            show(*d.get_ref())
        ),
    );
    None
}

pub(super) fn at_least(
    cx: &mut Cx<'_>,
    d: Spanned<Duration>,
    min: Duration,
    what: &str,
) -> Option<Spanned<Duration>> {
    if *d.get_ref() >= min {
        return Some(d);
    }
    cx.error(
        d.span(),
        format!(
            "{what} must be at least {}, but is {}",
            show(min),
            show(*d.get_ref())
        ),
    );
    None
}

/// A duration as messages show it: `1m 30s`, `250ms`, `0s`.
pub(super) fn show(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}
