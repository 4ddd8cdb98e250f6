//! Configuration of the exec listener: the raw, serde-facing half of its two-phase config.
//!
//! A `[listeners.exec.<name>]` table deserialises into [`ExecConfig`]; [`ExecConfig::build`]
//! checks it and returns the running [`ExecListener`]. The field docs here become the generated
//! example config.
//!
//! ```toml
//! [listeners.exec.notify]
//! program = "/usr/local/bin/notify-oncall"
//! args = ["--host", "{{ host }}", "--ip", "{{ event.payload.data.ip }}", "{{ summary }}"]
//! message = "{{ event.payload.record }}"
//! filter = { kinds = ["finding"], min_severity = "error" }
//! ```

use std::{path::PathBuf, time::Duration};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use vigil_core::{ComponentError, Filter};
use vigil_event::EventKind;

use super::ExecListener;
use crate::Template;

/// Configuration of the exec listener, which runs `program` once per event it receives, with
/// `args` rendered for that event, each template exactly one argument (no shell ever reads
/// them: a value with spaces or `; rm -rf /` stays one literal argument).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ExecConfig {
    /// Whether the listener runs.
    pub enabled: bool,
    /// The program to run: an absolute path (no `PATH` lookup).
    #[schemars(example = &"/usr/local/bin/notify-oncall")]
    pub program: PathBuf,
    /// Its arguments, each a template (minijinja; context in `docs/specs/template.md`) rendered
    /// to exactly one argument; a missing field renders as an empty argument.
    #[schemars(example = ["--host", "{{ host }}", "{{ summary }}"])]
    pub args: Vec<Template>,
    /// Template of a message written to the program's standard input; without one, standard
    /// input is empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<Template>,
    /// Longest a run may take; then the program is killed and the run counted as failed.
    #[serde(with = "vigil_core::duration")]
    #[schemars(with = "String")]
    pub timeout: Duration,
    /// Runs at once, at most; further events wait for a slot.
    pub max_concurrent: usize,
    /// Which events run the program; by default findings.
    pub filter: Filter,
}

impl Default for ExecConfig {
    fn default() -> Self {
        ExecConfig {
            enabled: true,
            program: PathBuf::new(),
            args: Vec::new(),
            message: None,
            timeout: Duration::from_secs(30),
            max_concurrent: 4,
            filter: Filter::any().kinds([EventKind::Finding]),
        }
    }
}

impl ExecConfig {
    /// The listener this configuration describes, or `None` when it is disabled. Fails when
    /// `program` is not an absolute path or `max_concurrent` is 0.
    pub fn build(&self) -> Result<Option<ExecListener>, ComponentError> {
        if !self.enabled {
            return Ok(None);
        }
        if !self.program.is_absolute() {
            return Err(ComponentError::Config(format!(
                "exec: `program` must be an absolute path, not {:?}",
                self.program.display().to_string()
            )));
        }
        if self.max_concurrent == 0 {
            return Err(ComponentError::Config("exec: `max_concurrent` must be at least 1".into()));
        }
        Ok(Some(ExecListener::new(self)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_and_unknown_keys_are_rejected() {
        let text = "program = \"/bin/true\"\nargs = [\"{{ host }}\", \"x\"]\ntimeout = \"5s\"";
        let config: ExecConfig = toml::from_str(text).unwrap();
        assert_eq!(config.program, PathBuf::from("/bin/true"));
        assert_eq!(config.args.len(), 2);
        assert_eq!(config.timeout, Duration::from_secs(5));
        assert_eq!(config.filter, Filter::any().kinds([EventKind::Finding]));

        let err = toml::from_str::<ExecConfig>("command = \"rm\"").unwrap_err();
        assert!(err.to_string().contains("unknown field `command`"), "{err}");
        let err = toml::from_str::<ExecConfig>("args = [\"{% for %}\"]").unwrap_err();
        assert!(err.to_string().contains("template syntax error"), "{err}");
    }

    #[test]
    fn configurations_that_cannot_work_are_refused() {
        let relative = ExecConfig { program: "notify".into(), ..ExecConfig::default() };
        let err = relative.build().unwrap_err().to_string();
        assert!(err.contains("must be an absolute path"), "{err}");
        let zero =
            ExecConfig { program: "/bin/true".into(), max_concurrent: 0, ..ExecConfig::default() };
        assert!(zero.build().is_err());
        assert!(ExecConfig { enabled: false, ..ExecConfig::default() }.build().unwrap().is_none());
    }
}
