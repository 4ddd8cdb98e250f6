//! Telemetry: what the tailer reports about itself (house style rule 8).
//!
//! Every noteworthy thing the tailer does goes through [`Telemetry::emit`], which updates the
//! counters behind [`TailStats`], writes one tracing record, and hands the event to an optional
//! [`TailTelemetry`] sink — the hook through which a metrics exporter can observe the tailer
//! without this crate depending on a metrics library.

use std::{
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

/// How a watched file was replaced or emptied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotationKind {
    /// The path now names another file (renamed away, or deleted and created again).
    Replaced,
    /// The path's file disappeared.
    Removed,
    /// The file was truncated or rewritten in place (copy-and-truncate, inode reuse).
    Truncated,
}

/// One thing the tailer did, as seen by a [`TailTelemetry`] sink.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum TailEvent<'a> {
    /// A file started being watched.
    FileAdded {
        /// Its path.
        path: &'a Path,
    },
    /// A watched file was rotated.
    Rotated {
        /// The watched path.
        path: &'a Path,
        /// How.
        kind: RotationKind,
    },
    /// A file was read to its end and every line acknowledged; it is no longer watched.
    FileFinished {
        /// The path it was watched at.
        path: &'a Path,
    },
    /// Lines were read.
    LinesRead {
        /// The path.
        path: &'a Path,
        /// How many lines.
        lines: u64,
        /// How many bytes, newlines included.
        bytes: u64,
    },
    /// A line longer than the maximum was cut.
    LineTruncated {
        /// The path.
        path: &'a Path,
        /// The line's offset.
        offset: u64,
        /// Its full length in bytes.
        len: u64,
    },
    /// A line was not valid UTF-8 and was kept with replacement characters.
    InvalidUtf8 {
        /// The path.
        path: &'a Path,
        /// The line's offset.
        offset: u64,
    },
    /// Lines that could not be read any more (a file truncated before it was read, with no
    /// rotated copy to read them from).
    BytesLost {
        /// The path.
        path: &'a Path,
        /// How many bytes at least.
        bytes: u64,
    },
    /// Reading or writing failed; the source keeps running.
    Error {
        /// What failed.
        error: &'a crate::TailError,
    },
}

/// A sink for the tailer's telemetry (a metrics exporter, a test).
pub trait TailTelemetry: Send + Sync {
    /// Observes one event.
    fn emit(&self, event: &TailEvent<'_>);
}

/// A snapshot of a tail source's counters since it was built.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TailStats {
    /// Lines read.
    pub lines_read: u64,
    /// Bytes read, newlines included.
    pub bytes_read: u64,
    /// Lines cut to the maximum length.
    pub lines_truncated: u64,
    /// Lines that were not valid UTF-8.
    pub lines_invalid_utf8: u64,
    /// Rotations detected.
    pub rotations: u64,
    /// Bytes that could not be read (truncated away before they were read).
    pub bytes_lost: u64,
    /// Read, open or checkpoint errors.
    pub errors: u64,
    /// Files being watched now (rotated files still being finished included).
    pub files_watched: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    lines_read: AtomicU64,
    bytes_read: AtomicU64,
    lines_truncated: AtomicU64,
    lines_invalid_utf8: AtomicU64,
    rotations: AtomicU64,
    bytes_lost: AtomicU64,
    errors: AtomicU64,
    pub(crate) files_watched: AtomicU64,
}

impl Counters {
    pub(crate) fn snapshot(&self) -> TailStats {
        let get = |it: &AtomicU64| it.load(Ordering::Relaxed);
        TailStats {
            lines_read: get(&self.lines_read),
            bytes_read: get(&self.bytes_read),
            lines_truncated: get(&self.lines_truncated),
            lines_invalid_utf8: get(&self.lines_invalid_utf8),
            rotations: get(&self.rotations),
            bytes_lost: get(&self.bytes_lost),
            errors: get(&self.errors),
            files_watched: get(&self.files_watched),
        }
    }
}

/// Counters, tracing and the optional sink, behind one `emit`.
#[derive(Clone)]
pub(crate) struct Telemetry {
    pub(crate) source: Arc<str>,
    pub(crate) counters: Arc<Counters>,
    pub(crate) sink: Option<Arc<dyn TailTelemetry>>,
}

impl Telemetry {
    pub(crate) fn emit(&self, event: &TailEvent<'_>) {
        let c = &self.counters;
        let add = |it: &AtomicU64, n: u64| it.fetch_add(n, Ordering::Relaxed);
        let source = &*self.source;
        match *event {
            TailEvent::FileAdded { path } => {
                tracing::info!(source, path = %path.display(), "Watching file");
            }
            TailEvent::Rotated { path, kind } => {
                add(&c.rotations, 1);
                tracing::info!(source, path = %path.display(), kind = ?kind, "File rotated");
            }
            TailEvent::FileFinished { path } => {
                tracing::debug!(source, path = %path.display(), "Finished rotated file");
            }
            TailEvent::LinesRead { lines, bytes, .. } => {
                add(&c.lines_read, lines);
                add(&c.bytes_read, bytes);
            }
            TailEvent::LineTruncated { path, offset, len } => {
                add(&c.lines_truncated, 1);
                tracing::warn!(source, path = %path.display(), offset, len, "Truncated a long line");
            }
            TailEvent::InvalidUtf8 { path, offset } => {
                add(&c.lines_invalid_utf8, 1);
                tracing::debug!(source, path = %path.display(), offset, "Line is not valid UTF-8");
            }
            TailEvent::BytesLost { path, bytes } => {
                add(&c.bytes_lost, bytes);
                tracing::warn!(
                    source,
                    path = %path.display(),
                    bytes,
                    "File was truncated before it was read and no rotated copy was found"
                );
            }
            TailEvent::Error { error } => {
                add(&c.errors, 1);
                tracing::warn!(source, error = %error, "Tailing problem");
            }
        }
        if let Some(sink) = &self.sink {
            sink.emit(event);
        }
    }
}
