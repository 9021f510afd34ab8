//! Provisioning: the container engine, the SFU nodes and the network sites a run needs.

pub mod docker;
pub mod livekit;
pub mod nft;
pub mod site;

/// Names of what a run makes outside Docker (nft tables, network namespaces) start with
/// this, then the process id: `sfuh_p<pid>_<n>`.
pub const OWNED_PREFIX: &str = "sfuh_p";

/// Whether `name` is one of ours (`sfuh_p<pid>_…`) whose process no longer runs.
pub fn owner_is_dead(name: &str) -> bool {
    let Some(pid) = name
        .strip_prefix(OWNED_PREFIX)
        .and_then(|rest| rest.split('_').next())
        .and_then(|p| p.parse::<i32>().ok())
    else {
        return false;
    };
    // SAFETY: signal 0 only checks that the process exists.
    pid != std::process::id() as i32 && unsafe { libc::kill(pid, 0) != 0 }
}
