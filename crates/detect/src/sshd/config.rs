//! Configuration of the sshd detector, `[detectors.sshd]`.
//!
//! ```toml
//! [detectors.sshd]
//! enabled = true
//! max_tries = 5
//! window = "10m"
//! days_kept = 31
//! ```

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use vigil_core::Filter;
use vigil_event::EventKind;

use super::SshdDetector;

/// Configuration of the sshd detector: logins, failures per address, the
/// `SSHLoginTriesExceeded` finding and daily statistics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct SshdConfig {
    /// Whether the detector runs.
    pub enabled: bool,
    /// Failed logins of one address within `window` that raise `SSHLoginTriesExceeded`.
    pub max_tries: u32,
    /// The sliding window failed logins are counted in; also the quiet time after a finding
    /// for the same address.
    #[serde(with = "vigil_core::duration")]
    #[schemars(with = "String")]
    pub window: Duration,
    /// Days of daily statistics kept.
    pub days_kept: usize,
    /// Most addresses tracked at once; the stalest beyond it are forgotten and counted.
    pub max_tracked: usize,
    /// Most distinct users and addresses kept per day and statistic; beyond it they are counted
    /// without their names.
    pub max_keys_per_day: usize,
}

impl Default for SshdConfig {
    fn default() -> Self {
        SshdConfig {
            enabled: true,
            max_tries: 5,
            window: Duration::from_secs(600),
            days_kept: 31,
            max_tracked: 20_000,
            max_keys_per_day: 10_000,
        }
    }
}

impl SshdConfig {
    /// The detector this configuration describes, or `None` when it is disabled.
    pub fn build(&self) -> Option<SshdDetector> {
        self.enabled.then(|| SshdDetector::new(self))
    }

    /// The filter to register it with: log events, and ban decisions (for the addresses
    /// blocked each day).
    pub fn filter() -> Filter {
        Filter::any().kinds([EventKind::Log, EventKind::Ban])
    }
}
