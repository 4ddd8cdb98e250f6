//! [`BanDetector`]: the ban manager as a pipeline component.
//!
//! The runtime feeds it the jails' `Requested` bans (register it with [`BanDetector::filter`]:
//! the default detector filter excludes ban events). Each is decided at once and the outcome
//! dispatched; the changes go to the action [`Worker`] through a bounded queue, so `handle`
//! never waits on a firewall. Every tick it restores on the first call (one batch with every
//! ban, then the `Restored` events in bursts of 20,000 per tick), expires what ran out, and answers `vigil unban` requests from the
//! control directory. Its state (active bans and history) is saved by the runtime.

use std::{
    collections::VecDeque,
    path::{Path, PathBuf},
    sync::{Arc, atomic::Ordering},
};

use chrono::{DateTime, TimeDelta, Utc};
use vigil_core::{ComponentError, Detector, DetectorContext, Filter, Statistics};
use vigil_event::{Ban, BanStage, Event, EventKind, Payload, Severity, Value};

use crate::{
    Action, AgentLock, BanManager, BanState, BanTarget, Change, Control, DETECTOR_NAME, Outcome,
    RespondError, Worker,
};

/// `Restored` events dispatched per tick after a start.
const RESTORED_PER_TICK: usize = 20_000;

/// The ban manager as a detector. See the module docs.
#[derive(Debug)]
pub struct BanDetector {
    manager: BanManager,
    host: Arc<str>,
    worker: Option<Worker>,
    control: Option<Control>,
    lock: Option<AgentLock>,
    restored: bool,
    needs_restore: bool,
    pending: Vec<Ban>,
    backlog: VecDeque<BanTarget>,
    queue_full: u64,
    proc_root: Option<PathBuf>,
    addresses_read: Option<DateTime<Utc>>,
    requests: u64,
    ignored: u64,
}

impl BanDetector {
    /// A detector deciding with `manager` and applying with `actions` (none: dry-run, or
    /// nothing to apply).
    pub fn new(
        manager: BanManager,
        actions: Vec<Box<dyn Action>>,
    ) -> Result<BanDetector, RespondError> {
        let worker = if actions.is_empty() {
            None
        } else {
            Some(Worker::start(actions).map_err(|err| RespondError::Command {
                program: "vigil-bans".into(),
                message: format!("cannot start the action thread: {err}"),
            })?)
        };
        Ok(BanDetector {
            manager,
            host: Arc::from(rustix::system::uname().nodename().to_string_lossy().as_ref()),
            worker,
            control: None,
            lock: None,
            restored: false,
            needs_restore: false,
            pending: Vec::new(),
            backlog: VecDeque::new(),
            queue_full: 0,
            proc_root: None,
            addresses_read: None,
            requests: 0,
            ignored: 0,
        })
    }

    /// Stamps dispatched events with `host`.
    #[must_use]
    pub fn with_host(mut self, host: impl Into<Arc<str>>) -> BanDetector {
        self.host = host.into();
        self
    }

    /// Answers `vigil unban` requests under `state_dir` and holds its agent lock.
    pub fn with_control(mut self, state_dir: &Path) -> Result<BanDetector, RespondError> {
        let control = Control::new(state_dir);
        self.lock = Some(control.lock()?);
        self.control = Some(control);
        Ok(self)
    }

    /// Re-reads the host's own addresses under `proc_root` (normally `/proc`) every minute, so
    /// an address the host gains later is protected too.
    #[must_use]
    pub fn with_host_address_refresh(mut self, proc_root: impl Into<PathBuf>) -> BanDetector {
        self.proc_root = Some(proc_root.into());
        self
    }

    /// The filter to register the detector with: ban requests only.
    pub fn filter() -> Filter {
        Filter::any().kinds([EventKind::Ban]).field_eq("stage", BanStage::Requested.as_str())
    }

    /// The manager.
    pub fn manager(&self) -> &BanManager {
        &self.manager
    }

    fn emit(&mut self, outcome: Outcome, ctx: &mut DetectorContext) {
        // The firewall first: the worker applies while the events are built.
        let restore = outcome.changes.iter().any(|it| matches!(it, Change::Restore(_)));
        if let Some(worker) = &self.worker
            && !worker.send(outcome.changes)
        {
            self.queue_full += 1;
            if !restore {
                self.needs_restore = true;
            }
            tracing::warn!(
                total = self.queue_full,
                "Ban action queue full; a full restore follows"
            );
        }
        for ban in outcome.events {
            let severity = match ban.stage {
                BanStage::Banned => Severity::Warning,
                BanStage::Refused => Severity::Notice,
                _ => Severity::Info,
            };
            let event = Event::new(self.host.clone(), DETECTOR_NAME, Payload::Ban(ban));
            ctx.dispatch(event.with_severity(severity));
        }
    }

