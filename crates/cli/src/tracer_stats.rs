//! The tracers' statistics in `vigil run`, persisted for `vigil report`: the event tracer's
//! aggregates (by source, level, action, IP, user, service) and the error tracer's recurring
//! signatures, categories and history.
//!
//! The tracers are enrichers, not detectors, so the runtime does not save them. A small
//! detector, `tracers`, holds the same tracers the pipeline runs and hands their statistics to
//! the runtime as its state: saved like every detector's, every `health_check_interval` and at
//! shutdown, under `detector.tracers` in the state directory. It receives no events.
//!
//! The tracers start empty at each start; the state saved by the previous run is restored as a
//! baseline and every later save adds the current run's figures to it, so the report covers
//! every run since `since`. Merged counts stay bounded: the largest keys of each dimension, the
//! rest under `other`; recurring errors are those seen at least twice within one run.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use vigil_core::{ComponentError, Detector, DetectorContext, Filter, Statistics, event::Event};
use vigil_enrich::{error::ErrorTracer, event::EventTracer};

/// The detector's name, and its state key's suffix.
pub const NAME: &str = "tracers";

/// Keys kept per dimension of the event tracer's aggregates (the largest counts).
const TOP: usize = 20;

/// Recurring error signatures kept (the most frequent), each seen at least twice.
const RECURRING: usize = 50;

/// Signatures kept in the saved state (the most frequent, seen once or more), so that runs
/// add up: one occurrence in each of two runs is a recurring error.
const SIGNATURES: usize = 100;

/// A source name no event carries: the detector's subscription stays empty.
const NO_SOURCE: &str = "\u{0}tracers";

/// Hours of error history kept when runs are merged (the error tracer's default).
const HISTORY_HOURS: usize = 48;

/// Holds the tracers whose statistics it saves (see the module documentation).
pub struct TracerStats {
    event: Option<Arc<EventTracer>>,
    error: Option<Arc<ErrorTracer>>,
    since: DateTime<Utc>,
    /// What earlier runs saved.
    baseline: Option<Map<String, Value>>,
}

impl TracerStats {
    /// Saves the statistics of `event` and `error` (the enabled ones); `None` when neither is.
    pub fn new(event: Option<Arc<EventTracer>>, error: Option<Arc<ErrorTracer>>) -> Option<Self> {
        (event.is_some() || error.is_some()).then(|| TracerStats {
            event,
            error,
            since: Utc::now(),
            baseline: None,
        })
    }

    /// The subscription: no event.
    pub fn filter() -> Filter {
        Filter::any().source(NO_SOURCE)
    }

    /// The statistics: `since`, then `event` and `error` for the tracers that run, earlier
    /// runs' figures included.
    fn snapshot(&self) -> Statistics {
        let base = self.baseline.as_ref();
        let earlier = |key: &str| base.and_then(|it| it.get(key)).unwrap_or(&Value::Null);
        let since =
            earlier("since").as_str().map_or_else(|| self.since.to_rfc3339(), str::to_owned);
        let mut out = Statistics::new();
        out.insert("since".into(), since.into());
        if let Some(event) = &self.event {
            out.insert("event".into(), merge_event(earlier("event"), event.aggregates_json(TOP)));
        }
        if let Some(error) = &self.error {
            out.insert("error".into(), merge_error(earlier("error"), error_json(error)));
        }
        out
    }
}

/// The error tracer's signatures (most frequent first), errors per category, hourly history
/// and signature counters; `merge_error` derives `recurring`.
fn error_json(error: &ErrorTracer) -> Value {
    let signatures: Vec<Value> = error
        .recurring(1)
        .into_iter()
        .take(SIGNATURES)
        .map(|it| {
            json!({
                "signature": it.signature,
                "category": it.category,
                "exception_type": it.exception_type,
                "normalised": it.normalised,
                "count": it.count,
                "max_severity": it.max_severity,
                "first_seen": it.first_seen,
                "last_seen": it.last_seen,
            })
        })
        .collect();
    let (tracked, evicted) = error.signature_stats();
    json!({
        "signatures": signatures,
        "by_category": error.by_category(),
        "history": error.history(),
        "signatures_tracked": tracked,
        "signatures_evicted": evicted,
    })
}

