//! Cost accounting: once a second, what every SFU node's container and the harness
//! itself used, as [`Event::ResourcesSampled`] (so `report DIR` rebuilds the figures).
//!
//! - An SFU node: its container's cgroup. cgroup v1 (this machine): `cpuacct.usage`
//!   (nanoseconds) and `memory.usage_in_bytes` less `total_inactive_file`; cgroup v2
//!   (most users' hosts): `cpu.stat`'s `usage_usec` and `memory.current` less
//!   `inactive_file`, the page cache that `docker stats` does not count either. The
//!   cgroup directory is found by the container id under either layout of Docker's
//!   (cgroupfs `docker/<id>`, systemd `system.slice/docker-<id>.scope`); a restarted
//!   container keeps its id, so its directory.
//! - The harness: `getrusage(RUSAGE_SELF)` (all threads, site runtimes included) and
//!   the resident set from `/proc/self/statm`.
//!
//! CPU is the counter's increase over the wall time between two samples, in cores. A
//! counter that went backwards (a node restarted in a new cgroup) gives no sample for
//! that second. A node whose cgroup cannot be read is named once in a note, never
//! silently missing.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bots::EventSink;
use harness_core::event::Event;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

pub const EVERY: Duration = Duration::from_secs(1);
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// One SFU node to account for.
#[derive(Debug, Clone)]
pub struct Node {
    /// As events name it (`lk1`, ...).
    pub name: String,
    pub container_id: String,
}

/// Which cgroup hierarchy a directory belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Cgroup {
    /// `cpu` is the cpuacct directory, `memory` the memory controller's.
    V1 {
        cpu: PathBuf,
        memory: PathBuf,
    },
    V2(PathBuf),
}

/// Counters read at one instant: CPU time used so far, memory in use now.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Reading {
    cpu: Duration,
    memory_bytes: u64,
}

/// Starts the sampler; it stops when `end` is true.
pub fn spawn(nodes: Vec<Node>, sink: EventSink, mut end: watch::Receiver<bool>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let root = Path::new(CGROUP_ROOT);
        let mut groups: Vec<(Node, Option<Cgroup>, Option<Reading>)> = nodes
            .into_iter()
            .map(|n| {
                let g = locate(root, &n.container_id);
                if g.is_none() {
                    sink.emit(Event::Note {
                        source: "harness".into(),
                        message: format!(
                            "no cgroup found for SFU node {} (container {}): its CPU and \
                             memory are not accounted",
                            n.name,
                            short(&n.container_id)
                        ),
                    });
                }
                (n, g, None)
            })
            .collect();
        let mut me = own_reading();
        let mut last = Instant::now();
        let mut tick = tokio::time::interval_at(last + EVERY, EVERY);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = end.wait_for(|e| *e) => return,
            }
            let now = Instant::now();
            let wall = now - last;
            last = now;
            for (node, group, prev) in &mut groups {
                let Some(g) = group.as_ref() else { continue };
                let Some(r) = read(g) else { continue };
                if let Some(cores) = prev.and_then(|p| cores(p.cpu, r.cpu, wall)) {
                    sink.emit(Event::ResourcesSampled {
                        source: "sfu".into(),
                        node: node.name.clone(),
                        cpu_cores: cores,
                        memory_bytes: r.memory_bytes,
                    });
                }
                *prev = Some(r);
            }
            let now_me = own_reading();
            if let (Some(p), Some(r)) = (me, now_me)
                && let Some(cores) = cores(p.cpu, r.cpu, wall)
            {
                sink.emit(Event::ResourcesSampled {
                    source: "harness".into(),
                    node: String::new(),
                    cpu_cores: cores,
                    memory_bytes: r.memory_bytes,
                });
            }
            me = now_me;
        }
    })
}

fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

/// CPU time used between two readings over the wall time, in cores; `None` when the
/// counter went backwards.
fn cores(before: Duration, after: Duration, wall: Duration) -> Option<f64> {
    let used = after.checked_sub(before)?;
    (!wall.is_zero()).then(|| used.as_secs_f64() / wall.as_secs_f64())
}

/// The container's cgroup, by id under the layouts Docker uses.
fn locate(root: &Path, id: &str) -> Option<Cgroup> {
    let v2 = root.join("cgroup.controllers").exists();
    let rels = [
        format!("docker/{id}"),
        format!("system.slice/docker-{id}.scope"),
    ];
    let found = |rel: &str| -> Option<Cgroup> {
        if v2 {
            let d = root.join(rel);
            d.join("cpu.stat").exists().then_some(Cgroup::V2(d))
        } else {
            let cpu = ["cpuacct", "cpu,cpuacct", "cpu"]
                .iter()
                .map(|c| root.join(c).join(rel))
                .find(|d| d.join("cpuacct.usage").exists())?;
            let memory = root.join("memory").join(rel);
            Some(Cgroup::V1 { cpu, memory })
        }
    };
    rels.iter().find_map(|r| found(r))
}

