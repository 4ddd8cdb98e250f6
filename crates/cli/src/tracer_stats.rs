//! The tracers' statistics in `vigil run`, persisted for `vigil report`: the event tracer's
//! aggregates (by source, level, action, IP, user, service) and the error tracer's recurring
//! signatures, categories and history.
//!
//! The tracers are enrichers, not detectors, so the runtime does not save them. A small
//! detector, `tracers`, holds the same tracers the pipeline runs and hands their statistics to
//! the runtime as its state: saved like every detector's, every `health_check_interval` and at
//! shutdown, under `detector.tracers` in the state directory. It receives no events. The
//! figures cover the agent's current run (the tracers start empty at each start).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use vigil_core::{ComponentError, Detector, DetectorContext, Filter, Statistics, event::Event};
use vigil_enrich::{error::ErrorTracer, event::EventTracer};

/// The detector's name, and its state key's suffix.
pub const NAME: &str = "tracers";

/// Keys kept per dimension of the event tracer's aggregates (the largest counts).
const TOP: usize = 20;

/// Recurring error signatures kept (the most frequent), each seen at least twice.
const RECURRING: usize = 50;

/// A source name no event carries: the detector's subscription stays empty.
const NO_SOURCE: &str = "\u{0}tracers";

/// Holds the tracers whose statistics it saves (see the module documentation).
pub struct TracerStats {
    event: Option<Arc<EventTracer>>,
    error: Option<Arc<ErrorTracer>>,
    since: DateTime<Utc>,
}

impl TracerStats {
    /// Saves the statistics of `event` and `error` (the enabled ones); `None` when neither is.
    pub fn new(event: Option<Arc<EventTracer>>, error: Option<Arc<ErrorTracer>>) -> Option<Self> {
        (event.is_some() || error.is_some()).then(|| TracerStats {
            event,
            error,
            since: Utc::now(),
        })
    }

    /// The subscription: no event.
    pub fn filter() -> Filter {
        Filter::any().source(NO_SOURCE)
    }

    /// The statistics: `since`, then `event` and `error` for the tracers that run.
    fn snapshot(&self) -> Statistics {
        let mut out = Statistics::new();
        out.insert("since".into(), self.since.to_rfc3339().into());
        if let Some(event) = &self.event {
            out.insert("event".into(), event.aggregates_json(TOP));
        }
        if let Some(error) = &self.error {
            out.insert("error".into(), error_json(error));
        }
        out
    }
}

/// The error tracer's recurring signatures (most frequent first), errors per category, hourly
/// history and signature counters.
fn error_json(error: &ErrorTracer) -> Value {
    let recurring: Vec<Value> = error
        .recurring(2)
        .into_iter()
        .take(RECURRING)
        .map(|it| {
            json!({
                "signature": it.signature,
                "category": it.category,
                "exception_type": it.exception_type,
                "normalised": it.normalised,
                "count": it.count,
                "max_severity": it.max_severity,
                "first_seen": it.first_seen,
                "last_seen": it.last_seen,
            })
        })
        .collect();
    let (tracked, evicted) = error.signature_stats();
    json!({
        "recurring": recurring,
        "by_category": error.by_category(),
        "history": error.history(),
        "signatures_tracked": tracked,
        "signatures_evicted": evicted,
    })
}

impl Detector for TracerStats {
    fn name(&self) -> &str {
        NAME
    }

    fn handle(&mut self, _event: &Event, _ctx: &mut DetectorContext) -> Result<(), ComponentError> {
        Ok(())
    }

    fn statistics(&self) -> Statistics {
        self.snapshot()
    }

    fn save_state(&self) -> Option<Value> {
        Some(Value::Object(self.snapshot().into_iter().collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_core::event::{LogEvent, Payload};
    use vigil_enrich::{error::ErrorTracerConfig, event::EventTracerConfig};

    #[test]
    fn the_saved_state_holds_both_tracers_aggregates() {
        let event = Arc::new(EventTracerConfig::default().build_always());
        let error = Arc::new(ErrorTracerConfig::default().build_always());
        let stats = TracerStats::new(Some(event.clone()), Some(error.clone())).unwrap();
        for n in 0..3 {
            let log = LogEvent {
                action: Some("failed_password".into()),
                ip: Some("203.0.113.9".parse().unwrap()),
                user: Some("root".into()),
                ..LogEvent::new("sshd", format!("Failed password {n}"))
            };
            event.trace(&log, Utc::now());
            error.observe("connect() failed (111: Connection refused)", Some("error"), Utc::now());
        }
        let saved = stats.save_state().unwrap();
        assert_eq!(saved["event"]["events"], 3);
        assert_eq!(saved["event"]["by_ip"]["203.0.113.9"], 3);
        assert_eq!(saved["event"]["by_user"]["root"], 3);
        assert_eq!(saved["error"]["recurring"][0]["count"], 3, "{saved}");
        assert!(saved["error"]["recurring"][0]["signature"].is_string());
        assert!(!TracerStats::filter().matches(&Event::new(
            "h",
            "files.auth",
            Payload::Log(LogEvent::new("sshd", "m"))
        )));
        assert!(TracerStats::new(None, None).is_none());
    }
}
