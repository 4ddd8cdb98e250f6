//! Configuration of the port-scan detector, `[detectors.port_scan]`.

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::PortScanDetector;

/// Port scans: a finding when the firewall blocks one source address on `min_ports` distinct
/// destination ports within `window` (`fw_block` and `fw_limit` lines).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct PortScanConfig {
    /// Whether the detector runs.
    pub enabled: bool,
    /// Distinct destination ports of one source within `window` that make a scan.
    pub min_ports: u32,
    /// The sliding window; also the quiet time after a finding for the same source.
    #[serde(with = "vigil_core::duration")]
    #[schemars(with = "String")]
    pub window: Duration,
    /// Most source addresses tracked at once; the stalest beyond it are forgotten and counted.
    pub max_tracked: usize,
}

impl Default for PortScanConfig {
    fn default() -> Self {
        PortScanConfig {
            enabled: true,
            min_ports: 10,
            window: Duration::from_secs(300),
            max_tracked: 20_000,
        }
    }
}

impl PortScanConfig {
    /// The detector, or `None` when disabled.
    pub fn build(&self) -> Option<PortScanDetector> {
        self.enabled.then(|| PortScanDetector::new(self))
    }
}
