//! Vigil's enrichment tracers: the stage between collection and detection (SPEC §4, seed 001),
//! and trigger-driven analysis chains (SPEC §1, seed 003).
//!
//! Each tracer implements [`vigil_core::Enricher`]: the runtime applies the registered tracers to
//! every source event before the bus shares it, so detectors and listeners see the context and
//! the trace block (which tracers ran, when, what each found). Tracers are also plain libraries
//! for the CLI (`vigil ip`, `vigil ips`, `vigil errors`), which feed them parsed log lines.
//!
//! - [`ip`]: address classes, per-address activity, an explained 0–100 threat score, the
//!   block-list (handed to the ban manager as ban requests), subnet patterns, sweeps and the
//!   reputation export. State is bounded ([`BoundedMap`]).
//! - [`event`]: related services, a severity score, causality chains and aggregates.
//! - [`error`]: error categories, details, severity, hints and suggestions, recurring signatures,
//!   history, and the multi-line joiner for Python tracebacks.
//! - [`network`] and [`process`]: the host's sockets and processes involved in an event, read
//!   with vigil-collect's collectors.
//! - [`trigger`]: configured conditions that request a deeper analysis (hash an executable,
//!   snapshot a process tree, trace an IP) under priorities, a rate limit and a concurrency limit.

#![deny(missing_docs)]

mod bounded;
mod config;
pub mod error;
pub mod event;
pub mod ip;
pub mod network;
pub mod process;
pub mod trigger;

pub use bounded::BoundedMap;
pub use config::TracersConfig;

/// Appends `tracer`'s record to the trace of `enrichment`. The clock is read once per event:
/// records after the first share the trace's `traced_at` (tracers of one pass run within
/// microseconds of each other), which keeps enrichment cheap on the publish path.
pub fn record(
    enrichment: &mut vigil_event::Enrichment,
    tracer: &'static str,
    found: impl Into<vigil_event::Found>,
) {
    record_at(enrichment, tracer, found, now);
}

/// [`record`], with `clock` telling the time when `enrichment` has no trace yet (a batch reads
/// the clock once for all its events: they are traced within a fraction of a millisecond).
pub fn record_at(
    enrichment: &mut vigil_event::Enrichment,
    tracer: &'static str,
    found: impl Into<vigil_event::Found>,
    clock: impl FnOnce() -> chrono::DateTime<chrono::Utc>,
) {
    let trace = enrichment.trace.get_or_insert_with(|| vigil_event::Trace {
        traced_at: clock(),
        // The built-in chain is the IP and event tracers: both records are held inline.
        tracers: vigil_event::TracerRecords::new(),
    });
    let at = trace.traced_at;
    trace.tracers.push(vigil_event::TracerRecord {
        tracer: std::borrow::Cow::Borrowed(tracer),
        at,
        found: found.into(),
    });
}

/// The current time, as `chrono::Utc::now()` reads it. Turning a clock reading into a calendar
/// date costs more than reading the clock, so each thread keeps the date of its last reading and
/// only computes the time of day while the day is the same.
pub(crate) fn now() -> chrono::DateTime<chrono::Utc> {
    use std::{
        cell::Cell,
        time::{SystemTime, UNIX_EPOCH},
    };

    use chrono::{NaiveDate, NaiveTime, Utc};

    thread_local! {
        static DAY: Cell<Option<(i64, NaiveDate)>> = const { Cell::new(None) };
    }
    let Ok(since) = SystemTime::now().duration_since(UNIX_EPOCH) else { return Utc::now() };
    let Ok(secs) = i64::try_from(since.as_secs()) else { return Utc::now() };
    let (day, second) = (secs.div_euclid(86_400), secs.rem_euclid(86_400) as u32);
    let date = DAY.with(|cache| match cache.get() {
        Some((cached, date)) if cached == day => Some(date),
        _ => {
            let date = chrono::DateTime::from_timestamp(day * 86_400, 0)?.date_naive();
            cache.set(Some((day, date)));
            Some(date)
        }
    });
    let time = NaiveTime::from_num_seconds_from_midnight_opt(second, since.subsec_nanos());
    match (date, time) {
        (Some(date), Some(time)) => date.and_time(time).and_utc(),
        _ => Utc::now(),
    }
}

/// What can go wrong building or running a tracer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EnrichError {
    /// A configuration value is invalid.
    #[error("{0}")]
    Config(String),
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_cached_clock_reads_the_same_time_as_chrono() {
        for _ in 0..3 {
            let before = chrono::Utc::now();
            let now = super::now();
            let after = chrono::Utc::now();
            assert!(before <= now && now <= after, "{before} <= {now} <= {after}");
        }
    }
}
