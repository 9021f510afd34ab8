//! The run's bots: one task and one command channel each, so faults can address a
//! single bot (kill it) or add one (a duplicate identity) while the run goes.

use std::sync::Mutex;

use bots::{BotConfig, Command, EventSink};
use tokio::sync::watch;
use tokio::task::JoinSet;

struct Member {
    identity: String,
    cmd: watch::Sender<Command>,
    cfg: BotConfig,
    /// The bot's socket layer, where `delay` acts.
    gate: std::sync::Arc<bots::gate::Gate>,
}

pub struct Fleet {
    sink: EventSink,
    inner: Mutex<Inner>,
}

struct Inner {
    members: Vec<Member>,
    tasks: JoinSet<()>,
    /// The last command broadcast: a bot added later starts from it.
    current: Command,
}

impl Fleet {
    pub fn new(sink: EventSink) -> Self {
        Self {
            sink,
            inner: Mutex::new(Inner {
                members: Vec::new(),
                tasks: JoinSet::new(),
                current: Command::Run,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts a bot at `at` (now if in the past).
    pub fn spawn_at(&self, cfg: BotConfig, at: tokio::time::Instant) {
        let mut inner = self.lock();
        let (tx, rx) = watch::channel(inner.current);
        let gate = bots::gate::Gate::new();
        inner.members.push(Member {
            identity: cfg.identity.clone(),
            cmd: tx,
            cfg: cfg.clone(),
            gate: gate.clone(),
        });
        let sink = self.sink.clone();
        let runtime = cfg.runtime.clone();
        let bot = async move {
            // A bot the run ends (or a search stops) before its join time never joins.
            let mut waiting = rx.clone();
            tokio::select! {
                _ = tokio::time::sleep_until(at) => {}
                _ = waiting.wait_for(|c| c.ends() || *c == Command::StopMedia) => return,
            }
            if cfg.lean {
                bots::lean::run(cfg, sink, rx).await;
            } else {
                bots::run_gated(cfg, sink, rx, gate).await;
            }
        };
        match runtime {
            Some(rt) => inner.tasks.spawn_on(bot, &rt),
            None => inner.tasks.spawn(bot),
        };
    }

    /// Every bot, now and later.
    pub fn broadcast(&self, c: Command) {
        let mut inner = self.lock();
        inner.current = c;
        for m in &inner.members {
            let _ = m.cmd.send(c);
        }
    }

    /// Every bot with this identity (duplicates included); how many there were.
    pub fn send_to(&self, identity: &str, c: Command) -> usize {
        let inner = self.lock();
        let mut n = 0;
        for m in inner.members.iter().filter(|m| m.identity == identity) {
            let _ = m.cmd.send(c);
            n += 1;
        }
        n
    }

    /// Puts every running bot with this identity to sleep (a bot already told to stop
    /// or leave is left alone); how many were.
    pub fn sleep(&self, identity: &str) -> usize {
        self.swap(identity, Command::Run, Command::Sleep)
    }

    /// Wakes every sleeping bot with this identity.
    pub fn wake(&self, identity: &str) -> usize {
        self.swap(identity, Command::Sleep, Command::Run)
    }

    /// Delays every packet of every bot with this identity (`None`: no more delay).
    pub fn set_delay(
        &self,
        identity: &str,
        delay: Option<(std::time::Duration, std::time::Duration)>,
    ) {
        let inner = self.lock();
        for m in inner.members.iter().filter(|m| m.identity == identity) {
            match delay {
                Some((d, j)) => m.gate.set_delay(d, j),
                None => m.gate.clear_delay(),
            }
        }
    }

    fn swap(&self, identity: &str, from: Command, to: Command) -> usize {
        let inner = self.lock();
        let mut n = 0;
        for m in inner.members.iter().filter(|m| m.identity == identity) {
            let changed = m.cmd.send_if_modified(|c| {
                let hit = *c == from;
                if hit {
                    *c = to;
                }
                hit
            });
            n += usize::from(changed);
        }
        n
    }

    /// The config the first bot with this identity was started with.
    pub fn config_of(&self, identity: &str) -> Option<BotConfig> {
        self.lock()
            .members
            .iter()
            .find(|m| m.identity == identity)
            .map(|m| m.cfg.clone())
    }

    /// Waits for every bot task, at most `timeout`; returns how many had to be aborted.
    pub async fn join_all(&self, timeout: std::time::Duration) -> usize {
        let mut tasks = std::mem::take(&mut self.lock().tasks);
        let done = tokio::time::timeout(timeout, async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
        if done.is_err() {
            let left = tasks.len();
            tasks.abort_all();
            return left;
        }
        0
    }
}
