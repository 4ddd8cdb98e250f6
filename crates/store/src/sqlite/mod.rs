//! The SQLite store: the embedded default destination (cargo feature `sqlite`).
//!
//! - `schema.rs`: tables and migrations (user documentation: `docs/schema.md`);
//! - `store.rs`: [`SqliteStore`], batched idempotent writes and incremental retention — also the
//!   library API for back-filling (`vigil replay --store`);
//! - `query.rs`: [`ReadOnlyDb`] for `vigil query` and `vigil db info`;
//! - `state.rs`: [`SqliteStateStore`], detector state in the database;
//! - `config.rs`: `[stores.sqlite]`;
//! - here: [`SqliteSink`], the [`Sink`] the store listener drives.

mod config;
mod query;
mod schema;
mod state;
mod store;
#[cfg(test)]
mod tests;

use std::{path::PathBuf, sync::Arc};

pub use config::{SqliteConfig, Synchronous};
pub use query::{DbInfo, ReadOnlyDb, SqlValue, TableInfo};
pub use schema::SCHEMA_VERSION;
pub use state::SqliteStateStore;
pub use store::{PruneReport, Retention, SqliteOptions, SqliteStore, WriteStats};
use vigil_event::Event;

use crate::{Sink, StoreError};

/// The [`Sink`] over a [`SqliteStore`], opened lazily: a database that another process holds
/// locked at start is opened on the first write that gets through.
#[derive(Debug)]
pub struct SqliteSink {
    path: PathBuf,
    options: SqliteOptions,
    store: Option<SqliteStore>,
}

impl SqliteSink {
    /// A sink writing to `path`. Opens the database now unless it is locked; any other failure
    /// (a directory that cannot be created, a newer schema) is returned.
    pub fn new(path: PathBuf, options: SqliteOptions) -> Result<SqliteSink, StoreError> {
        let store = match SqliteStore::open_with(&path, options.clone()) {
            Ok(it) => Some(it),
            Err(StoreError::Locked { .. }) => {
                tracing::warn!(path = %path.display(), "Database locked; opening it later");
                None
            }
            Err(err) => return Err(err),
        };
        Ok(SqliteSink { path, options, store })
    }

    fn store(&mut self) -> Result<&mut SqliteStore, StoreError> {
        if self.store.is_none() {
            self.store = Some(SqliteStore::open_with(&self.path, self.options.clone())?);
        }
        Ok(self.store.as_mut().expect("opened above"))
    }
}

impl Sink for SqliteSink {
    fn name(&self) -> &str {
        "sqlite"
    }

    fn write_batch(&mut self, events: &[Arc<Event>]) -> Result<(), StoreError> {
        let stats = self.store()?.write(events)?;
        if stats.duplicates > 0 {
            tracing::debug!(
                duplicates = stats.duplicates,
                "Skipped lines already stored (read again after a restart)"
            );
        }
        Ok(())
    }

    fn maintain(&mut self) -> Result<bool, StoreError> {
        let retention = &self.options.retention;
        if retention.max_age.is_none() && retention.max_bytes.is_none() {
            return Ok(false);
        }
        let step = self.store()?.prune_step(chrono::Utc::now())?;
        if step.rows > 0 {
            tracing::debug!(rows = step.rows, done = step.done, "Pruned old rows");
        }
        Ok(!step.done)
    }
}
