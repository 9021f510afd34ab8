//! The fault catalogue: a closed set of kinds, what each may target, and the compiled
//! [`FaultPlan`] the runtime executes on the run's clock.
//!
//! A scenario's `[[faults]]` entry has `at`, optional `for` (else until the end), a
//! `target` and exactly one `effect`, plus the effect's own parameters. Instantaneous
//! effects (`ws-drop`, `sfu-kill`, `kill`, `duplicate-identity`) act once at `at` and take
//! no `for`; their recovery is measured from `at`, the others' from the clear.

use std::fmt;
use std::time::Duration;

/// Every fault kind the harness can inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FaultKind {
    /// Signal proxy: cut every live WebSocket.
    WsDrop,
    /// Signal proxy: answer new upgrades with `status` (200: without upgrading).
    WsRefuseUpgrade,
    /// Signal proxy: black-hole the signal path.
    WsStall,
    /// Signal proxy: close connections quiet for `idle`.
    WsIdleTimeout,
    /// Signal proxy: LiveKit is published under `prefix` (the bots' signal URL carries
    /// it); the proxy strips it only with `strip = true`. Left unstripped, LiveKit answers
    /// `{prefix}/rtc` with 404 (incident 004's tunnel and backend proxy).
    PathPrefix,
    /// SIGKILL the SFU container (it stays down until the end, or `for`, then starts).
    SfuKill,
    /// Restart the SFU container (SIGKILL, then start again at once).
    SfuRestart,
    /// SIGTERM the SFU container: LiveKit drains (tells its participants to leave) and
    /// exits; the container is started again when the fault clears.
    SfuDrain,
    /// Drop UDP (all, all but `except-ports`, or to and from the SFU-side `ports`;
    /// `direction` in, out or both)
    /// between the bots and the SFU: a firewall that lets only TCP through. Target `sfu`:
    /// every bot's path (host nftables, and each site's); a site: that site only.
    BlockUdp,
    /// Drop TCP to and from the SFU-side `ports` (`direction` in, out or both): e.g. the
    /// ICE-TCP port 7881 closed by a corporate firewall. Target `sfu` or a site.
    BlockTcp,
    /// Drop `percent` of the UDP packets between the bots and the SFU, each way
    /// (nftables `numgen random`). Target `sfu` or a site.
    Loss,
    /// Drop every packet, TCP and UDP, between the bots and the SFU (a network
    /// partition: signal and media both go dark). Target `sfu` or a site.
    Blackhole,
    /// Limit a site's link to `kbps` each way (a tbf qdisc on both ends of its veth).
    Bandwidth,
    /// Take a site's interface down, and up again when the fault clears (a path switch:
    /// Wi-Fi lost, then back); routes are restored on the way up.
    LinkDown,
    /// A bot vanishes without a leave (process killed, laptop lid shut forever).
    Kill,
    /// Another bot joins with the target bot's identity and policy.
    DuplicateIdentity,
    /// Added latency on the bot's media and ICE packets, each way: `delay`, plus or minus
    /// up to `jitter` per packet (in the bot's socket layer: this kernel has no netem).
    Delay,
    /// The bot's session moves to another SFU node: a second bot joins with its identity
    /// through the next node (multi-node LiveKit relays the duplicate-identity kick).
    ServerSwitch,
    /// Laptop sleep: the bot freezes (no packets in or out, no timers, no signal
    /// handling) and wakes when the fault clears.
    Sleep,
}

/// What a fault kind acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    /// The signal proxy in front of the SFU (every bot's signal path).
    Proxy,
    /// The SFU node.
    Sfu,
    /// The network between bots and the SFU: `sfu` (every bot's path) or one site.
    Network,
    /// One site only (its own link).
    Site,
    /// Bots: one by identity, or a whole group by name.
    Bots,
}

impl FaultKind {
    pub const ALL: [FaultKind; 19] = [
        FaultKind::WsDrop,
        FaultKind::WsRefuseUpgrade,
        FaultKind::WsStall,
        FaultKind::WsIdleTimeout,
        FaultKind::PathPrefix,
        FaultKind::SfuKill,
        FaultKind::SfuRestart,
        FaultKind::SfuDrain,
        FaultKind::BlockUdp,
        FaultKind::BlockTcp,
        FaultKind::Loss,
        FaultKind::Blackhole,
        FaultKind::Bandwidth,
        FaultKind::LinkDown,
        FaultKind::Kill,
        FaultKind::DuplicateIdentity,
        FaultKind::Delay,
        FaultKind::ServerSwitch,
        FaultKind::Sleep,
    ];

