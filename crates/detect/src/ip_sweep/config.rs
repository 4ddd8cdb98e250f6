//! Configuration of the IP-sweep detector, `[detectors.ip_sweep]`.

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::IpSweepDetector;

/// IP sweeps: a finding when `min_addresses` distinct addresses of one subnet (`/prefix_v4`,
/// `/prefix_v6`) fail to log in or are blocked by the firewall within `window`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct IpSweepConfig {
    /// Whether the detector runs.
    pub enabled: bool,
    /// Distinct addresses of one subnet within `window` that make a sweep.
    pub min_addresses: u32,
    /// The sliding window; also the quiet time after a finding for the same subnet.
    #[serde(with = "vigil_core::duration")]
    #[schemars(with = "String")]
    pub window: Duration,
    /// Prefix length of an IPv4 subnet.
    pub prefix_v4: u8,
    /// Prefix length of an IPv6 subnet.
    pub prefix_v6: u8,
    /// Most subnets tracked at once; the stalest beyond it are forgotten and counted.
    pub max_tracked: usize,
}

impl Default for IpSweepConfig {
    fn default() -> Self {
        IpSweepConfig {
            enabled: true,
            min_addresses: 10,
            window: Duration::from_secs(600),
            prefix_v4: 24,
            prefix_v6: 64,
            max_tracked: 20_000,
        }
    }
}

impl IpSweepConfig {
    /// The detector, or `None` when disabled.
    pub fn build(&self) -> Option<IpSweepDetector> {
        self.enabled.then(|| IpSweepDetector::new(self))
    }
}