/// The number at `value[key]`, 0 when absent.
fn count(value: &Value, key: &str) -> u64 {
    value.get(key).and_then(Value::as_u64).unwrap_or(0)
}

/// Two `{key: count}` maps added up, the `TOP` largest kept and the rest (with both `other`s)
/// under `other`.
fn merge_counts(earlier: &Value, now: &Value) -> Value {
    let mut sum: std::collections::BTreeMap<String, u64> = std::collections::BTreeMap::new();
    for map in [earlier, now].into_iter().filter_map(Value::as_object) {
        for (key, value) in map {
            *sum.entry(key.clone()).or_default() += value.as_u64().unwrap_or(0);
        }
    }
    let mut other = sum.remove("other").unwrap_or(0);
    let mut all: Vec<(String, u64)> = sum.into_iter().collect();
    all.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let mut out = Map::new();
    for (idx, (key, n)) in all.into_iter().enumerate() {
        if idx < TOP {
            out.insert(key, n.into());
        } else {
            other += n;
        }
    }
    if other > 0 {
        out.insert("other".into(), other.into());
    }
    Value::Object(out)
}

/// The event tracer's aggregates of earlier runs plus this run's.
fn merge_event(earlier: &Value, mut now: Value) -> Value {
    if !earlier.is_object() {
        return now;
    }
    now["events"] = (count(earlier, "events") + count(&now, "events")).into();
    for key in ["by_source", "by_level", "by_action", "by_ip", "by_user", "by_service"] {
        now[key] = merge_counts(&earlier[key], &now[key]);
    }
    now
}

/// The error tracer's statistics of earlier runs (if any) plus this run's: signatures added up
/// by signature, `recurring` the ones seen at least twice, categories and hourly history added
/// up.
fn merge_error(earlier: &Value, mut now: Value) -> Value {
    let mut recurring: Vec<Value> = Vec::new();
    let all = [&earlier["signatures"], &now["signatures"]];
    for it in all.into_iter().filter_map(Value::as_array).flatten() {
        let same = recurring.iter_mut().find(|seen| seen["signature"] == it["signature"]);
        let Some(seen) = same else {
            recurring.push(it.clone());
            continue;
        };
        seen["count"] = (count(seen, "count") + count(it, "count")).into();
        seen["max_severity"] = count(seen, "max_severity").max(count(it, "max_severity")).into();
        // RFC 3339 times in UTC compare as text.
        let text = |value: &Value, key: &str| value[key].as_str().map(str::to_owned);
        if let Some(first) = text(it, "first_seen")
            && text(seen, "first_seen").is_none_or(|it| first < it)
        {
            seen["first_seen"] = first.into();
        }
        if let Some(last) = text(it, "last_seen")
            && text(seen, "last_seen").is_none_or(|it| last > it)
        {
            seen["last_seen"] = last.into();
        }
    }
    recurring.sort_by(|a, b| {
        count(b, "count")
            .cmp(&count(a, "count"))
            .then_with(|| a["signature"].as_str().cmp(&b["signature"].as_str()))
    });
    recurring.truncate(SIGNATURES);
    now["recurring"] =
        recurring.iter().filter(|it| count(it, "count") >= 2).take(RECURRING).cloned().collect();
    now["signatures"] = recurring.into();
    now["by_category"] = merge_counts(&earlier["by_category"], &now["by_category"]);
    let mut hours: std::collections::BTreeMap<String, Value> = std::collections::BTreeMap::new();
    let all = [&earlier["history"], &now["history"]];
    for it in all.into_iter().filter_map(Value::as_array).flatten() {
        let Some(hour) = it["hour"].as_str() else { continue };
        let merged = match hours.get(hour) {
            Some(seen) => merge_counts(&seen["counts"], &it["counts"]),
            None => it["counts"].clone(),
        };
        hours.insert(hour.to_owned(), json!({ "hour": hour, "counts": merged }));
    }
    let skip = hours.len().saturating_sub(HISTORY_HOURS);
    now["history"] = hours.into_values().skip(skip).collect::<Vec<_>>().into();
    now["signatures_evicted"] =
        (count(earlier, "signatures_evicted") + count(&now, "signatures_evicted")).into();
    now
}

impl Detector for TracerStats {
    fn name(&self) -> &str {
        NAME
    }

