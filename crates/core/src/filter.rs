//! Subscription filters: which events a detector, listener or subscriber receives.
//!
//! A filter is given when a component registers (seed 004's wish: "listeners register criteria
//! for event filtering at instantiation time") and is evaluated on every publish, so it is a
//! plain conjunction of cheap tests: kind (a bit test), source, minimum severity, field
//! equalities and correlation keys (pid, IP address). An empty filter matches everything.

use std::{collections::BTreeMap, net::IpAddr};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use vigil_event::{Event, EventKind, EventKindSet, Severity};

/// A conjunction of conditions on an event. Every condition left empty matches any event.
///
/// ```
/// use vigil_core::Filter;
/// use vigil_core::event::{Event, EventKind, LogEvent, Payload, Severity};
///
/// let filter = Filter::any().kinds([EventKind::Log]).field_eq("action", "failed_password");
/// let log = LogEvent { action: Some("failed_password".into()), ..LogEvent::new("sshd", "m") };
/// assert!(filter.matches(&Event::new("h", "auth", Payload::Log(log))));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Filter {
    /// Event kinds to accept (`log`, `finding`, `audit`, `system_metric`, …); empty accepts all.
    #[serde(skip_serializing_if = "EventKindSet::is_empty")]
    #[schemars(example = ["log", "finding"])]
    pub kinds: EventKindSet,
    /// Source names to accept; empty accepts all.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schemars(example = ["auth_log"])]
    pub sources: Vec<String>,
    /// Lowest severity to accept.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(example = &"warning")]
    pub min_severity: Option<Severity>,
    /// Fields that must equal the given text (`action = "failed_password"`, `user = "root"`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(example = example_fields())]
    pub fields: BTreeMap<String, String>,
    /// Correlation: accept only events about one of these process ids.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schemars(example = [1234])]
    pub pids: Vec<u32>,
    /// Correlation: accept only events about one of these IP addresses.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schemars(example = ["203.0.113.9", "2001:db8::1"])]
    pub ips: Vec<IpAddr>,
}

fn example_fields() -> BTreeMap<String, String> {
    [("action".to_owned(), "failed_password".to_owned())].into_iter().collect()
}

impl Filter {
    /// The filter that matches every event.
    pub fn any() -> Filter {
        Filter::default()
    }

    /// The default filter of a detector: every kind except findings and audit records, so
    /// detectors consume what sources collect and never their own output.
    pub fn source_events() -> Filter {
        let kinds = EventKindSet::all()
            .without(EventKind::Finding)
            .without(EventKind::Audit)
            .without(EventKind::Ban);
        Filter { kinds, ..Filter::default() }
    }

    /// Accepts only these kinds.
    #[must_use]
    pub fn kinds(mut self, kinds: impl IntoIterator<Item = EventKind>) -> Filter {
        self.kinds = kinds.into_iter().collect();
        self
    }

    /// Accepts only this source (call again to accept several).
    #[must_use]
    pub fn source(mut self, source: impl Into<String>) -> Filter {
        self.sources.push(source.into());
        self
    }

    /// Accepts only events at least this severe.
    #[must_use]
    pub fn min_severity(mut self, severity: Severity) -> Filter {
        self.min_severity = Some(severity);
        self
    }

    /// Accepts only events whose field `name` equals `value`.
    #[must_use]
    pub fn field_eq(mut self, name: impl Into<String>, value: impl Into<String>) -> Filter {
        self.fields.insert(name.into(), value.into());
        self
    }

    /// Accepts only events about this process id (call again to accept several).
    #[must_use]
    pub fn pid(mut self, pid: u32) -> Filter {
        self.pids.push(pid);
        self
    }

    /// Accepts only events about this IP address (call again to accept several).
    #[must_use]
    pub fn ip(mut self, ip: IpAddr) -> Filter {
        self.ips.push(ip);
        self
    }

    /// Whether the filter accepts every event.
    pub fn is_any(&self) -> bool {
        self == &Filter::default()
    }

    /// Whether `event` passes every condition.
    #[inline]
    pub fn matches(&self, event: &Event) -> bool {
        (self.kinds.is_empty() || self.kinds.contains(event.kind()))
            && self.min_severity.is_none_or(|min| event.severity >= min)
            && (self.sources.is_empty() || self.sources.iter().any(|it| **it == *event.source))
            && (self.pids.is_empty() || event.pid().is_some_and(|pid| self.pids.contains(&pid)))
            && (self.ips.is_empty() || event.ip().is_some_and(|ip| self.ips.contains(&ip)))
            && self.fields.iter().all(|(name, expected)| {
                event.field(name).is_some_and(|value| value.matches(expected))
            })
    }
}

#[cfg(test)]
mod tests {
    use vigil_event::{Finding, FindingLevel, LogEvent, Payload, ProcessEvent, ProcessInfo};

    use super::*;

    fn log(source: &str, action: &str, ip: &str, severity: Severity) -> Event {
        let log = LogEvent {
            action: Some(action.into()),
            ip: Some(ip.parse().unwrap()),
            ..LogEvent::new("sshd", "m")
        };
        Event::new("h", source, Payload::Log(log)).with_severity(severity)
    }

    #[test]
    fn each_condition_narrows_and_they_combine() {
        let failed = log("auth", "failed_password", "192.0.2.1", Severity::Warning);
        let accepted = log("auth", "accepted_password", "192.0.2.2", Severity::Info);
        let other = log("web", "failed_password", "192.0.2.1", Severity::Error);
        let process = Event::new(
            "h",
            "proc",
            Payload::Process(ProcessEvent {
                phase: vigil_event::ProcessPhase::Start,
                process: ProcessInfo { pid: 7, ..Default::default() },
            }),
        );
        let finding = Event::new(
            "h",
            "sshd",
            Payload::Finding(Finding::new(FindingLevel::Error, "X", "sshd", "s")),
        );
        let all = [&failed, &accepted, &other, &process, &finding];
        let hits = |filter: &Filter| all.iter().filter(|it| filter.matches(it)).count();

        assert_eq!(hits(&Filter::any()), 5);
        assert_eq!(hits(&Filter::any().kinds([EventKind::Log])), 3);
        assert_eq!(hits(&Filter::source_events()), 4);
        assert_eq!(hits(&Filter::any().source("auth")), 2);
        assert_eq!(hits(&Filter::any().source("auth").source("proc")), 3);
        assert_eq!(hits(&Filter::any().min_severity(Severity::Warning)), 3);
        assert_eq!(hits(&Filter::any().field_eq("action", "failed_password")), 2);
        assert_eq!(hits(&Filter::any().pid(7)), 1);
        assert_eq!(hits(&Filter::any().ip("192.0.2.1".parse().unwrap())), 2);
        let narrow = Filter::any()
            .source("auth")
            .field_eq("action", "failed_password")
            .min_severity(Severity::Warning);
        assert!(narrow.matches(&failed) && hits(&narrow) == 1);
    }

    #[test]
    fn filters_read_from_config_reject_unknown_keys() {
        let filter: Filter =
            serde_json::from_str(r#"{"kinds":["log"],"fields":{"user":"root"},"pids":[1]}"#)
                .unwrap();
        assert_eq!(filter, Filter::any().kinds([EventKind::Log]).field_eq("user", "root").pid(1));
        let err = serde_json::from_str::<Filter>(r#"{"kind":["log"]}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field `kind`"), "{err}");
    }
}
