//! Configuration of the log listener: the raw, serde-facing half of its two-phase config.
//!
//! A `[listeners.log]` table deserialises into [`LogListenerConfig`];
//! [`LogListenerConfig::build`] returns the running [`LogListener`]. The field docs here become
//! the generated example config.
//!
//! ```toml
//! [listeners.log]
//! enabled = true
//! filter = { min_severity = "notice" }
//! ```

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use vigil_core::Filter;
use vigil_event::Severity;

use super::LogListener;
use crate::Template;

/// Configuration of the log listener, which writes each event it receives to the agent's own
/// log as one line, at a level that follows the event's severity (target `vigil::events`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct LogListenerConfig {
    /// Whether the listener runs.
    pub enabled: bool,
    /// Which events to log; by default those of severity `notice` and above (findings and
    /// important events, not every metric sample or log line).
    pub filter: Filter,
    /// Template of the logged line (minijinja; context in `docs/specs/template.md`), e.g.
    /// `"{{ name }}: {{ summary }} ({{ event.payload.data.ip }})"`; by default a description
    /// of the event. Line breaks in the result become spaces.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<Template>,
}

impl Default for LogListenerConfig {
    fn default() -> Self {
        LogListenerConfig {
            enabled: true,
            filter: Filter::any().min_severity(Severity::Notice),
            message: None,
        }
    }
}

impl LogListenerConfig {
    /// The listener this configuration describes, or `None` when it is disabled.
    pub fn build(&self) -> Option<LogListener> {
        self.enabled.then(|| LogListener::new(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_log_notices_and_above_and_unknown_keys_are_rejected() {
        let config: LogListenerConfig = toml::from_str("").unwrap();
        assert_eq!(config, LogListenerConfig::default());
        assert_eq!(config.filter.min_severity, Some(Severity::Notice));

        let config: LogListenerConfig =
            toml::from_str("filter = { min_severity = \"warning\" }").unwrap();
        assert_eq!(config.filter, Filter::any().min_severity(Severity::Warning));

        let err = toml::from_str::<LogListenerConfig>("level = \"info\"").unwrap_err();
        assert!(err.to_string().contains("unknown field `level`"), "{err}");
    }

    #[test]
    fn a_disabled_listener_is_not_built() {
        assert!(LogListenerConfig::default().build().is_some());
        assert!(LogListenerConfig { enabled: false, ..Default::default() }.build().is_none());
    }
}
