//! Configuration of a file tail source: the raw, serde-facing half of its two-phase config.
//!
//! A `[sources.files.<name>]` table deserialises into [`TailConfig`]; [`TailConfig::build`]
//! checks the globs and returns the [`TailSource`](crate::TailSource). The field docs here become
//! the generated example config.
//!
//! ```toml
//! [sources.files.auth]
//! paths = ["/var/log/auth.log", "/var/log/secure"]
//! exclude = ["*.gz"]
//! poll_interval = "250ms"
//! max_line_bytes = 65536
//! start_at = "end"
//! read_rotated = true
//! multiline = "python"
//! multiline_timeout = "2s"
//! ```

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{AckMode, TailError, TailSource};

/// Where reading starts in a file found at the very first run (no checkpoint yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StartAt {
    /// At the end, like `tail -F` and fail2ban: only lines written from now on.
    #[default]
    End,
    /// At the beginning: the whole file.
    Beginning,
}

/// Configuration of a file tail source, which follows log files through rotation and sends each
/// line as a log event, never losing or silently dropping one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct TailConfig {
    /// Whether the source runs.
    pub enabled: bool,
    /// Files to follow: paths or globs (`/var/log/nginx/*.log`). Files that start matching
    /// while the agent runs are picked up and read from their beginning.
    #[schemars(example = ["/var/log/auth.log"])]
    pub paths: Vec<String>,
    /// Globs of paths not to follow, e.g. rotated names (`*.1`, `*.gz`) when `paths` would
    /// match them. Compressed `.gz` files are never followed.
    pub exclude: Vec<String>,
    /// How often files are checked for new lines, rotation and new matches.
    #[serde(with = "humantime_text")]
    #[schemars(with = "String")]
    pub poll_interval: Duration,
    /// Also wake up on inotify events, to read new lines moments after they are written.
    /// Polling goes on either way and is all that is used where inotify is unavailable.
    pub inotify: bool,
    /// Longest line kept, in bytes; longer lines are cut to it and counted, never dropped.
    pub max_line_bytes: usize,
    /// Where to start in files found at the very first run (`end` or `beginning`). Files found
    /// later, and files whose checkpoint exists, are read from where they need to be.
    pub start_at: StartAt,
    /// After a restart, first read the lines that reached a rotated file (`<path>.1`, or
    /// `<path>.1.gz`) while the agent was down; also used to recover lines of a file that was
    /// copied and truncated before it was read.
    pub read_rotated: bool,
    /// Directory of the checkpoint file. Unset: `checkpoints` in the agent's state directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(example = &"/var/lib/vigil/checkpoints")]
    pub checkpoint_dir: Option<PathBuf>,
    /// Most lines sent but not yet acknowledged; reading pauses beyond it, bounding memory.
    pub max_in_flight_lines: usize,
    /// How each line becomes a log event: a built-in parser (`auto`, `sshd`, `syslog`,
    /// `nginx-access`, `nginx-error`, `django`, `fail2ban`, `firewall`, `generic`) or `none`
    /// (the line as it is). Lines a parser does not recognise are kept as plain log events.
    pub parser: String,
    /// Which consecutive lines become one event: `python` joins a Python traceback (its
    /// header, indented frames, final exception line, chained tracebacks) to the line before
    /// it; `none` keeps every line an event of its own; `auto` means `python` when `parser`
    /// is `django` and `none` otherwise.
    pub multiline: String,
    /// How long a record being joined waits for a next line before it is sent as it is.
    #[serde(with = "humantime_text")]
    #[schemars(with = "String")]
    pub multiline_timeout: Duration,
    /// Most lines in one joined record; the lines after it start a new record.
    pub multiline_max_lines: usize,
    /// Most bytes in one joined record; the line that would pass it starts a new record.
    pub multiline_max_bytes: usize,
}

impl Default for TailConfig {
    fn default() -> Self {
        TailConfig {
            enabled: true,
            paths: Vec::new(),
            exclude: Vec::new(),
            poll_interval: Duration::from_millis(250),
            inotify: true,
            max_line_bytes: 64 * 1024,
            start_at: StartAt::End,
            read_rotated: true,
            checkpoint_dir: None,
            max_in_flight_lines: 10_000,
            parser: "auto".to_owned(),
            multiline: "auto".to_owned(),
            multiline_timeout: Duration::from_secs(2),
            multiline_max_lines: 200,
            multiline_max_bytes: 64 * 1024,
        }
    }
}

