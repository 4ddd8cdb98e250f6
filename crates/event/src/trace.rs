//! The enrichment block: what tracers added to an event on its way to the detectors.
//!
//! Every tracer that runs appends one [`TracerRecord`] (its name, when it ran, what it found), so
//! an operator can always see which tracers looked at an event and why a score is what it is.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{Map, Value};

/// Context added after collection: free-form fields plus the trace of tracers that ran.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Enrichment {
    /// Named values added by tracers or configuration (`ip_class`, `threat_score`, …).
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub fields: Map,
    /// Which tracers ran, when, and what each found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace: Option<Trace>,
}

impl Enrichment {
    /// Whether nothing was added.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty() && self.trace.is_none()
    }

    /// Records that `tracer` ran and found `found`.
    pub fn record(&mut self, tracer: impl Into<String>, found: Value) {
        let now = Utc::now();
        let trace = self.trace.get_or_insert_with(|| Trace { traced_at: now, tracers: Vec::new() });
        trace.tracers.push(TracerRecord { tracer: tracer.into(), at: now, found });
    }
}

/// The trace block of an enriched event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trace {
    /// When tracing began.
    pub traced_at: DateTime<Utc>,
    /// One record per tracer that ran, in order.
    pub tracers: Vec<TracerRecord>,
}

impl Trace {
    /// Names of the tracers that ran.
    pub fn tracers_used(&self) -> impl Iterator<Item = &str> {
        self.tracers.iter().map(|it| it.tracer.as_str())
    }
}

/// What one tracer found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TracerRecord {
    /// Tracer name (`ip`, `process`, `error`, …).
    pub tracer: String,
    /// When it ran.
    pub at: DateTime<Utc>,
    /// What it found.
    pub found: Value,
}
