//! The action worker: a thread that applies the manager's changes, so the detector's `handle`
//! never waits on a firewall program.
//!
//! Changes arrive through a bounded channel; the worker takes everything queued at once and
//! hands it to each action as one batch (one `nft -f -` for many bans). It mirrors the active
//! bans from the changes it sees, so an action that failed is brought back in step with one
//! restore of that mirror on the next wake-up (after 5 s, doubling to 5 min while it keeps
//! failing).

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
        mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use chrono::Utc;

use crate::{Action, BanTarget, Change, Entry};

/// Batches waiting for the worker before `send` reports the queue full.
const QUEUE: usize = 1024;
/// First wait before retrying a failed action; it doubles up to `RETRY_MAX`.
const RETRY: Duration = Duration::from_secs(5);
const RETRY_MAX: Duration = Duration::from_secs(300);

/// Counters the worker keeps.
#[derive(Debug, Default)]
pub struct WorkerStats {
    /// Batches applied by every action.
    pub batches: AtomicU64,
    /// Changes applied.
    pub changes: AtomicU64,
    /// Action failures.
    pub failures: AtomicU64,
    /// Duration of the last batch, in microseconds.
    pub last_batch_micros: AtomicU64,
}

/// The handle the detector keeps.
#[derive(Debug)]
pub struct Worker {
    sender: Option<SyncSender<Vec<Change>>>,
    thread: Option<JoinHandle<()>>,
    stats: Arc<WorkerStats>,
}

impl Worker {
    /// Starts a worker thread applying changes with `actions`.
    pub fn start(actions: Vec<Box<dyn Action>>) -> std::io::Result<Worker> {
        let (sender, receiver) = sync_channel(QUEUE);
        let stats = Arc::new(WorkerStats::default());
        let thread_stats = stats.clone();
        let thread = std::thread::Builder::new()
            .name("vigil-bans".into())
            .spawn(move || work(actions, &receiver, &thread_stats))?;
        Ok(Worker { sender: Some(sender), thread: Some(thread), stats })
    }

    /// Queues `changes` without waiting; `false` when the queue is full (or the worker gone).
    pub fn send(&self, changes: Vec<Change>) -> bool {
        if changes.is_empty() {
            return true;
        }
        match self.sender.as_ref().map(|it| it.try_send(changes)) {
            Some(Ok(())) => true,
            Some(Err(TrySendError::Full(_) | TrySendError::Disconnected(_))) | None => false,
        }
    }

    /// The counters.
    pub fn stats(&self) -> &WorkerStats {
        &self.stats
    }

    /// Closes the queue and waits until everything queued is applied.
    pub fn finish(&mut self) {
        self.sender = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.finish();
    }
}

fn work(mut actions: Vec<Box<dyn Action>>, receiver: &Receiver<Vec<Change>>, stats: &WorkerStats) {
    let mut mirror: BTreeMap<BanTarget, Entry> = BTreeMap::new();
    let mut failed = vec![false; actions.len()];
    let mut retry = RETRY;
    loop {
        let retrying = failed.iter().any(|it| *it);
        let wait = if retrying { retry } else { Duration::from_secs(3600) };
        let mut batch = match receiver.recv_timeout(wait) {
            Ok(it) => it,
            Err(RecvTimeoutError::Timeout) => Vec::new(),
            Err(RecvTimeoutError::Disconnected) => return,
        };
        while let Ok(more) = receiver.try_recv() {
            batch.extend(more);
        }
        for change in &batch {
            match change {
                Change::Ban(entry) => {
                    mirror.insert(entry.target, entry.clone());
                }
                Change::Unban(entry) => {
                    mirror.remove(&entry.target);
                }
                Change::Restore(entries) => {
                    mirror = entries.iter().map(|it| (it.target, it.clone())).collect();
                }
            }
        }
        let now = Utc::now();
        let started = Instant::now();
        for (action, failed) in actions.iter_mut().zip(failed.iter_mut()) {
            let result = if *failed {
                // Back in step with everything known, then nothing else is needed.
                action.apply(&[Change::Restore(mirror.values().cloned().collect())], now)
            } else if batch.is_empty() {
                continue;
            } else {
                action.apply(&batch, now)
            };
            match result {
                Ok(()) => {
                    if *failed {
                        tracing::info!(
                            action = action.name(),
                            bans = mirror.len(),
                            "Action restored"
                        );
                    }
                    *failed = false;
                }
                Err(err) => {
                    stats.failures.fetch_add(1, Ordering::Relaxed);
                    *failed = action.restores_on_failure();
                    tracing::warn!(action = action.name(), error = %err, "Could not apply bans");
                }
            }
        }
        retry = match (retrying, failed.iter().any(|it| *it)) {
            (true, true) => (retry * 2).min(RETRY_MAX),
            (false, true) => retry,
            (_, false) => RETRY,
        };
        stats.batches.fetch_add(1, Ordering::Relaxed);
        stats.changes.fetch_add(batch.len() as u64, Ordering::Relaxed);
        let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        stats.last_batch_micros.store(micros, Ordering::Relaxed);
    }
}
