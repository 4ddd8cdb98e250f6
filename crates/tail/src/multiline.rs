//! Multi-line records: consecutive lines a [`LineJoiner`] says belong together (a Python
//! traceback) leave the tailer as one record, one event.
//!
//! The tailer holds the record being joined, per file, and sends it once a line arrives that
//! does not continue it, once it reaches `multiline_max_lines` or `multiline_max_bytes`, once
//! `multiline_timeout` passed without a new line, or once its file is finished. A record's
//! origin is the byte range of all its lines, so acknowledging it acknowledges them all; a held
//! record is never sent, so the checkpoint never moves past it, and after a restart its lines
//! are read and joined again.
//!
//! Where a record ends follows from the file's content, except for a cut by the timeout (the
//! next line had not been written yet). Such a cut is saved in the checkpoint before the record
//! is sent, and a restart that reads the record again ends it at the same place: the record
//! keeps its origin, so a store that deduplicates by origin never sees two versions of it.

use std::{sync::Arc, time::Duration};

/// Says which lines continue the record held (a stateful rule: one value follows one file).
pub trait LineJoiner: Send {
    /// Whether `line` continues the record held; `held` says whether one is held at all (after
    /// a cut nothing is). A line that does not continue starts a new record.
    fn continues(&mut self, line: &str, held: bool) -> bool;
}

impl<F: FnMut(&str, bool) -> bool + Send> LineJoiner for F {
    fn continues(&mut self, line: &str, held: bool) -> bool {
        self(line, held)
    }
}

/// Makes a fresh [`LineJoiner`] for each file a source follows.
pub type JoinerFactory = Arc<dyn Fn() -> Box<dyn LineJoiner> + Send + Sync>;

/// A source's joining rule and its bounds.
#[derive(Clone)]
pub(crate) struct Multiline {
    pub(crate) factory: JoinerFactory,
    pub(crate) max_lines: usize,
    pub(crate) max_bytes: usize,
    pub(crate) timeout: Duration,
}
