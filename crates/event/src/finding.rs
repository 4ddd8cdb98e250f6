//! Findings: what a detector concluded (seed 004's error, warning and notice events).

use serde::{Deserialize, Serialize};

use crate::{Map, Severity, Value};

/// The class of a finding, as seed 004 names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingLevel {
    /// Informational: something noteworthy happened.
    Notice,
    /// Someone should look.
    Warning,
    /// Something failed or an attack crossed a threshold.
    Error,
}

impl FindingLevel {
    /// The envelope severity a finding of this level carries by default.
    pub fn severity(self) -> Severity {
        match self {
            FindingLevel::Notice => Severity::Notice,
            FindingLevel::Warning => Severity::Warning,
            FindingLevel::Error => Severity::Error,
        }
    }
}

/// A detector's conclusion: a named finding with a summary, key/value data, the original record
/// and the system it came from, and optionally a message rendered from a template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Error, warning or notice.
    pub level: FindingLevel,
    /// A stable name users filter on, e.g. `SSHLoginTriesExceeded`.
    pub name: String,
    /// One line for humans.
    pub summary: String,
    /// Key/value evidence.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub data: Map,
    /// The original record (a raw log line, when there was one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<String>,
    /// The system the finding is about (`sshd`, `nginx`, the detector's source).
    pub system: String,
    /// A message rendered from a template, when one is configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The rule, window, count and lines behind the conclusion, when the detector keeps them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<crate::Evidence>,
}

impl Finding {
    /// A finding with no data, record or message.
    pub fn new(
        level: FindingLevel,
        name: impl Into<String>,
        system: impl Into<String>,
        summary: impl Into<String>,
    ) -> Finding {
        Finding {
            level,
            name: name.into(),
            summary: summary.into(),
            data: Map::new(),
            record: None,
            system: system.into(),
            message: None,
            evidence: None,
        }
    }

    /// Adds one key/value pair of evidence.
    #[must_use]
    pub fn with_data(mut self, key: impl Into<String>, value: impl Into<Value>) -> Finding {
        self.data.insert(key.into(), value.into());
        self
    }

    /// Attaches the original record.
    #[must_use]
    pub fn with_record(mut self, record: impl Into<String>) -> Finding {
        self.record = Some(record.into());
        self
    }

    /// Attaches the evidence behind the finding.
    #[must_use]
    pub fn with_evidence(mut self, evidence: crate::Evidence) -> Finding {
        self.evidence = Some(evidence);
        self
    }
}
