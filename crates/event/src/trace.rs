//! The enrichment block: what tracers added to an event on its way to the detectors.
//!
//! Every tracer that runs appends one [`TracerRecord`] (its name, when it ran, what it found), so
//! an operator can always see which tracers looked at an event and why a score is what it is.
//!
//! Enrichment runs on the publish path of every event, so the block is cheap to build: field
//! names and tracer names are `Cow<'static, str>` (no allocation for names known in advance), and
//! the built-in IP and event tracers record typed findings ([`IpFinding`], [`EventFinding`]) that
//! serialise to exactly the JSON objects they always wrote. Any other tracer records JSON
//! ([`Found::Json`]).

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Value;

/// The named values of an enrichment block, sorted by name (as they are written in JSON): a
/// [`FieldMap`](crate::FieldMap), a small sorted vector (it was a `BTreeMap`, whose first node alone is a 1 KiB
/// allocation per enriched event).
pub type Fields = crate::FieldMap;

/// Context added after collection: free-form fields plus the trace of tracers that ran.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Enrichment {
    /// Named values added by tracers or configuration (`ip_class`, `threat_score`, …).
    #[serde(skip_serializing_if = "Fields::is_empty")]
    pub fields: Fields,
    /// Which tracers ran, when, and what each found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace: Option<Trace>,
}

impl Enrichment {
    /// Whether nothing was added.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty() && self.trace.is_none()
    }

    /// Records that `tracer` ran and found `found` (JSON, or a typed [`Found`]).
    pub fn record(&mut self, tracer: impl Into<Cow<'static, str>>, found: impl Into<Found>) {
        let now = Utc::now();
        let trace = self
            .trace
            .get_or_insert_with(|| Trace { traced_at: now, tracers: TracerRecords::new() });
        trace.tracers.push(TracerRecord { tracer: tracer.into(), at: now, found: found.into() });
    }
}

/// The trace block of an enriched event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trace {
    /// When tracing began.
    pub traced_at: DateTime<Utc>,
    /// One record per tracer that ran, in order.
    pub tracers: TracerRecords,
}

impl Trace {
    /// Names of the tracers that ran.
    pub fn tracers_used(&self) -> impl Iterator<Item = &str> {
        self.tracers.iter().map(|it| it.tracer.as_ref())
    }
}

/// The records of a trace, in order: a vector that holds its first two records inline.
///
/// The built-in chain (the IP and event tracers) records two per event, on the publish path of
/// every event: held inline, they cost no allocation and no free. (A `Vec` of them was one
/// allocation per event, and the allocator's slow path: a batch's 512 traces outlive its
/// thread cache.) It reads as a slice (`len`, `iter`, indexing, `for … in &trace.tracers`),
/// and serialises as the same JSON array.
#[derive(Clone, Default, PartialEq)]
pub struct TracerRecords(smallvec::SmallVec<[TracerRecord; 2]>);

impl TracerRecords {
    /// No records (allocates nothing).
    pub fn new() -> TracerRecords {
        TracerRecords(smallvec::SmallVec::new())
    }

    /// No records, with room for `capacity` (allocates only beyond two).
    pub fn with_capacity(capacity: usize) -> TracerRecords {
        TracerRecords(smallvec::SmallVec::with_capacity(capacity))
    }

    /// Appends a record.
    pub fn push(&mut self, record: TracerRecord) {
        self.0.push(record);
    }

    /// Removes the last record.
    pub fn pop(&mut self) -> Option<TracerRecord> {
        self.0.pop()
    }

    /// Removes every record.
    pub fn clear(&mut self) {
        self.0.clear();
    }

    /// Keeps the first `len` records.
    pub fn truncate(&mut self, len: usize) {
        self.0.truncate(len);
    }

    /// Keeps the records `keep` accepts.
    pub fn retain(&mut self, keep: impl FnMut(&mut TracerRecord) -> bool) {
        self.0.retain(keep);
    }

    /// The records as a vector.
    pub fn into_vec(self) -> Vec<TracerRecord> {
        self.0.into_vec()
    }
}

impl std::ops::Deref for TracerRecords {
    type Target = [TracerRecord];

    fn deref(&self) -> &[TracerRecord] {
        &self.0
    }
}

impl std::ops::DerefMut for TracerRecords {
    fn deref_mut(&mut self) -> &mut [TracerRecord] {
        &mut self.0
    }
}

impl std::fmt::Debug for TracerRecords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl From<Vec<TracerRecord>> for TracerRecords {
    fn from(records: Vec<TracerRecord>) -> TracerRecords {
        TracerRecords(smallvec::SmallVec::from_vec(records))
    }
}

impl From<TracerRecords> for Vec<TracerRecord> {
    fn from(records: TracerRecords) -> Vec<TracerRecord> {
        records.into_vec()
    }
}

impl FromIterator<TracerRecord> for TracerRecords {
    fn from_iter<I: IntoIterator<Item = TracerRecord>>(iter: I) -> TracerRecords {
        TracerRecords(iter.into_iter().collect())
    }
}

