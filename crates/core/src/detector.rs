//! The [`Detector`] trait: stateful units that correlate events (seed 004's "modules").

use std::sync::Arc;

use chrono::{DateTime, Utc};
use vigil_event::{AuditRecord, Event, Finding, Map, Payload, Value};

use crate::ComponentError;

/// A detector's statistics: named counters and values, reportable at any time.
pub type Statistics = Map;

/// A stateful unit that consumes events, keeps statistics, correlates over time and dispatches
/// findings and audit records.
///
/// The runtime feeds a detector, one event at a time, the events that match the filter it was
/// registered with (by default every kind except findings and audit records, so detectors do not
/// feed on each other's output). `handle` is synchronous: detectors are in-memory state machines,
/// and keeping I/O out of them keeps them fast and testable.
///
/// State survives restarts: the runtime calls [`save_state`](Detector::save_state) on shutdown
/// and periodically, and [`restore_state`](Detector::restore_state) before the first event.
pub trait Detector: Send + 'static {
    /// A stable snake_case name; it becomes the `source` of what the detector dispatches.
    fn name(&self) -> &str;

    /// Consumes one event; dispatches through `ctx`.
    fn handle(&mut self, event: &Event, ctx: &mut DetectorContext) -> Result<(), ComponentError>;

    /// Called about once per second with the current time, for windows that close on time
    /// rather than on an event (daily statistics, expiring counters).
    fn tick(&mut self, now: DateTime<Utc>, ctx: &mut DetectorContext) {
        let _ = (now, ctx);
    }

    /// The detector's statistics now.
    fn statistics(&self) -> Statistics;

    /// State to persist, if the detector keeps any.
    fn save_state(&self) -> Option<Value> {
        None
    }

    /// Restores state saved by an earlier run.
    fn restore_state(&mut self, state: Value) -> Result<(), ComponentError> {
        let _ = state;
        Ok(())
    }
}

/// Where a detector dispatches events; the runtime publishes them after each call.
#[derive(Debug)]
pub struct DetectorContext {
    host: Arc<str>,
    source: Arc<str>,
    out: Vec<Event>,
}

impl DetectorContext {
    /// A context for the detector `source` on `host`.
    pub fn new(host: impl Into<Arc<str>>, source: impl Into<Arc<str>>) -> DetectorContext {
        DetectorContext { host: host.into(), source: source.into(), out: Vec::new() }
    }

    /// Dispatches a finding.
    pub fn finding(&mut self, finding: Finding) {
        let event = Event::new(self.host.clone(), self.source.clone(), Payload::Finding(finding));
        self.out.push(event);
    }

    /// Dispatches an audit record.
    pub fn audit(&mut self, record: AuditRecord) {
        self.out.push(Event::new(self.host.clone(), self.source.clone(), Payload::Audit(record)));
    }

    /// Dispatches any event.
    pub fn dispatch(&mut self, event: Event) {
        self.out.push(event);
    }

    /// Takes what was dispatched since the last call.
    pub fn take(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.out)
    }

    /// Whether anything is waiting to be taken.
    pub fn is_empty(&self) -> bool {
        self.out.is_empty()
    }
}