fn read(g: &Cgroup) -> Option<Reading> {
    let file = |d: &Path, f: &str| std::fs::read_to_string(d.join(f)).ok();
    // A number file (`memory.current`, ...); 0 when missing (memory not accounted).
    let number =
        |d: &Path, f: &str| -> u64 { file(d, f).and_then(|s| s.trim().parse().ok()).unwrap_or(0) };
    match g {
        Cgroup::V1 { cpu, memory } => {
            let ns: u64 = file(cpu, "cpuacct.usage")?.trim().parse().ok()?;
            let usage = number(memory, "memory.usage_in_bytes");
            let inactive = file(memory, "memory.stat")
                .and_then(|s| stat_value(&s, "total_inactive_file"))
                .unwrap_or(0);
            Some(Reading {
                cpu: Duration::from_nanos(ns),
                memory_bytes: usage.saturating_sub(inactive),
            })
        }
        Cgroup::V2(d) => {
            let us = stat_value(&file(d, "cpu.stat")?, "usage_usec")?;
            let current = number(d, "memory.current");
            let inactive = file(d, "memory.stat")
                .and_then(|s| stat_value(&s, "inactive_file"))
                .unwrap_or(0);
            Some(Reading {
                cpu: Duration::from_micros(us),
                memory_bytes: current.saturating_sub(inactive),
            })
        }
    }
}

/// The value of `key` in a flat-keyed cgroup file (`key value` per line).
fn stat_value(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// This process: CPU of all its threads, resident memory.
fn own_reading() -> Option<Reading> {
    // SAFETY: getrusage writes into the zeroed struct we own; RUSAGE_SELF is valid.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        (libc::getrusage(libc::RUSAGE_SELF, &mut ru) == 0).then_some(ru)
    }?;
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
    };
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as u64;
    Some(Reading {
        cpu: tv(ru.ru_utime) + tv(ru.ru_stime),
        memory_bytes: pages * page,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_keyed_files_give_their_values() {
        let v2 = "usage_usec 8123456\nuser_usec 6000000\nsystem_usec 2123456\n";
        assert_eq!(stat_value(v2, "usage_usec"), Some(8_123_456));
        assert_eq!(stat_value(v2, "user"), None);
        let v1_mem = "cache 4096\nrss 1000\ntotal_inactive_file 8192\n";
        assert_eq!(stat_value(v1_mem, "total_inactive_file"), Some(8192));
        assert_eq!(stat_value(v1_mem, "inactive_file"), None);
    }

    #[test]
    fn cores_are_cpu_time_over_wall_time_and_a_reset_counter_gives_none() {
        let s = Duration::from_secs;
        assert_eq!(cores(s(10), s(11), s(2)), Some(0.5));
        assert_eq!(cores(s(11), s(10), s(1)), None);
        assert_eq!(cores(s(1), s(2), Duration::ZERO), None);
    }

    #[test]
    fn a_v1_and_a_v2_cgroup_read_cpu_and_memory_less_the_page_cache() {
        let dir = std::env::temp_dir().join(format!("sfuh-cost-{}", std::process::id()));
        let v1 = dir.join("v1");
        let (cpu, memory) = (v1.join("cpuacct/docker/X"), v1.join("memory/docker/X"));
        std::fs::create_dir_all(&cpu).unwrap();
        std::fs::create_dir_all(&memory).unwrap();
        std::fs::write(cpu.join("cpuacct.usage"), "2500000000\n").unwrap();
        std::fs::write(memory.join("memory.usage_in_bytes"), "50000000\n").unwrap();
        std::fs::write(memory.join("memory.stat"), "total_inactive_file 10000000\n").unwrap();
        let g = locate(&v1, "X").expect("v1 cgroup found by id");
        assert_eq!(
            read(&g),
            Some(Reading {
                cpu: Duration::from_millis(2500),
                memory_bytes: 40_000_000
            })
        );
        let v2 = dir.join("v2");
        let scope = v2.join("system.slice/docker-Y.scope");
        std::fs::create_dir_all(&scope).unwrap();
        std::fs::write(v2.join("cgroup.controllers"), "cpu memory\n").unwrap();
        std::fs::write(scope.join("cpu.stat"), "usage_usec 1500000\n").unwrap();
        std::fs::write(scope.join("memory.current"), "30000000\n").unwrap();
        std::fs::write(scope.join("memory.stat"), "anon 1\ninactive_file 5000000\n").unwrap();
        let g = locate(&v2, "Y").expect("v2 cgroup found by id (systemd layout)");
        assert_eq!(
            read(&g),
            Some(Reading {
                cpu: Duration::from_millis(1500),
                memory_bytes: 25_000_000
            })
        );
        assert_eq!(locate(&v2, "missing"), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn this_process_reads_its_own_cpu_and_memory() {
        let r = own_reading().expect("getrusage and statm");
        assert!(r.memory_bytes > 0);
    }
}