impl Extend<TracerRecord> for TracerRecords {
    fn extend<I: IntoIterator<Item = TracerRecord>>(&mut self, iter: I) {
        self.0.extend(iter);
    }
}

impl IntoIterator for TracerRecords {
    type Item = TracerRecord;
    type IntoIter = std::vec::IntoIter<TracerRecord>;

    fn into_iter(self) -> Self::IntoIter {
        self.into_vec().into_iter()
    }
}

impl<'a> IntoIterator for &'a TracerRecords {
    type Item = &'a TracerRecord;
    type IntoIter = std::slice::Iter<'a, TracerRecord>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl<'a> IntoIterator for &'a mut TracerRecords {
    type Item = &'a mut TracerRecord;
    type IntoIter = std::slice::IterMut<'a, TracerRecord>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter_mut()
    }
}

impl Serialize for TracerRecords {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for TracerRecords {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<TracerRecords, D::Error> {
        Vec::<TracerRecord>::deserialize(deserializer).map(TracerRecords::from)
    }
}

/// What one tracer found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TracerRecord {
    /// Tracer name (`ip`, `process`, `error`, …).
    pub tracer: Cow<'static, str>,
    /// When it ran.
    pub at: DateTime<Utc>,
    /// What it found.
    pub found: Found,
}

/// What a tracer found: always a JSON object in the event's JSON.
///
/// The built-in IP and event tracers record typed findings, cheap to build on the publish path;
/// every other tracer records JSON. A record read back from JSON is always [`Found::Json`], and
/// two values are equal when their JSON is, whatever their variants.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Found {
    /// The IP tracer's finding.
    Ip(IpFinding),
    /// The event tracer's finding.
    Event(EventFinding),
    /// Any other tracer's finding (and every finding read back from JSON).
    Json(Value),
}

impl Found {
    /// The finding as JSON (the object the event's JSON holds).
    pub fn to_value(&self) -> Value {
        match self {
            Found::Json(it) => it.clone(),
            // Typed findings hold only strings, numbers, times and options: they always convert.
            other => serde_json::to_value(other).unwrap_or(Value::Null),
        }
    }

    /// The JSON, when the finding is held as JSON.
    pub fn as_json(&self) -> Option<&Value> {
        match self {
            Found::Json(it) => Some(it),
            _ => None,
        }
    }
}

impl PartialEq for Found {
    fn eq(&self, other: &Found) -> bool {
        match (self, other) {
            (Found::Ip(a), Found::Ip(b)) => a == b,
            (Found::Event(a), Found::Event(b)) => a == b,
            (Found::Json(a), Found::Json(b)) => a == b,
            _ => self.to_value() == other.to_value(),
        }
    }
}

impl Serialize for Found {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Found::Ip(it) => it.serialize(serializer),
            Found::Event(it) => it.serialize(serializer),
            Found::Json(it) => it.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for Found {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Found, D::Error> {
        Value::deserialize(deserializer).map(Found::Json)
    }
}

impl From<Value> for Found {
    fn from(value: Value) -> Found {
        Found::Json(value)
    }
}

impl From<IpFinding> for Found {
    fn from(value: IpFinding) -> Found {
        Found::Ip(value)
    }
}

impl From<EventFinding> for Found {
    fn from(value: EventFinding) -> Found {
        Found::Event(value)
    }
}

fn is_false(it: &bool) -> bool {
    !*it
}

/// What the IP tracer found: `{"class", "score", "blocklisted"}` (`blocklisted` only when true).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IpFinding {
    /// The address's class (`localhost`, `private`, `cloud`, `public`).
    pub class: Cow<'static, str>,
    /// Its threat score, 0–100.
    pub score: u8,
    /// Whether it is block-listed.
    #[serde(skip_serializing_if = "is_false")]
    pub blocklisted: bool,
}

/// What the event tracer found: `{"service", "related", "severity_score", "causality"}`
/// (`causality` only when a chain applies).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventFinding {
    /// The service the event is about (`sshd`, `nginx`, …).
    pub service: Cow<'static, str>,
    /// Related services, comma-separated.
    pub related: Cow<'static, str>,
    /// Severity score, 0–100.
    pub severity_score: u8,
    /// The causality chain the event belongs to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub causality: Option<Causality>,
}

/// A causality chain found by the event tracer, written with its name in `chain`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "chain", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Causality {
    /// A failed login, with its probable cause and the failures from the address in the window.
    AuthenticationFailure {
        /// The probable cause (`wrong password`, `unknown user name`, …).
        cause: Cow<'static, str>,
        /// Failures from the address within the window, this one included.
        failures_in_window: u32,
    },
    /// A ban, with the failures that led to it.
    FailedLoginsToBan {
        /// Failures from the address within the window before the ban.
        failures: u32,
        /// The first of them (`null` when none).
        first_failure: Option<DateTime<Utc>>,
        /// The last of them (`null` when none).
        last_failure: Option<DateTime<Utc>>,
    },
    /// Memory or disk exhaustion.
    ResourceExhaustion {
        /// `memory` or `disk`.
        kind: Cow<'static, str>,
        /// The process killed, when named (`null` otherwise).
        victim: Option<String>,
    },
    /// A refused or timed-out connection, with the exhaustion that probably caused it.
    ConnectionFailure {
        /// `refused` or `timeout`.
        failure: Cow<'static, str>,
        /// The recent exhaustion (`null` when none).
        trigger: Option<Box<ExhaustionTrigger>>,
    },
}

