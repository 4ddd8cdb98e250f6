//! The [`Event`] envelope and its identifier.

use std::{fmt, sync::Arc};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{Enrichment, EventKind, Payload, Severity};

/// Version of the envelope's JSON shape. Written into every event; bumped only by a change that
/// is not a pure addition (see `docs/specs/event.md`).
pub const SCHEMA_VERSION: u32 = 1;

/// A unique, time-ordered event identifier (UUID version 7).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventId(Uuid);

impl EventId {
    /// A fresh identifier; identifiers made later sort after earlier ones.
    pub fn new() -> EventId {
        EventId(Uuid::now_v7())
    }

    /// The identifier as a UUID.
    pub fn as_uuid(&self) -> &Uuid {
        &self.0
    }
}

impl Default for EventId {
    fn default() -> Self {
        EventId::new()
    }
}

impl fmt::Debug for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EventId({})", self.0)
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// One event: the envelope every source, detector and listener exchanges.
///
/// In JSON the payload's kind and content sit beside the envelope fields:
/// `{"schema_version":1,"id":…,"timestamp":…,"host":…,"source":…,"severity":…,"kind":"log","payload":{…}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Version of this JSON shape.
    #[serde(default = "default_schema_version")]
    pub schema_version: u32,
    /// Unique identifier.
    pub id: EventId,
    /// When the event was made (or, for a log line, when it was read).
    pub timestamp: DateTime<Utc>,
    /// The host it is about.
    pub host: Arc<str>,
    /// The component that produced it (a source, a detector).
    pub source: Arc<str>,
    /// How urgent it is.
    pub severity: Severity,
    /// Kind and typed content.
    #[serde(flatten)]
    pub payload: Payload,
    /// Context added by tracers.
    #[serde(default, skip_serializing_if = "Enrichment::is_empty")]
    pub enrichment: Enrichment,
}

fn default_schema_version() -> u32 {
    SCHEMA_VERSION
}

impl Event {
    /// A new event stamped now, with a fresh id and the payload's default severity
    /// (a finding's level, `info` otherwise).
    pub fn new(host: impl Into<Arc<str>>, source: impl Into<Arc<str>>, payload: Payload) -> Event {
        let severity = match &payload {
            Payload::Finding(finding) => finding.level.severity(),
            _ => Severity::Info,
        };
        Event {
            schema_version: SCHEMA_VERSION,
            id: EventId::new(),
            timestamp: Utc::now(),
            host: host.into(),
            source: source.into(),
            severity,
            payload,
            enrichment: Enrichment::default(),
        }
    }

    /// The same event with another severity.
    #[must_use]
    pub fn with_severity(mut self, severity: Severity) -> Event {
        self.severity = severity;
        self
    }

    /// The same event with another timestamp.
    #[must_use]
    pub fn with_timestamp(mut self, timestamp: DateTime<Utc>) -> Event {
        self.timestamp = timestamp;
        self
    }

    /// The kind of the payload.
    #[inline]
    pub fn kind(&self) -> EventKind {
        self.payload.kind()
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr, SocketAddr};

    use super::*;
    use crate::*;

    fn round_trip(event: &Event) -> serde_json::Value {
        let json = serde_json::to_string(event).unwrap();
        let back: Event = serde_json::from_str(&json).unwrap();
        assert_eq!(&back, event, "round trip changed the event: {json}");
        serde_json::from_str(&json).unwrap()
    }

