//! The error tracer's state: analyses of error messages, recurring signatures and history.

use std::{
    collections::{BTreeMap, VecDeque},
    sync::{LazyLock, Mutex},
};

use chrono::{DateTime, TimeZone, Utc};
use regex::Regex;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use vigil_core::Enricher;
use vigil_event::{Event, Payload};

use super::categories::{self, Details, ErrorCategory};
use crate::bounded::BoundedMap;

/// `[tracers.error]`: categorise error messages, score them and track recurring ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ErrorTracerConfig {
    /// Run the tracer on log events that look like errors.
    pub enabled: bool,
    /// Most distinct error signatures tracked (the least recently seen are forgotten).
    pub max_signatures: usize,
    /// Hours of per-category history kept.
    pub history_hours: usize,
}

impl Default for ErrorTracerConfig {
    fn default() -> Self {
        ErrorTracerConfig { enabled: true, max_signatures: 2_000, history_hours: 48 }
    }
}

impl ErrorTracerConfig {
    /// The tracer, or `None` when disabled.
    pub fn build(&self) -> Option<ErrorTracer> {
        self.enabled.then(|| self.build_always())
    }

    /// The tracer whether enabled or not (`vigil errors`).
    pub fn build_always(&self) -> ErrorTracer {
        ErrorTracer::new(self.max_signatures.max(1), self.history_hours.max(1))
    }
}

/// What the tracer concluded about one error message.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ErrorAnalysis {
    /// The most specific category.
    pub category: ErrorCategory,
    /// Every category the text matches, most specific first.
    pub categories: Vec<ErrorCategory>,
    /// Severity 0–100: the level's base plus the category's weight.
    pub severity: u8,
    /// Extracted details.
    #[serde(flatten)]
    pub details: Details,
    /// Where the cause usually lies.
    pub hint: &'static str,
    /// What to do.
    pub suggestion: &'static str,
    /// The signature of recurring errors (hex).
    pub signature: String,
    /// The text the signature was made from.
    pub normalised: String,
}

/// Base severity of a level name.
fn level_base(level: Option<&str>) -> u8 {
    match level.map(str::to_ascii_lowercase).as_deref() {
        Some("emergency" | "emerg" | "alert" | "critical" | "crit" | "fatal" | "panic") => 75,
        Some("error" | "err") => 55,
        Some("warning" | "warn") => 35,
        Some("notice") => 20,
        Some("info" | "information") => 10,
        Some("debug" | "trace") => 5,
        _ => 45,
    }
}

/// Analyses `text` (a line or a joined traceback) at `level`; `None` when it is no error the
/// tracer knows.
pub fn analyse(text: &str, level: Option<&str>) -> Option<ErrorAnalysis> {
    let categories = categories::categories(text);
    let category = *categories.first()?;
    let details = categories::details(text);
    let severity = (u16::from(level_base(level)) + u16::from(category.weight())).min(100) as u8;
    let basis = match (&details.exception_type, &details.exception_message) {
        (Some(kind), Some(message)) => format!("{kind}: {message}"),
        _ => text.lines().next().unwrap_or_default().to_owned(),
    };
    let normalised = categories::normalise(&basis);
    let key = format!(
        "{}|{}|{}|{}",
        category.as_str(),
        details.exception_type.as_deref().unwrap_or_default(),
        details.function.as_deref().unwrap_or_default(),
        normalised
    );
    Some(ErrorAnalysis {
        category,
        categories,
        severity,
        details,
        hint: category.hint(),
        suggestion: category.suggestion(),
        signature: format!("{:016x}", fnv1a(key.as_bytes())),
        normalised,
    })
}

/// FNV-1a, 64 bits: a stable hash (signatures are compared across runs).
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// One recurring error.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Recurring {
    /// The signature.
    pub signature: String,
    /// Its category.
    pub category: ErrorCategory,
    /// The exception type, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exception_type: Option<String>,
    /// The normalised text.
    pub normalised: String,
    /// The first message seen with it (at most 512 bytes).
    pub example: String,
    /// Occurrences.
    pub count: u64,
    /// The highest severity seen.
    pub max_severity: u8,
    /// First occurrence (event time).
    pub first_seen: Option<DateTime<Utc>>,
    /// Last occurrence (event time).
    pub last_seen: Option<DateTime<Utc>>,
}

/// Errors per category in one hour.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HourBucket {
    /// The start of the hour.
    pub hour: DateTime<Utc>,
    /// Errors per category.
    pub counts: BTreeMap<&'static str, u64>,
}

#[derive(Debug)]
struct SignatureState {
    category: ErrorCategory,
    exception_type: Option<String>,
    normalised: String,
    example: String,
    count: u64,
    max_severity: u8,
    first_seen: i64,
    last_seen: i64,
}

#[derive(Debug)]
struct State {
    signatures: BoundedMap<String, SignatureState>,
    history: VecDeque<(i64, [u64; categories::ALL.len()])>,
    by_category: [u64; categories::ALL.len()],
}

/// The error tracer.
#[derive(Debug)]
pub struct ErrorTracer {
    history_hours: usize,
    state: Mutex<State>,
}

/// A cheap first test: words that every category's patterns contain one of.
static PREFILTER: LazyLock<Regex> = LazyLock::new(|| {
    regex::RegexBuilder::new(
        r"error|exception|traceback|fail|denied|refused|timed? ?out|unreachable|memory|oom|space left|segfault|segmentation|core dump|assert|deadlock|locked|too many|not enough|no such file|read-only|not permitted|resolve|quota|i/o",
    )
    .case_insensitive(true)
    .build()
    .expect("the prefilter is valid")
});

