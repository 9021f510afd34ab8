//! State shared by the handle, the guards and the connection tasks.
//!
//! Contract: applying or clearing an effect recomputes one [`State`] from the effects in
//! force and publishes it on a `watch` channel before returning. Connection tasks read it
//! per decision (`borrow`) and wait on it for cuts (`changed`), so an effect is in force
//! as soon as the tasks are scheduled; nothing polls. Events are emitted under the
//! registry lock, before the publish, so they are ordered with the state they describe.

use std::{
    collections::BTreeMap,
    fmt,
    net::SocketAddr,
    sync::{Arc, Mutex, MutexGuard, PoisonError, Weak},
    time::Instant,
};

use tokio::sync::{mpsc, watch};

use crate::{
    Effect, EffectId, ProxyError, ProxyEvent, ProxyEventKind,
    effects::{
        idle_timeout::IdleRule,
        path_prefix::{self, PrefixRule},
    },
    stats::Counters,
};

/// What every connection needs to know about the effects in force.
#[derive(Clone, Debug, Default)]
pub(crate) struct State {
    pub drop_epoch: u64,
    pub shutdown: bool,
    pub stall: bool,
    pub refuse: Option<u16>,
    pub idle: Option<IdleRule>,
    pub prefixes: Vec<PrefixRule>,
}

struct Applied {
    effect: Effect,
    since: tokio::time::Instant,
}

#[derive(Default)]
struct Registry {
    last_id: u64,
    /// In apply order, so "latest wins" is "last in iteration wins".
    active: BTreeMap<EffectId, Applied>,
    drop_epoch: u64,
    shutdown: bool,
}

impl Registry {
    fn state(&self) -> State {
        let mut state = State {
            drop_epoch: self.drop_epoch,
            shutdown: self.shutdown,
            ..State::default()
        };
        for applied in self.active.values() {
            match &applied.effect {
                Effect::Drop => {}
                Effect::RefuseUpgrade { status } => state.refuse = Some(*status),
                Effect::Stall => state.stall = true,
                Effect::IdleTimeout { idle } => {
                    state.idle = Some(IdleRule {
                        idle: *idle,
                        since: applied.since,
                    });
                }
                Effect::PathPrefix { prefix, strip } => {
                    path_prefix::set_rule(&mut state.prefixes, prefix, *strip);
                }
            }
        }
        state
    }
}

pub(crate) struct Shared {
    pub upstream: SocketAddr,
    pub counters: Counters,
    registry: Mutex<Registry>,
    state: watch::Sender<State>,
    subscribers: Mutex<Vec<mpsc::UnboundedSender<ProxyEvent>>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section leaves the data consistent, so a panic elsewhere is no reason
    // to stop clearing effects.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    pub fn new(upstream: SocketAddr) -> Self {
        Self {
            upstream,
            counters: Counters::default(),
            registry: Mutex::default(),
            state: watch::Sender::new(State::default()),
            subscribers: Mutex::default(),
        }
    }

    pub fn watch_state(&self) -> watch::Receiver<State> {
        self.state.subscribe()
    }

    pub fn subscribe(&self) -> mpsc::UnboundedReceiver<ProxyEvent> {
        let (tx, rx) = mpsc::unbounded_channel();
        lock(&self.subscribers).push(tx);
        rx
    }

    pub fn emit(&self, at: Instant, kind: ProxyEventKind) {
        let event = ProxyEvent { at, kind };
        lock(&self.subscribers).retain(|tx| tx.send(event.clone()).is_ok());
    }

    pub fn emit_now(&self, kind: ProxyEventKind) {
        self.emit(Instant::now(), kind);
    }

    pub fn apply(self: &Arc<Self>, effect: Effect) -> Result<EffectGuard, ProxyError> {
        effect.validate()?;
        let mut registry = lock(&self.registry);
        registry.last_id += 1;
        let id = EffectId(registry.last_id);
        // `since` (the idle clock's origin) is read after `at`, so a cut reported by the
        // idle timeout is never less than `idle` after the reported apply.
        let at = Instant::now();
        let instantaneous = effect.is_instantaneous();
        if instantaneous {
            registry.drop_epoch += 1;
        } else {
            let since = tokio::time::Instant::now();
            registry.active.insert(
                id,
                Applied {
                    effect: effect.clone(),
                    since,
                },
            );
        }
        self.emit(at, ProxyEventKind::EffectApplied { id, effect });
        self.state.send_replace(registry.state());
        Ok(EffectGuard {
            shared: Arc::downgrade(self),
            id,
            instantaneous,
        })
    }

    fn clear(&self, id: EffectId) {
        let mut registry = lock(&self.registry);
        if let Some(applied) = registry.active.remove(&id) {
            self.emit_now(ProxyEventKind::EffectCleared {
                id,
                effect: applied.effect,
            });
            self.state.send_replace(registry.state());
        }
    }

    /// Tells the accept loop and every connection to end.
    pub fn begin_shutdown(&self) {
        let mut registry = lock(&self.registry);
        registry.shutdown = true;
        self.state.send_replace(registry.state());
    }
}

/// Keeps an applied effect in force; dropping it (or [`EffectGuard::clear`]) clears the
/// effect and emits `EffectCleared`. For `Drop`, which is instantaneous, clearing does
/// nothing. Outliving the proxy is harmless: clearing then does nothing either.
#[must_use = "dropping the guard clears the effect at once"]
pub struct EffectGuard {
    shared: Weak<Shared>,
    id: EffectId,
    instantaneous: bool,
}

impl EffectGuard {
    /// The id in this effect's `EffectApplied` and `EffectCleared` events.
    pub fn id(&self) -> EffectId {
        self.id
    }

    /// Clears the effect now (same as dropping the guard, but reads as intended).
    pub fn clear(self) {}
}

impl Drop for EffectGuard {
    fn drop(&mut self) {
        if self.instantaneous {
            return;
        }
        if let Some(shared) = self.shared.upgrade() {
            shared.clear(self.id);
        }
    }
}

impl fmt::Debug for EffectGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EffectGuard")
            .field("id", &self.id)
            .field("instantaneous", &self.instantaneous)
            .finish()
    }
}