/// The exhaustion that probably caused a connection failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExhaustionTrigger {
    /// `memory` or `disk`.
    pub kind: Cow<'static, str>,
    /// The service that reported it.
    pub service: String,
    /// The process killed, when named.
    pub victim: Option<String>,
    /// When.
    pub at: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_held_inline_or_not_write_and_read_the_json_of_a_vector() {
        let at: DateTime<Utc> = "2026-11-23T10:00:00Z".parse().unwrap();
        let record = |n: u8| TracerRecord {
            tracer: if n.is_multiple_of(2) { "ip".into() } else { Cow::Owned(format!("t{n}")) },
            at,
            found: match n % 3 {
                0 => Found::Ip(IpFinding { class: "public".into(), score: n, blocklisted: n > 3 }),
                1 => Found::Event(EventFinding {
                    service: "sshd".into(),
                    related: "fail2ban,firewall,pam".into(),
                    severity_score: n,
                    causality: None,
                }),
                _ => Found::Json(serde_json::json!({"n": n})),
            },
        };
        for len in 0..6u8 {
            let vec: Vec<TracerRecord> = (0..len).map(record).collect();
            let mut pushed = TracerRecords::new();
            for it in vec.iter().cloned() {
                pushed.push(it);
            }
            let trace = Trace { traced_at: at, tracers: pushed.clone() };
            let json = serde_json::to_string(&trace).unwrap();
            let expected = format!(
                r#"{{"traced_at":"2026-11-23T10:00:00Z","tracers":{}}}"#,
                serde_json::to_string(&vec).unwrap()
            );
            assert_eq!(json, expected, "{len} records");
            let back: Trace = serde_json::from_str(&json).unwrap();
            assert_eq!(back.tracers, pushed);
            assert_eq!(format!("{pushed:?}"), format!("{vec:?}"));
            assert_eq!(pushed.len(), vec.len());
            assert!(pushed.iter().zip(&vec).all(|(a, b)| a == b), "same order");
            assert_eq!(TracerRecords::from(vec.clone()), pushed);
            assert_eq!(pushed.clone().into_vec(), vec);
            assert_eq!(pushed.clone().into_iter().collect::<Vec<_>>(), vec);
            assert_eq!(trace.tracers_used().count(), usize::from(len));
        }
        let mut records: TracerRecords = (0..5).map(record).collect();
        records.retain(|it| it.tracer == "ip");
        assert_eq!(records.len(), 3);
        records.truncate(1);
        assert_eq!(records.pop().map(|it| it.tracer), Some("ip".into()));
        records.extend([record(1)]);
        records.clear();
        assert!(records.is_empty());
    }

    #[test]
    fn typed_findings_write_the_same_json_as_their_objects_and_compare_by_json() {
        let ip = Found::Ip(IpFinding { class: "public".into(), score: 70, blocklisted: true });
        let json = serde_json::json!({"class": "public", "score": 70, "blocklisted": true});
        assert_eq!(ip.to_value(), json);
        assert_eq!(ip, Found::Json(json));
        let calm = Found::Ip(IpFinding { class: "private".into(), score: 0, blocklisted: false });
        assert_eq!(serde_json::to_string(&calm).unwrap(), r#"{"class":"private","score":0}"#);
        let at: DateTime<Utc> = "2026-11-23T10:00:00Z".parse().unwrap();
        let event = Found::Event(EventFinding {
            service: "nginx".into(),
            related: "django".into(),
            severity_score: 15,
            causality: Some(Causality::ConnectionFailure {
                failure: "refused".into(),
                trigger: Some(Box::new(ExhaustionTrigger {
                    kind: "memory".into(),
                    service: "kernel".into(),
                    victim: None,
                    at: Some(at),
                })),
            }),
        });
        assert_eq!(
            serde_json::to_string(&event).unwrap(),
            concat!(
                r#"{"service":"nginx","related":"django","severity_score":15,"causality":{"#,
                r#""chain":"connection_failure","failure":"refused","trigger":{"kind":"memory","#,
                r#""service":"kernel","victim":null,"at":"2026-11-23T10:00:00Z"}}}"#
            )
        );
        let back: Found = serde_json::from_str(&serde_json::to_string(&event).unwrap()).unwrap();
        assert!(back.as_json().is_some(), "read back as JSON");
        assert_eq!(back, event);
        assert_ne!(back, calm);
    }
}
