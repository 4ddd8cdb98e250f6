//! The event envelope: one typed, versioned record for everything that flows through Vigil.
//!
//! A host collector's metric sample, a parsed log line, a detector's finding and an audit row all
//! travel as the same [`Event`]: an id, a timestamp, the host and the source that produced it, a
//! [`Severity`], a typed [`Payload`] (whose variant is the event's [`EventKind`]) and an
//! [`Enrichment`] block that tracers fill on the way to the detectors.
//!
//! The envelope is a deliberate serialisation boundary: stores, the fleet bus and users' scripts
//! read it as JSON, so its shape is a contract. [`SCHEMA_VERSION`] is written into every event;
//! fields are only ever added (readers ignore unknown fields), and a change that is not an addition
//! bumps the version. `docs/specs/event.md` spells out the rules.
//!
//! This crate has no I/O and no async runtime: it is safe to depend on from anywhere.
//!
//! ```
//! use vigil_event::{Event, LogEvent, Payload, Severity};
//!
//! let line = LogEvent::new("sshd", "Failed password for root from 203.0.113.9 port 22 ssh2");
//! let event = Event::new("web-1", "auth_log", Payload::Log(line)).with_severity(Severity::Warning);
//! let json = serde_json::to_string(&event).unwrap();
//! let back: Event = serde_json::from_str(&json).unwrap();
//! assert_eq!(back, event);
//! assert_eq!(back.kind().as_str(), "log");
//! ```

#![deny(missing_docs)]

mod audit;
mod ban;
mod envelope;
mod field;
mod fields;
mod finding;
mod kind;
mod payload;
mod severity;
mod summary;
mod trace;

pub use audit::{AuditError, AuditRecord, AuditSchema};
pub use ban::{Ban, BanStage, Evidence};
pub use envelope::{Event, EventId, SCHEMA_VERSION};
pub use field::FieldValue;
pub use fields::FieldMap;
pub use finding::{Finding, FindingLevel};
pub use kind::{EventKind, EventKindSet};
pub use payload::{
    AgentStatus, ApiRecord, ComponentStatus, ConnectionInfo, DiskIo, DiskUsage, InterfaceStats,
    LineOrigin, LogEvent, NetworkMetrics, Payload, ProcessEvent, ProcessInfo, ProcessPhase,
    SystemMetrics,
};
pub use severity::Severity;
pub use summary::one_line;
pub use trace::{
    Causality, Enrichment, EventFinding, ExhaustionTrigger, Fields, Found, IpFinding, Trace,
    TracerRecord, TracerRecords,
};

/// Free-form structured values carried in findings, audit rows and enrichment blocks.
pub type Value = serde_json::Value;
/// An ordered map of named values.
pub type Map = std::collections::BTreeMap<String, Value>;
