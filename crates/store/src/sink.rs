//! The [`Sink`] trait: one storage destination, written in batches on a blocking thread.
//!
//! Every destination (SQLite and JSON files now; PostgreSQL, DuckDB and S3 later) implements
//! this small synchronous trait. The async side — batching, the flush timer, retries with
//! backoff, the bounded buffer and acknowledgement after commit — lives once in
//! [`StoreListener`](crate::StoreListener), which calls a sink only from a blocking thread. A
//! remote destination slots in by implementing `write_batch` (blocking I/O is fine there) and,
//! if it keeps a spool on disk, `flush`.

use std::sync::Arc;

use vigil_event::Event;

use crate::StoreError;

/// One storage destination.
pub trait Sink: Send + 'static {
    /// A stable name for logs and health, e.g. `sqlite` or `json_files.archive`.
    fn name(&self) -> &str;

    /// Writes a batch. When it returns `Ok`, every event of the batch is durable (committed,
    /// renamed into place): the listener then acknowledges the batch's lines to their source.
    /// On `Err` nothing of the batch may be taken as stored; the listener retries the whole
    /// batch later, so a write must be idempotent for lines (keyed by `stream` + `offset`) or
    /// all-or-nothing.
    fn write_batch(&mut self, events: &[Arc<Event>]) -> Result<(), StoreError>;

    /// Housekeeping that may run between batches (retention). It must do a bounded amount of
    /// work per call and return whether more is pending, so ingestion never waits long.
    fn maintain(&mut self) -> Result<bool, StoreError> {
        Ok(false)
    }
}
