//! The tracer stage of `vigil replay`: each recognised line becomes an owned event, stamped
//! with the line's own time, and the agent's log tracers enrich it in line order — on a thread
//! of their own, so parsing and detection on the replay's thread do not wait for them (the
//! detectors never read the enrichment, in the agent neither).
//!
//! Events travel in batches of [`BATCH`] through a bounded channel ([`IN_FLIGHT`] batches at
//! most) and come back to be refilled, so their buffers are reused and memory stays bounded.
//! The IP tracer's block-list requests (`ban` events of jail `ip_tracer`) are collected apart
//! and handed back, ordered by time, when the replay finishes.

use std::{
    sync::{
        Arc,
        mpsc::{Receiver, SyncSender, sync_channel},
    },
    thread::JoinHandle,
};

use chrono::{DateTime, Utc};
use vigil_core::Enricher;
use vigil_event::{Ban, Event, LogEvent, Payload, Trace};
use vigil_parse::{Parsed, Stamp};

use crate::{observation::utc, replay::MAX_FINDINGS_KEPT};

/// Events per batch.
pub const BATCH: usize = 256;
/// Batches on their way to the tracers at most.
pub const IN_FLIGHT: usize = 2;

/// What the tracers asked for.
#[derive(Debug, Default)]
struct Collected {
    blocklisted: Vec<Ban>,
    total: u64,
}

/// See the module docs.
pub(crate) struct TracerStage {
    host: Arc<str>,
    filler: Filler,
    batch: Vec<Event>,
    len: usize,
    to_worker: Option<SyncSender<(Vec<Event>, usize)>>,
    recycled: Receiver<Vec<Event>>,
    worker: Option<JoinHandle<Collected>>,
    /// The chain, run on this thread when no thread could be started.
    inline: Option<(Vec<Arc<dyn Enricher>>, Collected)>,
}

impl std::fmt::Debug for TracerStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TracerStage").field("len", &self.len).finish_non_exhaustive()
    }
}

impl TracerStage {
    /// Starts the tracers' thread.
    pub(crate) fn start(chain: Vec<Arc<dyn Enricher>>, host: Arc<str>) -> TracerStage {
        let (to_worker, work) = sync_channel::<(Vec<Event>, usize)>(IN_FLIGHT);
        let (give_back, recycled) = sync_channel::<Vec<Event>>(IN_FLIGHT + 2);
        let worker_chain = chain.clone();
        let spawned = std::thread::Builder::new()
            .name("replay-tracers".into())
            .spawn(move || run(&worker_chain, &work, &give_back));
        let (to_worker, worker, inline) = match spawned {
            Ok(handle) => (Some(to_worker), Some(handle), None),
            // No thread to be had: the same work on the replay's thread.
            Err(_) => (None, None, Some((chain, Collected::default()))),
        };
        TracerStage {
            host,
            filler: Filler::default(),
            batch: Vec::with_capacity(BATCH),
            len: 0,
            to_worker,
            recycled,
            worker,
            inline,
        }
    }

    /// Adds the line's event (event time `at_ms` when the line has no time of its own).
    pub(crate) fn push(&mut self, parsed: &Parsed<'_>, line: &str, at_ms: i64) {
        if self.len == self.batch.len() {
            let log = Payload::Log(LogEvent::default());
            self.batch.push(Event::new(self.host.clone(), "replay", log));
        }
        let event = &mut self.batch[self.len];
        if let Payload::Log(log) = &mut event.payload {
            self.filler.fill(log, parsed, line);
            event.timestamp = log.timestamp.unwrap_or_else(|| utc(at_ms));
        }
        self.len += 1;
        if self.len == BATCH {
            self.flush();
        }
    }

    /// Hands the filled events to the tracers.
    fn flush(&mut self) {
        if self.len == 0 {
            return;
        }
        let next = self.recycled.try_recv().unwrap_or_else(|_| Vec::with_capacity(BATCH));
        let mut batch = std::mem::replace(&mut self.batch, next);
        let len = std::mem::take(&mut self.len);
        if let Some((chain, collected)) = &mut self.inline {
            enrich(chain, &mut batch[..len], collected);
        } else if let Some(tx) = &self.to_worker
            && tx.send((batch, len)).is_err()
        {
            // The thread is gone (a tracer panicked): `finish` reports it.
            self.to_worker = None;
        }
    }

