//! The closed set of metrics: name, unit and meaning. DESIGN.md defines them; this table
//! is what thresholds are checked against and what reports list, in this order.

use serde::Serialize;

/// What a metric's numbers are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Unit {
    /// Seconds at the API; histograms hold microseconds.
    Duration,
    /// A share, 0 to 1.
    Ratio,
    /// A number of occurrences.
    Count,
    /// CPU: CPU-seconds per second (1.0 = one core busy).
    Cores,
    /// Memory, in bytes.
    Bytes,
    /// A bitrate, in bits per second.
    Bitrate,
}

impl Unit {
    /// The unit as a noun phrase for messages: "a duration".
    pub fn noun(self) -> &'static str {
        match self {
            Unit::Duration => "a duration",
            Unit::Ratio => "a ratio",
            Unit::Count => "a count",
            Unit::Cores => "a number of cores",
            Unit::Bytes => "a number of bytes",
            Unit::Bitrate => "a bitrate in bits per second",
        }
    }
}

/// One metric of the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CatalogueEntry {
    pub name: &'static str,
    pub unit: Unit,
    pub description: &'static str,
}

/// Tags a threshold may filter on.
pub const FILTER_TAGS: &[&str] = &[
    "group", "bot", "fault", "phase", "pair", "track", "kind", "room", "node",
];

const CATALOGUE: &[CatalogueEntry] = &[
    entry(
        "connect.signal",
        Unit::Duration,
        "join start until the JoinResponse arrived",
    ),
    entry(
        "connect.ice",
        Unit::Duration,
        "join start until every peer connection was connected",
    ),
    entry(
        "connect.media",
        Unit::Duration,
        "join start until the first packet of every remote track of its room whose publisher had started joining when its signal connected",
    ),
    entry(
        "continuity",
        Unit::Ratio,
        "per (subscriber, track): packets received / packets the publisher sent while the subscriber was meant to receive",
    ),
    entry(
        "gap",
        Unit::Duration,
        "longest interval without media, per (subscriber, track)",
    ),
    entry(
        "freezes",
        Unit::Count,
        "per (subscriber, track): gaps in media longer than 200 ms (MediaGap) within its window; count sums them",
    ),
    entry(
        "freeze.duration",
        Unit::Duration,
        "per (subscriber, track): the total length of its freezes within its window",
    ),
    entry(
        "layer.switches",
        Unit::Count,
        "per (subscriber, video track): changes of the simulcast layer it received (the SFU's choice) within its window",
    ),
    entry(
        "latency.oneway",
        Unit::Duration,
        "receive time minus the send time embedded by the publisher",
    ),
    entry(
        "recovery",
        Unit::Duration,
        "per fault: from its clear until signal and every affected pair's media are back",
    ),
    entry(
        "reconnects",
        Unit::Count,
        "reconnections (resume or full rejoin) a bot made",
    ),
    entry(
        "kicks",
        Unit::Count,
        "times the SFU removed a bot (LeaveRequest), by reason",
    ),
    entry("joins.failed", Unit::Count, "join attempts that failed"),
    entry(
        "data.latency",
        Unit::Duration,
        "per (subscriber, publisher, channel): receive time minus the send time in the message",
    ),
    entry(
        "data.loss",
        Unit::Ratio,
        "per (subscriber, publisher, channel): 1 - messages received / messages sent while the subscriber was meant to receive",
    ),
    entry(
        "sfu.participants",
        Unit::Count,
        "participants the SFU reported, per scrape of its Prometheus endpoint",
    ),
    entry(
        "sfu.cpu",
        Unit::Cores,
        "per SFU node and second: CPU its container used (cgroup), in cores",
    ),
    entry(
        "sfu.memory",
        Unit::Bytes,
        "per SFU node and second: memory its container used (cgroup, page cache not counted)",
    ),
    entry(
        "sfu.bitrate.in",
        Unit::Bitrate,
        "per SFU node, over 5 s spans (LiveKit reports each stream every 5 s): media the SFU received, from its own livekit_packet_bytes (incoming)",
    ),
    entry(
        "sfu.bitrate.out",
        Unit::Bitrate,
        "per SFU node, over 5 s spans: media the SFU sent, from its own livekit_packet_bytes (outgoing)",
    ),
    entry(
        "harness.cpu",
        Unit::Cores,
        "per second: CPU the harness process used, in cores",
    ),
    entry(
        "harness.memory",
        Unit::Bytes,
        "per second: the harness process's resident memory",
    ),
    entry(
        "capacity.level",
        Unit::Count,
        "capacity search: the largest load level (bots or rooms) at which every stop-on condition held",
    ),
    entry(
        "harness.lag",
        Unit::Duration,
        "harness self-check: how late the publisher pacing loop ran",
    ),
    entry(
        "harness.loop.lag",
        Unit::Duration,
        "harness self-check: per second, the latest the runtime ran a 10 ms timer",
    ),
];

const fn entry(name: &'static str, unit: Unit, description: &'static str) -> CatalogueEntry {
    CatalogueEntry {
        name,
        unit,
        description,
    }
}

/// Every metric, in report order.
pub fn catalogue() -> &'static [CatalogueEntry] {
    CATALOGUE
}

/// The catalogue entry of `name`, if it is a metric.
pub fn lookup(name: &str) -> Option<&'static CatalogueEntry> {
    CATALOGUE.iter().find(|e| e.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_names_are_unique_and_lowercase() {
        let mut names: Vec<&str> = catalogue().iter().map(|e| e.name).collect();
        assert!(
            names
                .iter()
                .all(|n| n.chars().all(|c| c.is_ascii_lowercase() || c == '.'))
        );
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), catalogue().len());
    }

    #[test]
    fn lookup_finds_units() {
        assert_eq!(
            lookup("connect.media").map(|e| e.unit),
            Some(Unit::Duration)
        );
        assert_eq!(lookup("continuity").map(|e| e.unit), Some(Unit::Ratio));
        assert_eq!(lookup("reconnects").map(|e| e.unit), Some(Unit::Count));
        assert_eq!(lookup("connect"), None);
    }
}
