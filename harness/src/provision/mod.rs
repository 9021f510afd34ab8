//! Provisioning: the container engine, the SFU nodes and the network sites a run needs.

pub mod docker;
pub mod livekit;
pub mod nft;
pub mod site;

/// Names of what a run makes outside Docker (nft tables, network namespaces) start with
/// this, then the process id: `sfuh_p<pid>_<n>`.
pub const OWNED_PREFIX: &str = "sfuh_p";

/// Runs `list` (a command and its arguments), takes a name from each line of its output
/// with `name_of`, and deletes with `delete` every one whose owning process is dead;
/// returns them as `what NAME`.
pub fn sweep_dead(
    list: &[&str],
    name_of: impl Fn(&str) -> Option<&str>,
    delete: impl Fn(&str) -> bool,
    what: &str,
) -> Vec<String> {
    let Some((program, args)) = list.split_first() else {
        return Vec::new();
    };
    let Ok(out) = std::process::Command::new(program)
        .args(args)
        .stderr(std::process::Stdio::null())
        .output()
    else {
        return Vec::new();
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(name_of)
        .filter(|name| owner_is_dead(name) && delete(name))
        .map(|name| format!("{what} {name}"))
        .collect()
}

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