    /// Waits for the tracers; returns the block-list requests (ordered by time, at most
    /// [`MAX_FINDINGS_KEPT`]) and their number.
    pub(crate) fn finish(mut self) -> (Vec<Ban>, u64) {
        self.flush();
        drop(self.to_worker.take());
        let mut collected = match (self.worker.take(), self.inline.take()) {
            (Some(worker), _) => match worker.join() {
                Ok(it) => it,
                Err(panic) => std::panic::resume_unwind(panic),
            },
            (None, Some((_, collected))) => collected,
            (None, None) => Collected::default(),
        };
        // Lines of several files may go back in time; equal times keep the lines' order.
        collected.blocklisted.sort_by_key(|it| it.at);
        (collected.blocklisted, collected.total)
    }
}

/// The tracers' thread: enriches each batch in order and gives it back.
fn run(
    chain: &[Arc<dyn Enricher>],
    work: &Receiver<(Vec<Event>, usize)>,
    give_back: &SyncSender<Vec<Event>>,
) -> Collected {
    let mut collected = Collected::default();
    for (mut batch, len) in work {
        enrich(chain, &mut batch[..len], &mut collected);
        // Full: the replay's thread makes a new batch instead.
        let _ = give_back.try_send(batch);
    }
    collected
}

/// Runs `chain` over `events` as the agent's publish path does; keeps the ban requests.
fn enrich(chain: &[Arc<dyn Enricher>], events: &mut [Event], collected: &mut Collected) {
    for event in events {
        event.enrichment.fields.clear();
        // The trace starts at the line's time (the tracers' records share the trace's time),
        // so no clock is read and the trace depends on the lines only; its buffer is reused.
        match &mut event.enrichment.trace {
            Some(trace) => {
                trace.traced_at = event.timestamp;
                trace.tracers.clear();
            }
            none => {
                *none = Some(Trace { traced_at: event.timestamp, tracers: Vec::with_capacity(4) });
            }
        }
        for extra in vigil_core::enrich_with(chain, event) {
            if let Payload::Ban(ban) = extra.payload {
                collected.total += 1;
                if collected.blocklisted.len() < MAX_FINDINGS_KEPT {
                    collected.blocklisted.push(ban);
                }
            }
        }
    }
}

/// Refills one [`LogEvent`] line after line: makes it what [`Parsed::to_log_event`] makes of
/// the line, reusing its buffers — an optional field the line lacks keeps its buffer aside for
/// the next line that has it — and the converted time of the last stamp.
#[derive(Debug, Default)]
pub(crate) struct Filler {
    spare: [String; 10],
    last: Option<(Stamp, Option<DateTime<Utc>>)>,
}

impl Filler {
    pub(crate) fn fill(&mut self, log: &mut LogEvent, parsed: &Parsed<'_>, raw: &str) {
        fn text(into: &mut String, from: &str) {
            into.clear();
            into.push_str(from);
        }
        fn opt(into: &mut Option<String>, from: Option<&str>, spare: &mut String) {
            match (into.as_mut(), from) {
                (Some(buffer), Some(from)) => text(buffer, from),
                (None, Some(from)) => {
                    let mut buffer = std::mem::take(spare);
                    text(&mut buffer, from);
                    *into = Some(buffer);
                }
                (Some(_), None) => *spare = into.take().unwrap_or_default(),
                (None, None) => {}
            }
        }
        let [level, action, user, service, raw_spare, host, ip_raw, method, protocol, path] =
            &mut self.spare;
        text(&mut log.source, parsed.source);
        log.timestamp = match (parsed.timestamp, self.last) {
            (None, _) => None,
            (Some(stamp), Some((last, at))) if stamp == last => at,
            (Some(stamp), _) => {
                let at = stamp.to_utc();
                self.last = Some((stamp, at));
                at
            }
        };
        opt(&mut log.level, parsed.level.map(vigil_parse::Level::as_str), level);
        opt(&mut log.action, parsed.action.map(vigil_parse::Action::as_str), action);
        log.ip = parsed.ip;
        opt(&mut log.user, parsed.user, user);
        log.port = parsed.port;
        opt(&mut log.service, parsed.service, service);
        log.pid = parsed.pid;
        text(&mut log.message, parsed.message);
        opt(&mut log.raw, Some(raw), raw_spare);
        log.utc_offset_seconds = parsed.timestamp.map(|it| it.offset);
        opt(&mut log.host, parsed.host, host);
        opt(&mut log.ip_raw, parsed.ip_raw, ip_raw);
        opt(&mut log.method, parsed.method, method);
        log.dst = parsed.dst;
        log.dport = parsed.dport;
        opt(&mut log.protocol, parsed.protocol, protocol);
        log.status = parsed.status;
        opt(&mut log.path, parsed.path, path);
        log.origin = None;
    }
}