    #[test]
    fn every_kind_round_trips_through_json() {
        let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)), 22);
        let logins = AuditSchema { name: "logins", fields: &["user", "count"] };
        let mut enriched = Event::new(
            "h",
            "auth",
            Payload::Log(LogEvent {
                action: Some("failed_password".into()),
                ip: Some(addr.ip()),
                user: Some("root".into()),
                port: Some(4242),
                origin: Some(LineOrigin { stream: "file:1:2:ab".into(), offset: 10, end: 42 }),
                ..LogEvent::new("sshd", "Failed password for root")
            }),
        );
        enriched.enrichment.fields.insert("ip_class".into(), "public".into());
        enriched.enrichment.record("ip", serde_json::json!({"score": 40}));
        let payloads = vec![
            Payload::SystemMetric(SystemMetrics {
                cpu_percent: Some(12.5),
                per_cpu_percent: vec![10.0, 15.0],
                load: Some([0.1, 0.2, 0.3]),
                disks: vec![DiskUsage {
                    mount: "/".into(),
                    fs: "ext4".into(),
                    total_bytes: 10,
                    available_bytes: 5,
                    ..DiskUsage::default()
                }],
                ..SystemMetrics::default()
            }),
            Payload::NetworkMetric(NetworkMetrics {
                interfaces: vec![InterfaceStats {
                    name: "eth0".into(),
                    rx_bytes: 9,
                    ..Default::default()
                }],
                tcp_states: [("ESTABLISHED".to_owned(), 3)].into_iter().collect(),
                listening_ports: vec![22],
                ..NetworkMetrics::default()
            }),
            Payload::Process(ProcessEvent {
                phase: ProcessPhase::Start,
                process: ProcessInfo { pid: 42, name: Some("sshd".into()), ..Default::default() },
            }),
            Payload::Connection(ConnectionInfo {
                protocol: "tcp".into(),
                local: addr,
                remote: "[2001:db8::1]:51000".parse().unwrap(),
                state: "ESTABLISHED".into(),
                inode: Some(1),
                pid: Some(42),
                process_name: Some("sshd".into()),
            }),
            Payload::Finding(
                Finding::new(FindingLevel::Error, "SSHLoginTriesExceeded", "sshd", "too many")
                    .with_data("count", 6)
                    .with_record("raw line"),
            ),
            Payload::Audit(
                logins.record([("user", Value::from("root")), ("count", 1.into())]).unwrap(),
            ),
            Payload::ApiRecord(ApiRecord {
                collector: "okta".into(),
                tag: "okta_users".into(),
                record: serde_json::json!({"id": "00u1"}),
            }),
            Payload::AgentStatus(AgentStatus {
                version: "0.1.0".into(),
                components: vec![ComponentStatus { name: "report".into(), ..Default::default() }],
                ..Default::default()
            }),
            Payload::Ban(Ban {
                failures: 5,
                evidence: Evidence {
                    rule: "jail sshd: maxretry 5 within findtime 600s".into(),
                    count: 5,
                    window_seconds: 600,
                    lines: vec!["Failed password for root from 203.0.113.9".into()],
                    ..Default::default()
                },
                ..Ban::request("203.0.113.9", "sshd", Utc::now())
            }),
        ];
        let mut seen = EventKindSet::EMPTY;
        for payload in payloads {
            let event = Event::new("h", "src", payload);
            seen.insert(event.kind());
            let json = round_trip(&event);
            assert_eq!(json["kind"], event.kind().as_str());
            assert_eq!(json["schema_version"], SCHEMA_VERSION);
        }
        let json = round_trip(&enriched);
        assert_eq!(json["payload"]["ip"], "192.0.2.7");
        assert_eq!(json["payload"]["origin"]["offset"], 10);
        assert_eq!(json["enrichment"]["trace"]["tracers"][0]["tracer"], "ip");
        seen.insert(enriched.kind());
        assert_eq!(seen, EventKindSet::all(), "a kind is missing from the round-trip test");
    }

    #[test]
    fn findings_take_their_severity_from_their_level_and_ids_are_time_ordered() {
        let finding = Finding::new(FindingLevel::Warning, "X", "sys", "s");
        assert_eq!(Event::new("h", "d", Payload::Finding(finding)).severity, Severity::Warning);
        let a = EventId::new();
        let b = EventId::new();
        assert!(a < b);
    }

    #[test]
    fn readers_ignore_unknown_fields_and_default_the_version() {
        let json = r#"{"id":"0190a5e0-0000-7000-8000-000000000000","timestamp":"2026-01-01T00:00:00Z",
            "host":"h","source":"s","severity":"info","kind":"log","payload":{"message":"m","future":1},
            "future_envelope_field":true}"#;
        let event: Event = serde_json::from_str(json).unwrap();
        assert_eq!(event.schema_version, SCHEMA_VERSION);
        assert_eq!(event.kind(), EventKind::Log);
    }
}
