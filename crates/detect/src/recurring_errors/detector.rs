//! The recurring-errors detector: occurrences per error signature in a sliding window.

use vigil_core::{ComponentError, Detector, DetectorContext, Filter, Statistics};
use vigil_event::{Event, EventKind, Finding, FindingLevel, Value};
use vigil_parse::Level;

use super::{RecurringErrorsConfig, signature};
use crate::{
    LineDetector, Observation,
    duration_text::millis,
    line_detector::{handle_log, saved_part, window_finding},
    window::{SavedWindows, Windows},
};

/// See the module docs.
#[derive(Debug, Clone)]
pub struct RecurringErrorsDetector {
    min_count: usize,
    window_ms: i64,
    signatures: Windows<String, ()>,
    errors: u64,
    recurring: u64,
}

impl RecurringErrorsDetector {
    /// The detector's name.
    pub const NAME: &'static str = "recurring_errors";
    /// The finding's name.
    pub const FINDING_NAME: &'static str = "RecurringError";

    /// A detector configured by `config`.
    pub fn new(config: &RecurringErrorsConfig) -> RecurringErrorsDetector {
        let min_count = config.min_count.max(1) as usize;
        let window_ms = millis(config.window);
        RecurringErrorsDetector {
            min_count,
            window_ms,
            signatures: Windows::new(min_count, window_ms, config.max_tracked, false),
            errors: 0,
            recurring: 0,
        }
    }

    /// The filter to register it with: log events.
    pub fn filter() -> Filter {
        Filter::any().kinds([EventKind::Log])
    }
}

impl LineDetector for RecurringErrorsDetector {
    fn observe(&mut self, obs: &Observation<'_>, out: &mut Vec<Finding>) {
        if obs.level.is_none_or(|it| it > Level::Error) {
            return;
        }
        self.errors += 1;
        // The error tracer's signature (category, exception, function and the normalised
        // message, hashed) when it recognises the error, so the detector and `vigil errors`
        // group the same occurrences; the small word signature for the rest.
        let analysis = vigil_enrich::error::analyse(obs.message, obs.level.map(Level::as_str));
        let (key, sig) = match &analysis {
            Some(it) => (it.signature.clone(), format!("{}: {}", obs.source, it.normalised)),
            None => {
                let sig = signature(obs.source, obs.message);
                (sig.clone(), sig)
            }
        };
        let Some(items) = self.signatures.add(key, obs.at_ms, (), obs.line) else {
            return;
        };
        self.recurring += 1;
        let window_s = self.window_ms / 1000;
        let summary = format!("{} times within {window_s}s: {sig}", items.len());
        let rule = format!(
            "recurring_errors: {} errors of one signature within {window_s}s",
            self.min_count
        );
        let system = if obs.source.is_empty() { "log" } else { obs.source };
        let finding = window_finding(
            FindingLevel::Warning,
            RecurringErrorsDetector::FINDING_NAME,
            system,
            summary,
            rule,
            self.window_ms,
            items,
        )
        .with_data("signature", sig);
        let finding = match analysis {
            Some(it) => finding
                .with_data("error_signature", it.signature)
                .with_data("category", it.category.as_str()),
            None => finding,
        };
        out.push(finding);
    }
}

impl Detector for RecurringErrorsDetector {
    fn name(&self) -> &str {
        RecurringErrorsDetector::NAME
    }

    fn handle(&mut self, event: &Event, ctx: &mut DetectorContext) -> Result<(), ComponentError> {
        handle_log(self, event, ctx);
        Ok(())
    }

    fn statistics(&self) -> Statistics {
        let mut stats = Statistics::new();
        stats.insert("errors".into(), self.errors.into());
        stats.insert("recurring".into(), self.recurring.into());
        stats.insert("findings_suppressed".into(), self.signatures.suppressed.into());
        stats.insert("tracked_signatures".into(), (self.signatures.len() as u64).into());
        stats.insert("evicted_signatures".into(), self.signatures.evicted.into());
        stats
    }

    fn save_state(&self) -> Option<Value> {
        let saved = serde_json::json!({
            "version": 1, "errors": self.errors, "recurring": self.recurring,
            "signatures": self.signatures.save(),
        });
        Some(saved)
    }

    fn restore_state(&mut self, state: Value) -> Result<(), ComponentError> {
        let signatures: SavedWindows<String, ()> =
            saved_part("recurring_errors", &state, "signatures")?;
        self.signatures.restore(signatures);
        self.errors = state["errors"].as_u64().unwrap_or(0);
        self.recurring = state["recurring"].as_u64().unwrap_or(0);
        Ok(())
    }
}