    /// The name scenarios use (`effect = "ws-drop"`).
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::WsDrop => "ws-drop",
            FaultKind::WsRefuseUpgrade => "ws-refuse-upgrade",
            FaultKind::WsStall => "ws-stall",
            FaultKind::WsIdleTimeout => "ws-idle-timeout",
            FaultKind::PathPrefix => "path-prefix",
            FaultKind::SfuKill => "sfu-kill",
            FaultKind::SfuRestart => "sfu-restart",
            FaultKind::SfuDrain => "sfu-drain",
            FaultKind::BlockUdp => "block-udp",
            FaultKind::BlockTcp => "block-tcp",
            FaultKind::Loss => "loss",
            FaultKind::Blackhole => "blackhole",
            FaultKind::Bandwidth => "bandwidth",
            FaultKind::LinkDown => "link-down",
            FaultKind::Kill => "kill",
            FaultKind::DuplicateIdentity => "duplicate-identity",
            FaultKind::Delay => "delay",
            FaultKind::ServerSwitch => "server-switch",
            FaultKind::Sleep => "sleep",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    pub fn target_kind(self) -> TargetKind {
        match self {
            FaultKind::WsDrop
            | FaultKind::WsRefuseUpgrade
            | FaultKind::WsStall
            | FaultKind::WsIdleTimeout
            | FaultKind::PathPrefix => TargetKind::Proxy,
            FaultKind::SfuKill | FaultKind::SfuRestart | FaultKind::SfuDrain => TargetKind::Sfu,
            FaultKind::BlockUdp | FaultKind::BlockTcp | FaultKind::Loss | FaultKind::Blackhole => {
                TargetKind::Network
            }
            FaultKind::Bandwidth | FaultKind::LinkDown => TargetKind::Site,
            FaultKind::Kill
            | FaultKind::DuplicateIdentity
            | FaultKind::Sleep
            | FaultKind::Delay
            | FaultKind::ServerSwitch => TargetKind::Bots,
        }
    }

    /// Acts once at `at`; takes no `for`.
    pub fn instantaneous(self) -> bool {
        matches!(
            self,
            FaultKind::WsDrop
                | FaultKind::SfuRestart
                | FaultKind::Kill
                | FaultKind::DuplicateIdentity
                | FaultKind::ServerSwitch
        )
    }

    /// Whether bots must reach the SFU through the harness's signal proxy.
    pub fn needs_proxy(self) -> bool {
        self.target_kind() == TargetKind::Proxy
    }

    /// The parameter keys this kind accepts besides at/for/target/effect, and which are
    /// required.
    pub fn params(self) -> &'static [(&'static str, bool)] {
        match self {
            FaultKind::WsRefuseUpgrade => &[("status", true)],
            FaultKind::WsIdleTimeout => &[("idle", true)],
            FaultKind::Loss => &[("percent", true)],
            FaultKind::Delay => &[("delay", true), ("jitter", false)],
            FaultKind::BlockUdp => &[
                ("ports", false),
                ("except-ports", false),
                ("direction", false),
            ],
            FaultKind::BlockTcp => &[("ports", true), ("direction", false)],
            FaultKind::Bandwidth => &[("kbps", true)],
            FaultKind::PathPrefix => &[("prefix", true), ("strip", false)],
            FaultKind::SfuKill | FaultKind::SfuRestart | FaultKind::SfuDrain => &[("node", false)],
            _ => &[],
        }
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which packets a firewall fault drops: those coming in to the bots, going out of
/// them, or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    In,
    Out,
    #[default]
    Both,
}

impl Direction {
    pub const ALL: [Direction; 3] = [Direction::Both, Direction::In, Direction::Out];

    pub fn name(self) -> &'static str {
        match self {
            Direction::In => "in",
            Direction::Out => "out",
            Direction::Both => "both",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.name() == name)
    }

    pub fn inbound(self) -> bool {
        self != Direction::Out
    }

    pub fn outbound(self) -> bool {
        self != Direction::In
    }
}

/// The resolved target of a fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultTarget {
    Proxy,
    Sfu,
    /// A site (network namespace) and the bots in it.
    Site {
        name: String,
        identities: Vec<String>,
    },
    /// The identities of the targeted bots, and how the scenario named them.
    Bots {
        label: String,
        identities: Vec<String>,
    },
}

impl FaultTarget {
    pub fn label(&self) -> &str {
        match self {
            FaultTarget::Proxy => "proxy",
            FaultTarget::Sfu => "sfu",
            FaultTarget::Site { name, .. } => name,
            FaultTarget::Bots { label, .. } => label,
        }
    }
}

/// One compiled fault.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultPlan {
    /// `faults[N]`, N from 1 in file order: names the fault in events and reports.
    pub id: String,
    pub kind: FaultKind,
    pub target: FaultTarget,
    /// Offset from the start of the bots' clock.
    pub at: Duration,
    /// `None`: until the end of the run (or instantaneous).
    pub duration: Option<Duration>,
    /// `ws-refuse-upgrade`: the HTTP status.
    pub status: Option<u16>,
    /// `ws-idle-timeout`: the idle time.
    pub idle: Option<Duration>,
    /// `loss`: the share of packets dropped, 1 to 100.
    pub percent: Option<u8>,
    /// `delay`: the added one-way latency, and how far each packet's may stray from it.
    pub delay: Option<Duration>,
    pub jitter: Option<Duration>,
    /// `block-udp`/`block-tcp`: the SFU-side ports (empty: every port).
    pub ports: Vec<u16>,
    /// `block-udp`: SFU-side ports spared (every other port is blocked), e.g. TURN's.
    pub except_ports: Vec<u16>,
    /// `block-udp`/`block-tcp`: which way packets are dropped.
    pub direction: Direction,
    /// `bandwidth`: the link's rate each way.
    pub kbps: Option<u32>,
    /// `path-prefix`: where LiveKit is published, and whether the proxy strips it.
    pub prefix: Option<String>,
    pub strip: bool,
    /// `sfu-kill`, `sfu-restart`, `sfu-drain`: which LiveKit node (1-based; default 1).
    pub node: u8,
}

impl FaultPlan {
    /// The path prefix the bots' signal URL carries: the first `path-prefix` fault's.
    pub fn signal_prefix(faults: &[FaultPlan]) -> Option<&str> {
        faults
            .iter()
            .find(|f| f.kind == FaultKind::PathPrefix)
            .and_then(|f| f.prefix.as_deref())
    }
}
