//! Configuration of the CSV listener: the raw, serde-facing half of its two-phase config.
//!
//! A `[listeners.csv.<name>]` table deserialises into [`CsvConfig`]; [`CsvConfig::build`]
//! creates the directory and returns the running [`CsvListener`]. The field docs here become the
//! generated example config.
//!
//! ```toml
//! [listeners.csv.audit]
//! enabled = true
//! dir = "/var/log/vigil/csv"
//! filter = { kinds = ["audit", "finding", "ban"] }
//! ```

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use vigil_core::{ComponentError, Filter};
use vigil_event::EventKind;

use super::CsvListener;

/// Configuration of the CSV listener, which appends each audit record to
/// `<dir>/<record_type>.csv` (columns: the record type's declared fields, in order, after a
/// header row), each finding to `<dir>/findings.csv` and each ban to `<dir>/bans.csv` (fixed
/// columns, see the README). Other kinds of events are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct CsvConfig {
    /// Whether the listener runs.
    pub enabled: bool,
    /// The directory of the CSV files, created if missing. A file that exists is appended to;
    /// its header must match the columns, or the listener refuses to write to it.
    pub dir: PathBuf,
    /// Which events to write; by default audit records only (add `finding` and `ban` to `kinds`
    /// for `findings.csv` and `bans.csv`).
    pub filter: Filter,
    /// Whether a text cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return gets a
    /// leading `'`, so that a spreadsheet shows attacker-controlled text (a user name from a log
    /// line) instead of running it as a formula.
    pub escape_formulas: bool,
}

impl Default for CsvConfig {
    fn default() -> Self {
        CsvConfig {
            enabled: true,
            dir: PathBuf::from("/var/log/vigil/csv"),
            filter: Filter::any().kinds([EventKind::Audit]),
            escape_formulas: true,
        }
    }
}

impl CsvConfig {
    /// The listener this configuration describes, with its directory created, or `None` when it
    /// is disabled. Fails when the directory cannot be created.
    pub fn build(&self) -> Result<Option<CsvListener>, ComponentError> {
        if !self.enabled {
            return Ok(None);
        }
        CsvListener::new(self).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_write_audit_records_and_unknown_keys_are_rejected() {
        let config: CsvConfig = toml::from_str("").unwrap();
        assert_eq!(config, CsvConfig::default());
        assert_eq!(config.filter, Filter::any().kinds([EventKind::Audit]));
        assert!(config.escape_formulas);

        let config: CsvConfig =
            toml::from_str("dir = \"/tmp/x\"\nfilter = { kinds = [\"audit\", \"ban\"] }").unwrap();
        assert_eq!(config.dir, PathBuf::from("/tmp/x"));
        assert_eq!(config.filter, Filter::any().kinds([EventKind::Audit, EventKind::Ban]));

        let err = toml::from_str::<CsvConfig>("path = \"x\"").unwrap_err();
        assert!(err.to_string().contains("unknown field `path`"), "{err}");
    }

    #[test]
    fn a_disabled_listener_is_not_built() {
        let config = CsvConfig { enabled: false, ..CsvConfig::default() };
        assert!(config.build().unwrap().is_none());
    }
}
