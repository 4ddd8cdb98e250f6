//! Severity levels, ordered from least to most urgent.
//!
//! The names follow syslog's so an operator can map them without a table; `notice` sits between
//! `info` and `warning` as in syslog, because seed 004's "notice" events need it.

use std::{fmt, str::FromStr};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How urgent an event is. Ordered: `Debug < Info < Notice < Warning < Error < Critical`.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    Serialize,
    Deserialize,
    JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Diagnostic detail.
    Debug,
    /// Routine information: a metric sample, an accepted login.
    #[default]
    Info,
    /// Normal but significant.
    Notice,
    /// Something an operator should look at.
    Warning,
    /// Something failed or an attack was detected.
    Error,
    /// Act now.
    Critical,
}

impl Severity {
    /// Every severity, in order.
    pub const ALL: [Severity; 6] = [
        Severity::Debug,
        Severity::Info,
        Severity::Notice,
        Severity::Warning,
        Severity::Error,
        Severity::Critical,
    ];

    /// The lowercase name used in JSON and configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Debug => "debug",
            Severity::Info => "info",
            Severity::Notice => "notice",
            Severity::Warning => "warning",
            Severity::Error => "error",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Severity {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.to_ascii_lowercase();
        let alias = match lower.as_str() {
            "warn" => "warning",
            "err" => "error",
            "crit" | "fatal" => "critical",
            other => other,
        };
        Severity::ALL.into_iter().find(|it| it.as_str() == alias).ok_or_else(|| {
            format!("unknown severity `{s}`, expected one of debug, info, notice, warning, error, critical")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordered_and_parsed_with_aliases() {
        assert!(Severity::Notice > Severity::Info && Severity::Notice < Severity::Warning);
        assert_eq!("WARN".parse::<Severity>().unwrap(), Severity::Warning);
        assert_eq!("crit".parse::<Severity>().unwrap(), Severity::Critical);
        assert!("loud".parse::<Severity>().unwrap_err().contains("expected one of"));
        assert_eq!(serde_json::to_string(&Severity::Notice).unwrap(), "\"notice\"");
    }
}
