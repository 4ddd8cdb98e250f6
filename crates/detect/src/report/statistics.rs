//! The Report detector's counters, how they are reported and how they persist across restarts.
//!
//! # State format
//!
//! [`ReportStatistics::save`] writes one JSON object, which the runtime's state store keeps under
//! the detector's name and hands back on the next start:
//!
//! ```json
//! {
//!   "version": 1,
//!   "statistics": {
//!     "records": 3,
//!     "first_seen": "2026-01-01T00:00:00Z",
//!     "last_seen": "2026-01-01T00:05:00Z",
//!     "by_kind": { "counts": { "log": 3 }, "other": 0 },
//!     "by_source": { "counts": { "auth_log": 3 }, "other": 0 },
//!     "by_system": { "counts": { "sshd": 3 }, "other": 0 },
//!     "by_severity": { "counts": { "info": 3 }, "other": 0 },
//!     "by_action": { "counts": { "failed_password": 2 }, "other": 0 }
//!   }
//! }
//! ```
//!
//! `version` is bumped by any change that is not the addition of a field with a default; readers
//! ignore fields they do not know. A state of another version, or one that does not parse, is
//! rejected with an error and the detector keeps its current counters. Restored counters are brought within the distinct-key
//! limit, so a hand-edited state cannot break the memory bound.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use vigil_core::{ComponentError, Statistics};
use vigil_event::{Event, Payload, Value};

use crate::bounded::BoundedCounts;

/// The version of the state format written by [`ReportStatistics::save`].
const STATE_VERSION: u32 = 1;

/// Overall statistics of the records the Report detector has seen.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(super) struct ReportStatistics {
    records: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    first_seen: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_seen: Option<DateTime<Utc>>,
    #[serde(default)]
    by_kind: BoundedCounts,
    #[serde(default)]
    by_source: BoundedCounts,
    #[serde(default)]
    by_system: BoundedCounts,
    #[serde(default)]
    by_severity: BoundedCounts,
    #[serde(default)]
    by_action: BoundedCounts,
}

/// The saved state, as written: the statistics with a format version.
#[derive(Serialize)]
struct SavedStateRef<'a> {
    version: u32,
    statistics: &'a ReportStatistics,
}

/// The saved state, as read back.
#[derive(Deserialize)]
struct SavedState {
    statistics: ReportStatistics,
}

impl ReportStatistics {
    /// Counts one record, which the detector reports as coming from `system`.
    pub(super) fn record(&mut self, event: &Event, system: &str, max_keys: usize) {
        self.records = self.records.saturating_add(1);
        let at = event.timestamp;
        self.first_seen = Some(self.first_seen.map_or(at, |it| it.min(at)));
        self.last_seen = Some(self.last_seen.map_or(at, |it| it.max(at)));
        self.by_kind.add(event.kind().as_str(), max_keys);
        self.by_source.add(&event.source, max_keys);
        self.by_system.add(system, max_keys);
        self.by_severity.add(event.severity.as_str(), max_keys);
        if let Payload::Log(log) = &event.payload
            && let Some(action) = &log.action
        {
            self.by_action.add(action, max_keys);
        }
    }

    /// The largest number of distinct keys in any one dimension.
    #[cfg(test)]
    pub(super) fn max_n_keys(&self) -> usize {
        [&self.by_kind, &self.by_source, &self.by_system, &self.by_severity, &self.by_action]
            .into_iter()
            .map(BoundedCounts::n_keys)
            .max()
            .unwrap_or(0)
    }

    /// The statistics as the detector reports them.
    pub(super) fn report(&self) -> Statistics {
        let mut stats = Statistics::new();
        stats.insert("records".to_owned(), self.records.into());
        if let Some(at) = self.first_seen {
            stats.insert("first_seen".to_owned(), at.to_rfc3339().into());
        }
        if let Some(at) = self.last_seen {
            stats.insert("last_seen".to_owned(), at.to_rfc3339().into());
        }
        stats.insert("by_kind".to_owned(), self.by_kind.to_value());
        stats.insert("by_source".to_owned(), self.by_source.to_value());
        stats.insert("by_system".to_owned(), self.by_system.to_value());
        stats.insert("by_severity".to_owned(), self.by_severity.to_value());
        stats.insert("by_action".to_owned(), self.by_action.to_value());
        stats
    }

    /// The state to persist (see the module docs for its format).
    pub(super) fn save(&self) -> Value {
        let state = SavedStateRef { version: STATE_VERSION, statistics: self };
        // Serialising plain counters, strings and timestamps cannot fail; a null state would
        // only make the next start begin from zero.
        serde_json::to_value(state).unwrap_or(Value::Null)
    }

    /// Statistics read back from a saved state, brought within `max_keys` per dimension.
    pub(super) fn restore(
        state: Value,
        max_keys: usize,
    ) -> Result<ReportStatistics, ComponentError> {
        let version = state.get("version").and_then(Value::as_u64);
        if version != Some(u64::from(STATE_VERSION)) {
            let found = version.map_or_else(|| "none".to_owned(), |it| it.to_string());
            return Err(ComponentError::msg(format!(
                "invalid report state: expected version {STATE_VERSION}, found {found}"
            )));
        }
        let saved: SavedState = serde_json::from_value(state)
            .map_err(|err| ComponentError::msg(format!("invalid report state: {err}")))?;
        let mut statistics = saved.statistics;
        for counts in [
            &mut statistics.by_kind,
            &mut statistics.by_source,
            &mut statistics.by_system,
            &mut statistics.by_severity,
            &mut statistics.by_action,
        ] {
            counts.enforce_limits(max_keys);
        }
        Ok(statistics)
    }
}
