//! The store pipeline: one listener per destination, registered like any other listener.
//!
//! - [`StoreListener`] (`listener.rs`) batches, retries with backoff, bounds its buffer and
//!   runs the sink's housekeeping between batches;
//! - [`AckGate`] (here) acknowledges a tailed line to its source only once *every* destination
//!   has committed it, so with SQLite and JSON files configured together a line is re-read after
//!   a crash unless both have it.

mod listener;
#[cfg(test)]
mod tests;

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use vigil_core::{ComponentError, Filter, Listener, async_trait};
use vigil_event::{Event, Payload};

use crate::StoreError;

pub use listener::{StoreListener, StoreStats};

/// Refuses batching settings that cannot work.
pub(crate) fn check_batching(
    batch_size: usize,
    max_buffered: usize,
    flush_interval: Duration,
) -> Result<(), StoreError> {
    if batch_size == 0 || max_buffered < batch_size {
        return Err(StoreError::Config(
            "batch_size must be at least 1 and max_buffered_events at least batch_size".to_owned(),
        ));
    }
    if flush_interval.is_zero() {
        return Err(StoreError::Config("flush_interval must be longer than 0".to_owned()));
    }
    Ok(())
}

/// How a destination batches: shared by every destination's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchSettings {
    /// Events written in one batch (one transaction, one file).
    pub batch_size: usize,
    /// Longest time an event waits in the buffer before it is written.
    pub flush_interval: Duration,
    /// Most events buffered while the destination fails; beyond it the agent waits for the
    /// destination (sources are held back) instead of growing.
    pub max_buffered_events: usize,
}

impl Default for BatchSettings {
    fn default() -> Self {
        BatchSettings {
            batch_size: 1_000,
            flush_interval: Duration::from_secs(1),
            max_buffered_events: 100_000,
        }
    }
}

/// Called once per committed tailed line: hands the acknowledgement to the line's source (the
/// CLI passes `vigil_tail::AckHandle::ack_event`).
pub type Acknowledge = Arc<dyn Fn(&Event) + Send + Sync>;

/// Most lines waiting for some but not all destinations; beyond it a line is not tracked (it
/// stays unacknowledged and is read again after a restart) and counted.
const MAX_PENDING: usize = 1_000_000;

/// Acknowledges a tailed line once every registered destination whose filter accepts it has
/// committed it. A line no destination accepts is acknowledged by [`AckGate::passthrough`], a
/// listener that sees every log event, so a filtered store never holds a file back.
pub struct AckGate {
    forward: Acknowledge,
    filters: Mutex<Vec<Filter>>,
    pending: Mutex<HashMap<(String, u64), u64>>,
    untracked: AtomicU64,
}

impl std::fmt::Debug for AckGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AckGate")
            .field("destinations", &self.destinations())
            .finish_non_exhaustive()
    }
}

impl AckGate {
    /// A gate that calls `forward` for each line every destination has committed.
    pub fn new(forward: Acknowledge) -> Arc<AckGate> {
        Arc::new(AckGate {
            forward,
            filters: Mutex::default(),
            pending: Mutex::default(),
            untracked: AtomicU64::new(0),
        })
    }

    /// Adds a destination that receives the events `filter` accepts (at most 64); register
    /// them all before events flow.
    pub fn register(self: &Arc<Self>, filter: Filter) -> AckSlot {
        let mut filters = self.filters.lock().unwrap_or_else(|it| it.into_inner());
        let bit = filters.len().min(63) as u32;
        filters.push(filter);
        AckSlot { gate: self.clone(), bit }
    }

    /// The number of destinations registered.
    pub fn destinations(&self) -> usize {
        self.filters.lock().unwrap_or_else(|it| it.into_inner()).len()
    }

    /// Lines that could not be tracked because too many were pending.
    pub fn untracked(&self) -> u64 {
        self.untracked.load(Ordering::Relaxed)
    }

    /// Lines committed by some destinations and waiting for the others.
    pub fn pending(&self) -> usize {
        self.pending.lock().unwrap_or_else(|it| it.into_inner()).len()
    }

    /// The destinations (as a bit mask) that will receive `event`.
    fn required(filters: &[Filter], event: &Event) -> u64 {
        filters
            .iter()
            .enumerate()
            .filter(|(_, it)| it.matches(event))
            .fold(0, |mask, (bit, _)| mask | (1u64 << bit.min(63)))
    }

    fn committed(&self, bit: u32, events: &[Arc<Event>]) {
        let filters = self.filters.lock().unwrap_or_else(|it| it.into_inner()).clone();
        let mine = 1u64 << bit;
        let mut ready = Vec::new();
        {
            let mut pending = self.pending.lock().unwrap_or_else(|it| it.into_inner());
            for event in events {
                let Payload::Log(log) = &event.payload else { continue };
                let Some(origin) = &log.origin else { continue };
                let required = AckGate::required(&filters, event) | mine;
                if required == mine {
                    ready.push(event);
                    continue;
                }
                let key = (origin.stream.clone(), origin.offset);
                if pending.len() >= MAX_PENDING && !pending.contains_key(&key) {
                    self.untracked.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                let mask = pending.entry(key.clone()).or_insert(0);
                *mask |= mine;
                if *mask & required == required {
                    pending.remove(&key);
                    ready.push(event);
                }
            }
        }
        for event in ready {
            (self.forward)(event);
        }
    }

    /// A listener (`store.passthrough`, for log events) that acknowledges the tailed lines no
    /// destination's filter accepts, which no destination would ever commit.
    pub fn passthrough(self: &Arc<Self>) -> PassThrough {
        PassThrough { gate: self.clone() }
    }
}

/// See [`AckGate::passthrough`].
#[derive(Debug)]
pub struct PassThrough {
    gate: Arc<AckGate>,
}

impl PassThrough {
    /// The filter to register it with: every log event.
    pub fn filter() -> Filter {
        Filter::any().kinds([vigil_event::EventKind::Log])
    }
}

#[async_trait]
impl Listener for PassThrough {
    fn name(&self) -> &str {
        "store.passthrough"
    }

    async fn handle(&mut self, events: &[Arc<Event>]) -> Result<(), ComponentError> {
        let filters = self.gate.filters.lock().unwrap_or_else(|it| it.into_inner()).clone();
        for event in events {
            if is_tailed_line(event) && AckGate::required(&filters, event) == 0 {
                (self.gate.forward)(event);
            }
        }
        Ok(())
    }
}

fn is_tailed_line(event: &Event) -> bool {
    matches!(&event.payload, Payload::Log(log) if log.origin.is_some())
}

/// One destination's place in an [`AckGate`].
#[derive(Debug, Clone)]
pub struct AckSlot {
    gate: Arc<AckGate>,
    bit: u32,
}

impl AckSlot {
    /// Records that this destination committed `events`.
    pub fn committed(&self, events: &[Arc<Event>]) {
        self.gate.committed(self.bit, events);
    }
}