impl ErrorTracer {
    fn new(max_signatures: usize, history_hours: usize) -> ErrorTracer {
        ErrorTracer {
            history_hours,
            state: Mutex::new(State {
                signatures: BoundedMap::new(max_signatures),
                history: VecDeque::new(),
                by_category: [0; categories::ALL.len()],
            }),
        }
    }

    /// Analyses `text` at `level` and records it; returns the analysis and how often its
    /// signature has occurred so far.
    pub fn observe(
        &self,
        text: &str,
        level: Option<&str>,
        at: DateTime<Utc>,
    ) -> Option<(ErrorAnalysis, u64)> {
        if !PREFILTER.is_match(text) {
            return None;
        }
        let analysis = analyse(text, level)?;
        let now = at.timestamp();
        let mut state = self.state.lock().unwrap_or_else(|it| it.into_inner());
        let idx = categories::ALL.iter().position(|it| *it == analysis.category).unwrap_or(0);
        state.by_category[idx] += 1;
        let hour = now - now.rem_euclid(3600);
        match state.history.iter_mut().find(|(h, _)| *h == hour) {
            Some((_, counts)) => counts[idx] += 1,
            None => {
                let mut counts = [0; categories::ALL.len()];
                counts[idx] = 1;
                let at = state.history.partition_point(|(h, _)| *h < hour);
                state.history.insert(at, (hour, counts));
                while state.history.len() > self.history_hours {
                    state.history.pop_front();
                }
            }
        }
        let entry = state.signatures.entry(
            &analysis.signature,
            || SignatureState {
                category: analysis.category,
                exception_type: analysis.details.exception_type.clone(),
                normalised: analysis.normalised.clone(),
                example: text.chars().take(512).collect(),
                count: 0,
                max_severity: 0,
                first_seen: now,
                last_seen: now,
            },
            |_| false,
        );
        entry.count += 1;
        entry.max_severity = entry.max_severity.max(analysis.severity);
        entry.first_seen = entry.first_seen.min(now);
        entry.last_seen = entry.last_seen.max(now);
        let count = entry.count;
        Some((analysis, count))
    }

    /// Signatures seen at least `min_count` times, most frequent first.
    pub fn recurring(&self, min_count: u64) -> Vec<Recurring> {
        let state = self.state.lock().unwrap_or_else(|it| it.into_inner());
        let time = |secs: i64| Utc.timestamp_opt(secs, 0).single();
        let mut out: Vec<Recurring> = state
            .signatures
            .iter()
            .filter(|(_, it)| it.count >= min_count)
            .map(|(signature, it)| Recurring {
                signature: signature.clone(),
                category: it.category,
                exception_type: it.exception_type.clone(),
                normalised: it.normalised.clone(),
                example: it.example.clone(),
                count: it.count,
                max_severity: it.max_severity,
                first_seen: time(it.first_seen),
                last_seen: time(it.last_seen),
            })
            .collect();
        out.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.signature.cmp(&b.signature)));
        out
    }

    /// Errors per category since start.
    pub fn by_category(&self) -> BTreeMap<&'static str, u64> {
        let state = self.state.lock().unwrap_or_else(|it| it.into_inner());
        categories::ALL
            .iter()
            .zip(state.by_category)
            .filter(|(_, n)| *n > 0)
            .map(|(it, n)| (it.as_str(), n))
            .collect()
    }

    /// Errors per category per hour, oldest first (the last `history_hours` hours seen).
    pub fn history(&self) -> Vec<HourBucket> {
        let state = self.state.lock().unwrap_or_else(|it| it.into_inner());
        state
            .history
            .iter()
            .filter_map(|(hour, counts)| {
                Some(HourBucket {
                    hour: Utc.timestamp_opt(*hour, 0).single()?,
                    counts: categories::ALL
                        .iter()
                        .zip(counts)
                        .filter(|(_, n)| **n > 0)
                        .map(|(it, n)| (it.as_str(), *n))
                        .collect(),
                })
            })
            .collect()
    }

    /// Signatures tracked now and evicted since start.
    pub fn signature_stats(&self) -> (usize, u64) {
        let state = self.state.lock().unwrap_or_else(|it| it.into_inner());
        (state.signatures.len(), state.signatures.evictions())
    }
}

/// The trace's tracer name.
pub const ERROR_TRACER: &str = "error";

impl Enricher for ErrorTracer {
    fn name(&self) -> &str {
        ERROR_TRACER
    }

    /// Log events without a security action (or an application failure), at warning level or
    /// worse or without a level.
    fn wants(&self, event: &Event) -> bool {
        let Payload::Log(log) = &event.payload else { return false };
        let action_ok = log.action.as_deref().is_none_or(|it| it == "server_error");
        let level_ok = log.level.as_deref().is_none_or(|it| level_base(Some(it)) >= 35);
        action_ok && level_ok
    }

    fn enrich(&self, event: &mut Event, _extra: &mut Vec<Event>) {
        let Payload::Log(log) = &event.payload else { return };
        let at = log.timestamp.unwrap_or(event.timestamp);
        let Some((analysis, count)) = self.observe(&log.message, log.level.as_deref(), at) else {
            return;
        };
        let fields = &mut event.enrichment.fields;
        fields.insert("error_category".into(), analysis.category.as_str().into());
        fields.insert("error_severity".into(), analysis.severity.into());
        let mut found = serde_json::to_value(&analysis).unwrap_or_default();
        found["occurrences"] = count.into();
        crate::record(&mut event.enrichment, ERROR_TRACER, found);
    }
}
