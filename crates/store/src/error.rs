//! The one error type of the storage crate: what went wrong, and on which path.

use std::path::PathBuf;

/// Why a store could not be opened, written, pruned or queried.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The database is locked by another process for longer than the busy timeout.
    #[error(
        "{}: the database is locked by another process (a long transaction or an exclusive lock); writes are retried",
        path.display()
    )]
    Locked {
        /// The database.
        path: PathBuf,
    },
    /// The database or its directory cannot be written.
    #[error(
        "{}: the database is read-only (check the permissions of the file and its directory, and the free space)",
        path.display()
    )]
    ReadOnly {
        /// The database.
        path: PathBuf,
    },
    /// There is no database at the path.
    #[error("{}: no database here (`vigil run` creates it)", path.display())]
    Missing {
        /// The path looked at.
        path: PathBuf,
    },
    /// Any other SQLite error.
    #[cfg(feature = "sqlite")]
    #[error("{}: {source}", path.display())]
    Sqlite {
        /// The database.
        path: PathBuf,
        /// The underlying error.
        source: rusqlite::Error,
    },
    /// The database was written by a newer vigil.
    #[error("{}: schema version {found} is newer than this vigil knows ({supported})", path.display())]
    SchemaTooNew {
        /// The database.
        path: PathBuf,
        /// The version found.
        found: i64,
        /// The newest version this build knows.
        supported: i64,
    },
    /// A query would change the database.
    #[error(
        "only read-only statements are allowed (SELECT, WITH … SELECT, EXPLAIN, read-only PRAGMA); refused: {0}"
    )]
    NotReadOnly(String),
    /// The query text is not one valid statement.
    #[error("invalid query: {0}")]
    InvalidQuery(String),
    /// The configuration cannot work.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// An event or a document could not be encoded.
    #[error("cannot encode as JSON: {0}")]
    Json(#[from] serde_json::Error),
}

impl StoreError {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> StoreError {
        StoreError::Io { path: path.into(), source }
    }

    /// Whether retrying later may succeed (a lock, a full disk), as opposed to a bad query or
    /// configuration.
    pub fn is_transient(&self) -> bool {
        !matches!(
            self,
            StoreError::NotReadOnly(_)
                | StoreError::InvalidQuery(_)
                | StoreError::Config(_)
                | StoreError::SchemaTooNew { .. }
        )
    }

    /// Classifies a SQLite error on `path`: a lock and a read-only database get their own,
    /// clearer variants.
    #[cfg(feature = "sqlite")]
    pub(crate) fn sqlite(path: &std::path::Path, source: rusqlite::Error) -> StoreError {
        use rusqlite::ErrorCode;
        let path = path.to_path_buf();
        match source.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
                StoreError::Locked { path }
            }
            Some(ErrorCode::ReadOnly) => StoreError::ReadOnly { path },
            _ => StoreError::Sqlite { path, source },
        }
    }
}

impl From<StoreError> for vigil_core::ComponentError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Io { path, source } => vigil_core::ComponentError::io(path, source),
            StoreError::Config(message) => vigil_core::ComponentError::Config(message),
            other => vigil_core::ComponentError::msg(other.to_string()),
        }
    }
}
