//! Configuration of the recurring-errors detector, `[detectors.recurring_errors]`.

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::RecurringErrorsDetector;

/// Recurring errors: a finding when log lines of level error or worse with the same signature
/// (the message with numbers, ids and addresses normalised out) recur `min_count` times within
/// `window`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RecurringErrorsConfig {
    /// Whether the detector runs.
    pub enabled: bool,
    /// Occurrences of one signature within `window` that make it recurring.
    pub min_count: u32,
    /// The sliding window; also the quiet time after a finding for the same signature.
    #[serde(with = "vigil_core::duration")]
    #[schemars(with = "String")]
    pub window: Duration,
    /// Most signatures tracked at once; the stalest beyond it are forgotten and counted.
    pub max_tracked: usize,
}

impl Default for RecurringErrorsConfig {
    fn default() -> Self {
        RecurringErrorsConfig {
            enabled: true,
            min_count: 5,
            window: Duration::from_secs(600),
            max_tracked: 1000,
        }
    }
}

impl RecurringErrorsConfig {
    /// The detector, or `None` when disabled.
    pub fn build(&self) -> Option<RecurringErrorsDetector> {
        self.enabled.then(|| RecurringErrorsDetector::new(self))
    }
}