    fn handle(&mut self, _event: &Event, _ctx: &mut DetectorContext) -> Result<(), ComponentError> {
        Ok(())
    }

    fn statistics(&self) -> Statistics {
        self.snapshot()
    }

    fn save_state(&self) -> Option<Value> {
        Some(Value::Object(self.snapshot().into_iter().collect()))
    }

    fn restore_state(&mut self, state: Value) -> Result<(), ComponentError> {
        match state {
            Value::Object(map) => {
                self.baseline = Some(map);
                Ok(())
            }
            _ => Err(ComponentError::msg("saved tracer statistics are not an object")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_core::event::{LogEvent, Payload};
    use vigil_enrich::{error::ErrorTracerConfig, event::EventTracerConfig};

    #[test]
    fn the_saved_state_holds_both_tracers_aggregates() {
        let event = Arc::new(EventTracerConfig::default().build_always());
        let error = Arc::new(ErrorTracerConfig::default().build_always());
        let stats = TracerStats::new(Some(event.clone()), Some(error.clone())).unwrap();
        for n in 0..3 {
            let log = LogEvent {
                action: Some("failed_password".into()),
                ip: Some("203.0.113.9".parse().unwrap()),
                user: Some("root".into()),
                ..LogEvent::new("sshd", format!("Failed password {n}"))
            };
            event.trace(&log, Utc::now());
            error.observe("connect() failed (111: Connection refused)", Some("error"), Utc::now());
        }
        let saved = stats.save_state().unwrap();
        assert_eq!(saved["event"]["events"], 3);
        assert_eq!(saved["event"]["by_ip"]["203.0.113.9"], 3);
        assert_eq!(saved["event"]["by_user"]["root"], 3);
        assert_eq!(saved["error"]["recurring"][0]["count"], 3, "{saved}");
        assert!(saved["error"]["recurring"][0]["signature"].is_string());
        assert!(!TracerStats::filter().matches(&Event::new(
            "h",
            "files.auth",
            Payload::Log(LogEvent::new("sshd", "m"))
        )));
        assert!(TracerStats::new(None, None).is_none());

        // The next run starts empty and adds to what the first one saved.
        let event = Arc::new(EventTracerConfig::default().build_always());
        let error = Arc::new(ErrorTracerConfig::default().build_always());
        let mut next = TracerStats::new(Some(event.clone()), Some(error.clone())).unwrap();
        next.restore_state(saved.clone()).unwrap();
        let log = LogEvent {
            ip: Some("198.51.100.1".parse().unwrap()),
            ..LogEvent::new("sshd", "Connection closed")
        };
        event.trace(&log, Utc::now());
        for _ in 0..2 {
            error.observe("connect() failed (111: Connection refused)", Some("error"), Utc::now());
        }
        let merged = next.save_state().unwrap();
        assert_eq!(merged["since"], saved["since"]);
        assert_eq!(merged["event"]["events"], 4);
        assert_eq!(merged["event"]["by_ip"]["203.0.113.9"], 3);
        assert_eq!(merged["event"]["by_ip"]["198.51.100.1"], 1);
        assert_eq!(merged["event"]["by_source"]["sshd"], 4);
        assert_eq!(merged["error"]["recurring"][0]["count"], 5, "{merged}");
        assert_eq!(merged["error"]["recurring"].as_array().unwrap().len(), 1);
        assert_eq!(merged["error"]["by_category"]["network_refused"], 5, "{merged}");
        assert!(next.restore_state(json!([1])).is_err());

        // Once in each of two runs is a recurring error.
        let first = Arc::new(ErrorTracerConfig::default().build_always());
        let message = "write failed: No space left on device";
        first.observe(message, Some("error"), Utc::now());
        let saved = TracerStats::new(None, Some(first)).unwrap().save_state().unwrap();
        assert_eq!(saved["error"]["recurring"], json!([]));
        let second = Arc::new(ErrorTracerConfig::default().build_always());
        second.observe(message, Some("error"), Utc::now());
        let mut stats = TracerStats::new(None, Some(second)).unwrap();
        stats.restore_state(saved).unwrap();
        let merged = stats.save_state().unwrap();
        assert_eq!(merged["error"]["recurring"][0]["count"], 2, "{merged}");
        assert_eq!(merged["error"]["recurring"][0]["category"], "disk_full", "{merged}");
    }
}
