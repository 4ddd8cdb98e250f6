//! Configuration of the JSON-lines listener: the raw, serde-facing half of its two-phase config.
//!
//! A `[listeners.json_lines]` table deserialises into [`JsonLinesConfig`];
//! [`JsonLinesConfig::build`] opens the output and returns the running [`JsonLinesListener`].
//! The field docs here become the generated example config.
//!
//! ```toml
//! [listeners.json_lines]
//! enabled = true
//! path = "/var/log/vigil/events.jsonl"
//! append = true
//! filter = { min_severity = "notice" }
//! ```

use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use vigil_core::{ComponentError, Filter};

use super::JsonLinesListener;

/// The `path` that means standard output.
pub(super) const STDOUT_PATH: &str = "-";

/// Configuration of the JSON-lines listener, which writes every event it receives as one line of
/// JSON (the event envelope) to standard output or to a file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct JsonLinesConfig {
    /// Whether the listener runs.
    pub enabled: bool,
    /// Where to write: a file path, or `-` for standard output. A missing parent directory is
    /// created; a new file is readable by its owner and group only.
    pub path: PathBuf,
    /// Which events to write; by default every event.
    pub filter: Filter,
    /// Whether to add to an existing file rather than replace its content at start.
    pub append: bool,
}

impl Default for JsonLinesConfig {
    fn default() -> Self {
        JsonLinesConfig {
            enabled: true,
            path: PathBuf::from(STDOUT_PATH),
            filter: Filter::any(),
            append: true,
        }
    }
}

impl JsonLinesConfig {
    /// Whether the listener writes to standard output.
    pub fn is_stdout(&self) -> bool {
        self.path == Path::new(STDOUT_PATH)
    }

    /// The listener this configuration describes, with its output open, or `None` when it is
    /// disabled. Fails when the file or its directory cannot be created or opened.
    pub fn build(&self) -> Result<Option<JsonLinesListener>, ComponentError> {
        if !self.enabled {
            return Ok(None);
        }
        JsonLinesListener::new(self).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_write_everything_to_stdout_and_unknown_keys_are_rejected() {
        let config: JsonLinesConfig = toml::from_str("").unwrap();
        assert_eq!(config, JsonLinesConfig::default());
        assert!(config.is_stdout() && config.append && config.filter.is_any());

        let config: JsonLinesConfig =
            toml::from_str("path = \"/var/log/vigil/events.jsonl\"\nappend = false\n").unwrap();
        assert!(!config.is_stdout() && !config.append);

        let err = toml::from_str::<JsonLinesConfig>("file = \"x\"").unwrap_err();
        assert!(err.to_string().contains("unknown field `file`"), "{err}");
    }

    #[test]
    fn a_disabled_listener_is_not_built() {
        let config = JsonLinesConfig { enabled: false, ..JsonLinesConfig::default() };
        assert!(config.build().unwrap().is_none());
    }
}
