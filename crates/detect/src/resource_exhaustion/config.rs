//! Configuration of the resource-exhaustion detector, `[detectors.resource_exhaustion]`.

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use vigil_core::Filter;
use vigil_event::EventKind;

use super::ResourceExhaustionDetector;

/// Resource exhaustion: a finding when a resource stays above its threshold in every sample for
/// `duration` (from `system_metric` and `process` events); one finding per episode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ResourceExhaustionConfig {
    /// Whether the detector runs.
    pub enabled: bool,
    /// Memory in use (total minus available), percent.
    pub memory_percent: f64,
    /// Swap in use, percent.
    pub swap_percent: f64,
    /// Space in use on one filesystem (total minus available), percent.
    pub disk_percent: f64,
    /// Open file descriptors of one process.
    pub process_fds: u32,
    /// How long a resource must stay above its threshold.
    #[serde(with = "vigil_core::duration")]
    #[schemars(with = "String")]
    pub duration: Duration,
    /// Most resources (filesystems, processes) tracked at once.
    pub max_tracked: usize,
}

impl Default for ResourceExhaustionConfig {
    fn default() -> Self {
        ResourceExhaustionConfig {
            enabled: true,
            memory_percent: 90.0,
            swap_percent: 90.0,
            disk_percent: 90.0,
            process_fds: 10_000,
            duration: Duration::from_secs(300),
            max_tracked: 1000,
        }
    }
}

impl ResourceExhaustionConfig {
    /// The detector, or `None` when disabled.
    pub fn build(&self) -> Option<ResourceExhaustionDetector> {
        self.enabled.then(|| ResourceExhaustionDetector::new(self))
    }

    /// The filter to register it with: host and process samples.
    pub fn filter() -> Filter {
        Filter::any().kinds([EventKind::SystemMetric, EventKind::Process])
    }
}
