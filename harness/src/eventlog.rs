//! The one aggregator of a run's events: appends each to `events.jsonl` as it arrives
//! (flushed after every batch, so a killed run leaves all but its last instant on disk),
//! folds them for measuring, and prints the ones a person watching wants to see.

use std::io::{IsTerminal as _, Write};
use std::path::PathBuf;

use harness_core::event::{Event, EventRecord};
use harness_core::measure::Digest;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::JoinHandle;

/// The run folded so far, for what must judge it while it goes (a capacity search).
pub type Live = std::sync::Arc<std::sync::Mutex<Digest>>;

/// Starts the writer; the handle yields the folded run ([`Digest`]) once all senders are
/// dropped, and [`Live`] shows it as it grows (locked once per batch of events).
pub fn start(
    path: PathBuf,
    mut rx: UnboundedReceiver<EventRecord>,
    progress: bool,
) -> std::io::Result<(JoinHandle<std::io::Result<Digest>>, Live)> {
    let file = std::fs::File::create(&path)?;
    let live = Live::default();
    let shared = live.clone();
    let handle = tokio::task::spawn_blocking(move || {
        let mut out = std::io::BufWriter::new(file);
        let mut printer =
            progress.then(|| crate::progress::Printer::new(std::io::stderr().is_terminal()));
        while let Some(first) = rx.blocking_recv() {
            let mut batch = vec![first];
            while let Ok(more) = rx.try_recv() {
                batch.push(more);
            }
            for r in &batch {
                serde_json::to_writer(&mut out, r)?;
                out.write_all(b"\n")?;
                if let Some(p) = printer.as_mut() {
                    p.event(r, progress_line(r));
                }
            }
            out.flush()?;
            let mut all = lock(&shared);
            for r in batch {
                all.push(r);
            }
        }
        out.flush()?;
        Ok(std::mem::take(&mut *lock(&shared)))
    });
    Ok((handle, live))
}

/// The digest, even if a holder panicked (it is only ever appended to).
pub fn lock(live: &Live) -> std::sync::MutexGuard<'_, Digest> {
    live.lock().unwrap_or_else(|p| p.into_inner())
}

/// A plain progress line for the events that mark the run's shape.
pub fn progress_line(r: &EventRecord) -> Option<String> {
    let t = r.t_us as f64 / 1e6;
    let msg = match &r.event {
        Event::SfuStarted {
            node,
            url,
            ready_us,
            node_id,
            ..
        } => {
            format!(
                "sfu {node} ready at {url} after {:.1} s{}",
                *ready_us as f64 / 1e6,
                if node_id.is_empty() {
                    String::new()
                } else {
                    format!(" ({node_id})")
                }
            )
        }
        Event::SignalConnected { bot, .. } => format!("{bot}: signal connected"),
        Event::PeersConnected {
            bot,
            publisher,
            subscriber,
        } => {
            let c = publisher.as_ref().or(subscriber.as_ref());
            let via = c
                .map(|c| format!(" via {}/{}", c.protocol, c.local_type))
                .unwrap_or_default();
            format!("{bot}: peer connections up{via}")
        }
        Event::JoinFailed { bot, error } => format!("{bot}: join failed: {error}"),
        Event::BotLeft { bot, reason } if reason != "left" => {
            format!("{bot}: session ended: {reason}")
        }
        Event::Note { source, message } => format!("{source}: {message}"),
        Event::FaultApplied {
            id,
            kind,
            target,
            skew_us,
            ..
        } => {
            format!(
                "{id}: {kind} on {target} applied ({:.1} ms late)",
                *skew_us as f64 / 1e3
            )
        }
        Event::FaultCleared { id } => format!("{id}: cleared"),
        Event::SignalLost { bot, reason } => format!("{bot}: {reason}"),
        Event::Kicked {
            bot,
            reason,
            action,
        } => format!("{bot}: kicked by the server: {reason} ({action})"),
        Event::Resumed { bot } => format!("{bot}: resumed"),
        Event::RejoinStarted { bot, attempt } => format!("{bot}: rejoining (attempt {attempt})"),
        Event::GaveUp { bot, why } => format!("{bot}: gave up: {why}"),
        Event::RequestRefused {
            bot,
            request,
            reason,
            message,
        } => format!(
            "{bot}: {request} refused by the server: {reason}{}",
            if message.is_empty() {
                String::new()
            } else {
                format!(" ({message})")
            }
        ),
        Event::RunEnded { reason } => format!("run ended: {reason}"),
        _ => return None,
    };
    Some(format!("[{t:7.2}s] {msg}"))
}
