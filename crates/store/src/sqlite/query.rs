//! Read-only access for `vigil query` and `vigil db info`: the database is opened with
//! `SQLITE_OPEN_READ_ONLY` and `PRAGMA query_only`, and only statements SQLite itself reports as
//! read-only are run, so a query can never change what the agent stored.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, limits::Limit, types::ValueRef};

use super::schema;
use crate::StoreError;

/// One value of a result row.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    /// SQL NULL.
    Null,
    /// An integer.
    Integer(i64),
    /// A floating-point number.
    Real(f64),
    /// Text.
    Text(String),
    /// A blob (shown as its length).
    Blob(Vec<u8>),
}

impl SqlValue {
    fn from_ref(value: ValueRef<'_>) -> SqlValue {
        match value {
            ValueRef::Null => SqlValue::Null,
            ValueRef::Integer(it) => SqlValue::Integer(it),
            ValueRef::Real(it) => SqlValue::Real(it),
            ValueRef::Text(it) => SqlValue::Text(String::from_utf8_lossy(it).into_owned()),
            ValueRef::Blob(it) => SqlValue::Blob(it.to_vec()),
        }
    }

    /// The value as JSON (a blob as an array of bytes).
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            SqlValue::Null => serde_json::Value::Null,
            SqlValue::Integer(it) => (*it).into(),
            SqlValue::Real(it) => serde_json::Number::from_f64(*it)
                .map_or(serde_json::Value::Null, serde_json::Value::Number),
            SqlValue::Text(it) => it.clone().into(),
            SqlValue::Blob(it) => it.clone().into(),
        }
    }
}

impl std::fmt::Display for SqlValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SqlValue::Null => Ok(()),
            SqlValue::Integer(it) => write!(f, "{it}"),
            SqlValue::Real(it) => write!(f, "{it}"),
            SqlValue::Text(it) => f.write_str(it),
            SqlValue::Blob(it) => write!(f, "<{} bytes>", it.len()),
        }
    }
}

/// A read-only connection to a database.
#[derive(Debug)]
pub struct ReadOnlyDb {
    conn: Connection,
    path: PathBuf,
}

impl ReadOnlyDb {
    /// Opens the database at `path` read-only. Fails with [`StoreError::Missing`] when there is
    /// none.
    pub fn open(path: impl Into<PathBuf>) -> Result<ReadOnlyDb, StoreError> {
        let path = path.into();
        if !path.exists() {
            return Err(StoreError::Missing { path });
        }
        let err = |it| StoreError::sqlite(&path, it);
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&path, flags).map_err(err)?;
        conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(err)?;
        conn.pragma_update(None, "query_only", true).map_err(err)?;
        // No ATTACH: a query sees this database and nothing else.
        let _ = conn.set_limit(Limit::SQLITE_LIMIT_ATTACHED, 0);
        // A file the agent has just created but not yet given its tables is no database yet.
        if schema::version(&conn).map_err(err)? == 0 {
            return Err(StoreError::Missing { path });
        }
        Ok(ReadOnlyDb { conn, path })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs one read-only statement, calling `each` with the column names and every row.
    /// A statement that would write, or more than one statement, is refused.
    pub fn query(
        &self,
        sql: &str,
        mut each: impl FnMut(&[String], Vec<SqlValue>) -> Result<(), StoreError>,
    ) -> Result<Vec<String>, StoreError> {
        let mut stmt = self.conn.prepare(sql).map_err(|err| match err {
            rusqlite::Error::SqliteFailure(_, Some(message)) => StoreError::InvalidQuery(message),
            rusqlite::Error::MultipleStatement => {
                StoreError::InvalidQuery("give one statement at a time".to_owned())
            }
            other => StoreError::InvalidQuery(other.to_string()),
        })?;
        if !stmt.readonly() {
            return Err(StoreError::NotReadOnly(sql.trim().chars().take(80).collect()));
        }
        let columns: Vec<String> = stmt.column_names().iter().map(|it| (*it).to_owned()).collect();
        let mut rows = stmt.query([]).map_err(|it| StoreError::sqlite(&self.path, it))?;
        while let Some(row) = rows.next().map_err(|it| StoreError::sqlite(&self.path, it))? {
            let values = (0..columns.len())
                .map(|i| row.get_ref(i).map(SqlValue::from_ref))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|it| StoreError::sqlite(&self.path, it))?;
            each(&columns, values)?;
        }
        Ok(columns)
    }

    /// The path, size, schema version and row count of every table.
    pub fn info(&self) -> Result<DbInfo, StoreError> {
        let err = |it| StoreError::sqlite(&self.path, it);
        let schema_version = schema::version(&self.conn).map_err(err)?;
        let mut stmt = self
            .conn
            .prepare(
                "SELECT name FROM sqlite_master WHERE type = 'table' \
                 AND name NOT LIKE 'sqlite_%' ORDER BY name",
            )
            .map_err(err)?;
        let names = stmt
            .query_map([], |row| row.get::<_, String>(0))
            .and_then(Iterator::collect::<Result<Vec<_>, _>>)
            .map_err(err)?;
        let mut tables = Vec::new();
        for name in names {
            let rows: i64 = self
                .conn
                .query_row(&format!("SELECT count(*) FROM \"{name}\""), [], |row| row.get(0))
                .map_err(err)?;
            tables.push(TableInfo { name, rows: rows.max(0) as u64 });
        }
        let file_size = |suffix: &str| {
            let mut name = self.path.as_os_str().to_owned();
            name.push(suffix);
            std::fs::metadata(PathBuf::from(name)).map(|it| it.len()).unwrap_or(0)
        };
        Ok(DbInfo {
            path: self.path.clone(),
            size_bytes: file_size(""),
            wal_bytes: file_size("-wal"),
            schema_version,
            tables,
        })
    }
}

/// What `vigil db info` shows.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DbInfo {
    /// The database file.
    pub path: PathBuf,
    /// Size of the database file.
    pub size_bytes: u64,
    /// Size of its write-ahead log.
    pub wal_bytes: u64,
    /// The schema version recorded in it.
    pub schema_version: i64,
    /// Every table with its row count.
    pub tables: Vec<TableInfo>,
}

/// One table and its row count.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TableInfo {
    /// Table name.
    pub name: String,
    /// Rows in it.
    pub rows: u64,
}
