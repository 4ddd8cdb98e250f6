//! Event kinds: the name of each [`Payload`](crate::Payload) variant, and a compact set of them.
//!
//! Filters test an event's kind on every publish, so [`EventKindSet`] is a bit set: a membership
//! test is one AND.

use std::{fmt, str::FromStr};

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What an event is about. Each kind has exactly one payload type.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventKind {
    /// Host resources: CPU, memory, swap, disks, load.
    SystemMetric,
    /// Network interfaces and TCP states.
    NetworkMetric,
    /// A process snapshot, start or exit.
    Process,
    /// One socket: addresses, state and owning process.
    Connection,
    /// One parsed log line.
    Log,
    /// A detector's conclusion: error, warning or notice.
    Finding,
    /// A record with a declared, guaranteed list of fields.
    Audit,
    /// One record pulled from a security tool's API.
    ApiRecord,
    /// The agent's own health, emitted periodically.
    AgentStatus,
    /// A ban requested, decided, refused or lifted, with its evidence.
    Ban,
}

impl EventKind {
    /// Every kind, in declaration order.
    pub const ALL: [EventKind; 10] = [
        EventKind::SystemMetric,
        EventKind::NetworkMetric,
        EventKind::Process,
        EventKind::Connection,
        EventKind::Log,
        EventKind::Finding,
        EventKind::Audit,
        EventKind::ApiRecord,
        EventKind::AgentStatus,
        EventKind::Ban,
    ];

    /// The snake_case name used in JSON and configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::SystemMetric => "system_metric",
            EventKind::NetworkMetric => "network_metric",
            EventKind::Process => "process",
            EventKind::Connection => "connection",
            EventKind::Log => "log",
            EventKind::Finding => "finding",
            EventKind::Audit => "audit",
            EventKind::ApiRecord => "api_record",
            EventKind::AgentStatus => "agent_status",
            EventKind::Ban => "ban",
        }
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EventKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EventKind::ALL.into_iter().find(|it| it.as_str() == s).ok_or_else(|| {
            let names: Vec<&str> = EventKind::ALL.iter().map(|it| it.as_str()).collect();
            format!("unknown event kind `{s}`, expected one of {}", names.join(", "))
        })
    }
}

/// A set of [`EventKind`]s. Serialised as a list of kind names.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct EventKindSet(u16);

impl EventKindSet {
    /// The empty set.
    pub const EMPTY: EventKindSet = EventKindSet(0);

    /// Every kind.
    pub fn all() -> EventKindSet {
        EventKind::ALL.into_iter().collect()
    }

    /// Whether `kind` is in the set.
    #[inline]
    pub fn contains(self, kind: EventKind) -> bool {
        self.0 & kind.bit() != 0
    }

    /// Adds `kind` to the set.
    pub fn insert(&mut self, kind: EventKind) {
        self.0 |= kind.bit();
    }

    /// The set without `kind`.
    #[must_use]
    pub fn without(self, kind: EventKind) -> EventKindSet {
        EventKindSet(self.0 & !kind.bit())
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }

    /// The kinds in the set, in declaration order.
    pub fn iter(self) -> impl Iterator<Item = EventKind> {
        EventKind::ALL.into_iter().filter(move |it| self.contains(*it))
    }
}

impl FromIterator<EventKind> for EventKindSet {
    fn from_iter<I: IntoIterator<Item = EventKind>>(iter: I) -> Self {
        let mut set = EventKindSet::EMPTY;
        for kind in iter {
            set.insert(kind);
        }
        set
    }
}

impl fmt::Debug for EventKindSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl Serialize for EventKindSet {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for EventKindSet {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Vec::<EventKind>::deserialize(deserializer)?.into_iter().collect())
    }
}

impl JsonSchema for EventKindSet {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "EventKindSet".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        <Vec<EventKind>>::json_schema(generator)
    }

    fn inline_schema() -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_membership_and_serde() {
        let set: EventKindSet = [EventKind::Log, EventKind::Finding].into_iter().collect();
        assert!(set.contains(EventKind::Log) && !set.contains(EventKind::Audit));
        assert_eq!(serde_json::to_string(&set).unwrap(), r#"["log","finding"]"#);
        let back: EventKindSet = serde_json::from_str(r#"["finding","log"]"#).unwrap();
        assert_eq!(back, set);
        assert!(!EventKindSet::all().without(EventKind::Audit).contains(EventKind::Audit));
        assert_eq!(EventKindSet::all().iter().count(), EventKind::ALL.len());
        for kind in EventKind::ALL {
            assert_eq!(kind.as_str().parse::<EventKind>().unwrap(), kind);
            assert_eq!(serde_json::to_string(&kind).unwrap(), format!("\"{kind}\""));
        }
    }
}
