//! [`SqliteStateStore`]: detectors' state in the `detector_state` table, as an alternative to
//! the runtime's one-JSON-file-per-key store.
//!
//! It implements vigil-core's [`StateStore`], so `RuntimeBuilder::state_store` takes it as it
//! is. Each save is its own transaction (a crash keeps either the old or the new value).

use std::{
    path::{Path, PathBuf},
    sync::Mutex,
};

use rusqlite::{Connection, OptionalExtension, params};
use vigil_core::{ComponentError, StateStore};
use vigil_event::Value;

use super::store::{SqliteOptions, now_text};
use crate::StoreError;

/// Component state kept in the database's `detector_state` table.
#[derive(Debug)]
pub struct SqliteStateStore {
    conn: Mutex<Connection>,
    path: PathBuf,
}

impl SqliteStateStore {
    /// Opens (creating and migrating it if needed) the database at `path`.
    pub fn open(path: impl Into<PathBuf>) -> Result<SqliteStateStore, StoreError> {
        let path = path.into();
        // Opening through the store brings the schema up to date.
        drop(super::SqliteStore::open_with(&path, SqliteOptions::default())?);
        let conn = Connection::open(&path).map_err(|it| StoreError::sqlite(&path, it))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(|it| StoreError::sqlite(&path, it))?;
        Ok(SqliteStateStore { conn: Mutex::new(conn), path })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn failed(&self, err: rusqlite::Error) -> ComponentError {
        ComponentError::msg(StoreError::sqlite(&self.path, err).to_string())
    }
}

/// The JSON text saved under `key`, if any.
pub(crate) fn load(conn: &Connection, key: &str) -> rusqlite::Result<Option<String>> {
    conn.query_row("SELECT value FROM detector_state WHERE key = ?1", [key], |row| row.get(0))
        .optional()
}

impl StateStore for SqliteStateStore {
    fn load(&self, key: &str) -> Result<Option<Value>, ComponentError> {
        let conn = self.conn.lock().unwrap_or_else(|it| it.into_inner());
        let Some(text) = load(&conn, key).map_err(|it| self.failed(it))? else { return Ok(None) };
        serde_json::from_str(&text).map(Some).map_err(|err| {
            ComponentError::msg(format!(
                "{}: invalid state under {key:?}: {err}",
                self.path.display()
            ))
        })
    }

    fn save(&self, key: &str, value: &Value) -> Result<(), ComponentError> {
        let text = serde_json::to_string(value)
            .map_err(|err| ComponentError::msg(format!("cannot encode state: {err}")))?;
        let conn = self.conn.lock().unwrap_or_else(|it| it.into_inner());
        conn.execute(
            "INSERT INTO detector_state (key, value, updated_at) VALUES (?1, ?2, ?3) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, \
             updated_at = excluded.updated_at",
            params![key, text, now_text()],
        )
        .map_err(|it| self.failed(it))?;
        Ok(())
    }
}