impl TailConfig {
    /// The source this configuration describes under the name `name`, or `None` when it is
    /// disabled. `state_dir` is the agent's state directory, home of the default checkpoint
    /// directory. Fails on an invalid glob or a zero limit.
    pub fn build(
        &self,
        name: &str,
        state_dir: &Path,
        ack: AckMode,
    ) -> Result<Option<TailSource>, TailError> {
        if !self.enabled {
            return Ok(None);
        }
        for pattern in self.paths.iter().chain(&self.exclude) {
            glob::Pattern::new(pattern).map_err(|err| TailError::Glob {
                pattern: pattern.clone(),
                message: err.to_string(),
            })?;
        }
        if self.max_line_bytes == 0 || self.max_in_flight_lines == 0 {
            return Err(TailError::Config(
                "max_line_bytes and max_in_flight_lines must be at least 1".to_owned(),
            ));
        }
        if !matches!(self.multiline.as_str(), "auto" | "python" | "none") {
            return Err(TailError::Config(format!(
                "multiline {:?}: expected one of auto, python, none",
                self.multiline
            )));
        }
        if self.multiline_max_lines == 0 || self.multiline_max_bytes == 0 {
            return Err(TailError::Config(
                "multiline_max_lines and multiline_max_bytes must be at least 1".to_owned(),
            ));
        }
        if self.poll_interval.is_zero() {
            return Err(TailError::Config("poll_interval must be longer than 0".to_owned()));
        }
        let checkpoint_dir =
            self.checkpoint_dir.clone().unwrap_or_else(|| state_dir.join("checkpoints"));
        Ok(Some(TailSource::new(name, self.clone(), checkpoint_dir, ack)))
    }
}

impl TailConfig {
    /// The joining rule `multiline` selects, `auto` resolved: `python` or `none`. The rule
    /// itself is plugged in with [`TailSource::with_joiner`](crate::TailSource::with_joiner).
    pub fn effective_multiline(&self) -> &str {
        match self.multiline.as_str() {
            "auto" if self.parser == "django" => "python",
            "auto" => "none",
            other => other,
        }
    }
}

/// Durations as humantime text (`"250ms"`, `"1s"`).
mod humantime_text {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub(super) fn serialize<S: Serializer>(value: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*value).to_string())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text)
            .map_err(|err| D::Error::custom(format!("invalid duration {text:?}: {err}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_sample_and_unknown_keys_are_rejected() {
        let sample = "paths = [\"/var/log/auth.log\"]\npoll_interval = \"250ms\"\n\
                      max_line_bytes = 65536\nstart_at = \"end\"\nread_rotated = true\n";
        let config: TailConfig = toml::from_str(sample).unwrap();
        assert_eq!(
            config,
            TailConfig { paths: vec!["/var/log/auth.log".into()], ..TailConfig::default() }
        );
        let err = toml::from_str::<TailConfig>("path = []").unwrap_err();
        assert!(err.to_string().contains("unknown field `path`"), "{err}");
        let err = toml::from_str::<TailConfig>("poll_interval = \"soon\"").unwrap_err();
        assert!(err.to_string().contains("invalid duration"), "{err}");
        let config: TailConfig = toml::from_str("start_at = \"beginning\"").unwrap();
        assert_eq!(config.start_at, StartAt::Beginning);
    }

    #[test]
    fn build_checks_globs_and_limits() {
        let state = Path::new("/tmp/state");
        let disabled = TailConfig { enabled: false, ..TailConfig::default() };
        assert!(disabled.build("files.x", state, AckMode::OnPublish).unwrap().is_none());
        let bad = TailConfig { paths: vec!["/var/log/[".into()], ..TailConfig::default() };
        let err = bad.build("files.x", state, AckMode::OnPublish).err().unwrap();
        assert!(err.to_string().contains("invalid glob `/var/log/[`"), "{err}");
        let zero = TailConfig { max_line_bytes: 0, ..TailConfig::default() };
        assert!(zero.build("files.x", state, AckMode::OnPublish).is_err());
        let bad = TailConfig { multiline: "java".into(), ..TailConfig::default() };
        let err = bad.build("files.x", state, AckMode::OnPublish).err().unwrap();
        assert!(err.to_string().contains("multiline \"java\""), "{err}");
    }

    #[test]
    fn multiline_auto_joins_tracebacks_of_django_logs_only() {
        let config: TailConfig =
            toml::from_str("parser = \"django\"\nmultiline_timeout = \"500ms\"").unwrap();
        assert_eq!(config.effective_multiline(), "python");
        assert_eq!(config.multiline_timeout, Duration::from_millis(500));
        assert_eq!(TailConfig::default().effective_multiline(), "none");
        let config: TailConfig = toml::from_str("multiline = \"python\"").unwrap();
        assert_eq!(config.effective_multiline(), "python");
        let config: TailConfig =
            toml::from_str("parser = \"django\"\nmultiline = \"none\"").unwrap();
        assert_eq!(config.effective_multiline(), "none");
    }
}
