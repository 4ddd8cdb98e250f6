//! Vigil's embedded storage: where events end up so that users can ask questions in SQL.
//!
//! # Model
//!
//! A destination implements the small blocking [`Sink`] trait (`write_batch`, `maintain`).
//! The runtime sees each destination as a [`StoreListener`], which batches events (`batch_size`,
//! `flush_interval`), writes them on a blocking thread, retries a failed destination with
//! exponential backoff while buffering up to `max_buffered_events`, and — only once a batch is
//! committed — acknowledges its tailed lines through an [`AckGate`] to the tail source, whose
//! checkpoint then moves past them. Several destinations run at once; a line is acknowledged
//! when all of them have it.
//!
//! Destinations, one module and one cargo feature each:
//!
//! - `sqlite` (default): [`sqlite::SqliteStore`], WAL, typed tables for events, findings, bans
//!   with their evidence, one table per audit type, detector state and checkpoints, schema
//!   migrations and incremental retention; [`sqlite::ReadOnlyDb`] for `vigil query`. A line is
//!   stored once per `stream` + `offset` (a unique index and `INSERT OR IGNORE`), so lines read
//!   again after `kill -9` are not duplicated.
//! - `json-files`: [`json_files::JsonFilesSink`], documents `{data, metadata}` or JSON lines
//!   at templated paths (`%TAG %TENANCY %UUID %YYYY %MM %DD %hh %mm %ss`), written to a
//!   temporary name and renamed.
//!
//! PostgreSQL, DuckDB and S3 implement the same trait later.
//!
//! ```no_run
//! use vigil_event::{Event, LogEvent, Payload};
//! use vigil_store::sqlite::SqliteStore;
//!
//! let mut store = SqliteStore::open("/tmp/vigil.db")?;
//! let event = Event::new("web-1", "files.auth", Payload::Log(LogEvent::new("sshd", "hello")));
//! store.write(&[event])?;
//! # Ok::<(), vigil_store::StoreError>(())
//! ```

#![deny(missing_docs)]
// Without a destination only the shared pipeline is built; its helpers then have no user.
#![cfg_attr(not(any(feature = "sqlite", feature = "json-files")), allow(dead_code))]

mod error;
#[cfg(feature = "json-files")]
pub mod json_files;
mod pipeline;
mod sink;
#[cfg(feature = "sqlite")]
pub mod sqlite;

pub use error::StoreError;
pub use pipeline::{
    AckGate, AckSlot, Acknowledge, BatchSettings, PassThrough, StoreListener, StoreStats,
};
pub use sink::Sink;