    /// On the first call, and after the action queue overflowed: every ban in one batch.
    fn restore_if_needed(&mut self, now: DateTime<Utc>, ctx: &mut DetectorContext) {
        if !self.restored || self.needs_restore {
            let first = !self.restored;
            self.restored = true;
            self.needs_restore = false;
            let mut expired = self.manager.expire(now);
            // The restore below replaces everything; lifting first would only fail.
            expired.changes.clear();
            self.emit(expired, ctx);
            // The firewall first: the worker applies the batch while the events are built.
            let change = self.manager.restore_change();
            self.emit(Outcome { events: Vec::new(), changes: change.into_iter().collect() }, ctx);
            if first {
                // A catch-up restore re-applies; only the first is news to listeners. Its
                // events go out from the next tick on, in bounded bursts, so building them
                // does not compete with the firewall batch.
                let lifted = std::mem::take(&mut self.pending);
                self.emit(Outcome { events: lifted, changes: Vec::new() }, ctx);
                self.backlog = self.manager.restored_targets().into();
                tracing::info!(
                    bans = self.manager.active_len(),
                    enforcing = self.manager.enforcing(),
                    "Bans restored"
                );
            }
        } else if !self.backlog.is_empty() {
            let n = self.backlog.len().min(RESTORED_PER_TICK);
            let targets: Vec<BanTarget> = self.backlog.drain(..n).collect();
            let events = targets.into_iter().filter_map(|it| self.manager.restored_event(it));
            let events = events.collect();
            self.emit(Outcome { events, changes: Vec::new() }, ctx);
        }
    }

    fn answer_requests(&mut self, now: DateTime<Utc>, ctx: &mut DetectorContext) {
        let Some(control) = self.control.clone() else { return };
        for (path, address) in control.take_requests() {
            match self.manager.unban(&address, now) {
                Ok(outcome) => {
                    tracing::info!(ip = %address, "Ban lifted by an operator");
                    self.emit(outcome, ctx);
                    control.answer(&path, Ok(format!("unbanned {address}")));
                }
                Err(err) => control.answer(&path, Err(err.to_string())),
            }
        }
    }
}

impl Detector for BanDetector {
    fn name(&self) -> &str {
        DETECTOR_NAME
    }

    fn handle(&mut self, event: &Event, ctx: &mut DetectorContext) -> Result<(), ComponentError> {
        let Payload::Ban(request) = &event.payload else {
            self.ignored += 1;
            return Ok(());
        };
        if request.stage != BanStage::Requested {
            self.ignored += 1;
            return Ok(());
        }
        self.requests += 1;
        self.restore_if_needed(Utc::now(), ctx);
        let outcome = self.manager.decide(request, Utc::now());
        if let Some(ban) = outcome.events.first() {
            tracing::info!(
                ip = %ban.ip, jail = %ban.jail, stage = ban.stage.as_str(), dry_run = ban.dry_run,
                reason = ban.reason.as_deref().unwrap_or(""), "Ban decided"
            );
        }
        self.emit(outcome, ctx);
        Ok(())
    }

    fn tick(&mut self, now: DateTime<Utc>, ctx: &mut DetectorContext) {
        self.restore_if_needed(now, ctx);
        if let Some(root) = &self.proc_root
            && self.addresses_read.is_none_or(|it| now - it >= TimeDelta::seconds(60))
        {
            self.addresses_read = Some(now);
            let found = crate::host_addresses(root);
            if self.manager.set_host_addresses(found) {
                tracing::info!(own = ?self.manager.guard().own(), "Host addresses changed");
            }
        }
        let outcome = self.manager.expire(now);
        self.emit(outcome, ctx);
        self.answer_requests(now, ctx);
    }

    fn statistics(&self) -> Statistics {
        let counters = self.manager.counters();
        let mut stats = Statistics::new();
        let mut put = |key: &str, value: u64| {
            stats.insert(key.to_owned(), Value::from(value));
        };
        put("active", self.manager.active_len() as u64);
        put("requests", self.requests);
        put("banned", counters.banned);
        put("extended", counters.extended);
        put("refused", counters.refused);
        put("refused_full", counters.refused_full);
        put("expired", counters.expired);
        put("unbanned", counters.unbanned);
        put("aggregated", counters.aggregated);
        put("history_evicted", counters.history_evicted);
        put("ignored", self.ignored);
        put("action_queue_full", self.queue_full);
        if let Some(worker) = &self.worker {
            let it = worker.stats();
            put("action_batches", it.batches.load(Ordering::Relaxed));
            put("action_changes", it.changes.load(Ordering::Relaxed));
            put("action_failures", it.failures.load(Ordering::Relaxed));
            put("action_last_batch_micros", it.last_batch_micros.load(Ordering::Relaxed));
        }
        stats.insert("enforcing".into(), Value::from(self.manager.enforcing()));
        stats
    }

    fn save_state(&self) -> Option<Value> {
        Some(self.manager.state().to_value())
    }

    fn restore_state(&mut self, state: Value) -> Result<(), ComponentError> {
        let state = BanState::from_value(state)?;
        if state.skipped > 0 {
            tracing::warn!(rows = state.skipped, "Left out unreadable rows of the saved ban state");
        }
        let lifted = self.manager.load_state(state, Utc::now());
        self.pending.extend(lifted);
        Ok(())
    }
}

impl Drop for BanDetector {
    fn drop(&mut self) {
        // Apply what is queued before the lock is released.
        if let Some(worker) = &mut self.worker {
            worker.finish();
        }
        self.lock = None;
    }
}
