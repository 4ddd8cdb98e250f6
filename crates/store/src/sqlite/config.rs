//! Configuration of the SQLite store: the raw, serde-facing half of its two-phase config.
//!
//! `[stores.sqlite]` deserialises into [`SqliteConfig`]; [`SqliteConfig::build`] returns the
//! [`StoreListener`](crate::StoreListener) writing to the database. The field docs here become
//! the generated example config.
//!
//! ```toml
//! [stores.sqlite]
//! path = "/var/lib/vigil/vigil.db"
//! batch_size = 1000
//! flush_interval = "1s"
//! retention_age = "30days"
//! retention_max_bytes = 1073741824
//! ```

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use vigil_core::Filter;

use super::{Retention, SqliteOptions, SqliteSink};
use crate::{BatchSettings, StoreError, StoreListener, pipeline::check_batching};

/// When a commit reaches the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Synchronous {
    /// Committed data survives a crash of the agent (`kill -9`); a power cut may lose the last
    /// commits (which are then read again from the logs, since their lines were acknowledged).
    Normal,
    /// Every commit is on disk before the lines are acknowledged: survives a power cut too, at
    /// the cost of one fsync per batch.
    #[default]
    Full,
}

impl Synchronous {
    pub(crate) fn pragma(self) -> &'static str {
        match self {
            Synchronous::Normal => "NORMAL",
            Synchronous::Full => "FULL",
        }
    }
}

/// The embedded SQLite database: every event the agent handles, queryable with
/// `vigil query "SQL"`. On by default; nothing to install.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct SqliteConfig {
    /// Whether events are stored in the database.
    pub enabled: bool,
    /// The database file. Unset: `vigil.db` in the agent's state directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(example = &"/var/lib/vigil/vigil.db")]
    pub path: Option<PathBuf>,
    /// Which events to store; by default every event.
    pub filter: Filter,
    /// Events written in one transaction.
    pub batch_size: usize,
    /// Longest time an event waits before it is written.
    #[serde(with = "vigil_core::duration")]
    #[schemars(with = "String")]
    pub flush_interval: Duration,
    /// Most events kept in memory while the database cannot be written (locked, disk full);
    /// beyond it the agent waits for the database and sources are held back.
    pub max_buffered_events: usize,
    /// How long a write waits for another process's lock before it is retried later.
    #[serde(with = "vigil_core::duration")]
    #[schemars(with = "String")]
    pub busy_timeout: Duration,
    /// When commits reach the disk: `full` (survives a power cut) or `normal` (survives a crash
    /// of the agent; faster).
    pub synchronous: Synchronous,
    /// Rows older than this are removed, a few thousand at a time; `0s` keeps everything.
    #[serde(with = "vigil_core::duration")]
    #[schemars(with = "String")]
    pub retention_age: Duration,
    /// The oldest events are removed while the database uses more than this many bytes; `0`
    /// sets no limit.
    pub retention_max_bytes: u64,
    /// How often retention is checked.
    #[serde(with = "vigil_core::duration")]
    #[schemars(with = "String")]
    pub prune_interval: Duration,
}

impl Default for SqliteConfig {
    fn default() -> Self {
        SqliteConfig {
            enabled: true,
            path: None,
            filter: Filter::any(),
            batch_size: 1_000,
            flush_interval: Duration::from_secs(1),
            max_buffered_events: 100_000,
            busy_timeout: Duration::from_secs(1),
            synchronous: Synchronous::Full,
            retention_age: Duration::from_secs(30 * 24 * 3600),
            retention_max_bytes: 1 << 30,
            prune_interval: Duration::from_secs(60),
        }
    }
}

impl SqliteConfig {
    /// The database file, given the agent's state directory.
    pub fn path(&self, state_dir: &Path) -> PathBuf {
        self.path.clone().unwrap_or_else(|| state_dir.join("vigil.db"))
    }

    /// The retention policy.
    pub fn retention(&self) -> Retention {
        Retention {
            max_age: (!self.retention_age.is_zero()).then_some(self.retention_age),
            max_bytes: (self.retention_max_bytes > 0).then_some(self.retention_max_bytes),
            ..Retention::default()
        }
    }

    /// How the database is opened for writing.
    pub fn options(&self) -> SqliteOptions {
        SqliteOptions {
            busy_timeout: self.busy_timeout,
            synchronous: self.synchronous,
            retention: self.retention(),
        }
    }

    /// How the listener batches.
    pub fn batch_settings(&self) -> BatchSettings {
        BatchSettings {
            batch_size: self.batch_size,
            flush_interval: self.flush_interval,
            max_buffered_events: self.max_buffered_events,
        }
    }

    /// The listener storing into the database, or `None` when disabled. The database is opened
    /// (created, migrated) now when it can be; a database locked by another process is opened
    /// on the first write instead. Fails on zero limits or a directory that cannot be created.
    pub fn build(&self, state_dir: &Path) -> Result<Option<StoreListener>, StoreError> {
        if !self.enabled {
            return Ok(None);
        }
        check_batching(self.batch_size, self.max_buffered_events, self.flush_interval)?;
        let sink = SqliteSink::new(self.path(state_dir), self.options())?;
        Ok(Some(
            StoreListener::new("store.sqlite", Box::new(sink), self.batch_settings())
                .with_maintenance_interval(self.prune_interval.max(Duration::from_secs(1))),
        ))
    }
}
