//! Configuration of the Report detector: the raw, serde-facing half of its two-phase config.
//!
//! A `[detectors.report]` table deserialises into [`ReportConfig`]; [`ReportConfig::build`] turns
//! it into a running [`ReportDetector`]. The field docs here become the generated example config.
//!
//! ```toml
//! [detectors.report]
//! enabled = true
//! summary_max_chars = 200
//! filter = { kinds = ["log"] }
//! ```

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use vigil_core::Filter;
use vigil_event::EventKind;

use super::ReportDetector;

/// Configuration of the Report detector, which dispatches a notice finding for every record it
/// receives and keeps overall statistics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ReportConfig {
    /// Whether the detector runs.
    pub enabled: bool,
    /// Which events the detector receives; by default log records only.
    pub filter: Filter,
    /// Longest summary of a notice, in characters; longer summaries are cut and end with `…`.
    /// 0 means no limit.
    pub summary_max_chars: usize,
}

impl Default for ReportConfig {
    fn default() -> Self {
        ReportConfig {
            enabled: true,
            filter: Filter::any().kinds([EventKind::Log]),
            summary_max_chars: 200,
        }
    }
}

impl ReportConfig {
    /// The detector this configuration describes, or `None` when it is disabled.
    pub fn build(&self) -> Option<ReportDetector> {
        self.enabled.then(|| ReportDetector::new(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_a_sample_config_and_unknown_keys_are_rejected() {
        let sample = "enabled = true\nsummary_max_chars = 200\nfilter = { kinds = [\"log\"] }\n";
        let config: ReportConfig = toml::from_str(sample).unwrap();
        assert_eq!(config, ReportConfig::default());
        assert_eq!(toml::from_str::<ReportConfig>("").unwrap(), ReportConfig::default());

        let err = toml::from_str::<ReportConfig>("enable = false").unwrap_err();
        assert!(err.to_string().contains("unknown field `enable`"), "{err}");
    }

    #[test]
    fn a_disabled_detector_is_not_built() {
        assert!(ReportConfig::default().build().is_some());
        assert!(ReportConfig { enabled: false, ..ReportConfig::default() }.build().is_none());
    }
}
