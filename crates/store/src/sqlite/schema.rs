//! The database schema and its migrations (documented for users in `docs/schema.md`).
//!
//! Each migration is applied once, in order, in its own transaction, and recorded in
//! `schema_version`. A database whose version is newer than [`SCHEMA_VERSION`] is refused
//! rather than written with assumptions that no longer hold. Migrations only ever add: a
//! column or table is never renamed or dropped, so queries users saved keep working.

use rusqlite::{Connection, OptionalExtension};

/// The newest schema version this build writes.
pub const SCHEMA_VERSION: i64 = 1;

/// Migrations: `MIGRATIONS[i]` takes the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: events, findings, bans, audit types, detector state, checkpoints.
    r#"
CREATE TABLE events (
    seq         INTEGER PRIMARY KEY,
    id          TEXT NOT NULL,
    time        TEXT NOT NULL,
    host        TEXT NOT NULL,
    source      TEXT NOT NULL,
    severity    TEXT NOT NULL,
    kind        TEXT NOT NULL,
    program     TEXT,
    log_time    TEXT,
    utc_offset  INTEGER,
    log_host    TEXT,
    level       TEXT,
    action      TEXT,
    ip          TEXT,
    ip_raw      TEXT,
    user        TEXT,
    port        INTEGER,
    service     TEXT,
    pid         INTEGER,
    method      TEXT,
    dst         TEXT,
    dport       INTEGER,
    protocol    TEXT,
    status      INTEGER,
    path        TEXT,
    message     TEXT,
    raw         TEXT,
    stream_id   INTEGER,
    line_offset INTEGER,
    line_end    INTEGER,
    payload     TEXT,
    enrichment  TEXT
);
-- No index on time: rows arrive in time order, retention walks `seq`, and an index would
-- cost about an eighth of the ingestion rate.
CREATE UNIQUE INDEX events_line ON events (stream_id, line_offset) WHERE stream_id IS NOT NULL;

CREATE TABLE findings (
    seq      INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL,
    time     TEXT NOT NULL,
    host     TEXT NOT NULL,
    source   TEXT NOT NULL,
    level    TEXT NOT NULL,
    name     TEXT NOT NULL,
    system   TEXT NOT NULL,
    summary  TEXT NOT NULL,
    record   TEXT,
    message  TEXT,
    data     TEXT,
    evidence TEXT
);
CREATE INDEX findings_time ON findings (time);

CREATE TABLE bans (
    seq             INTEGER PRIMARY KEY,
    event_id        TEXT NOT NULL,
    time            TEXT NOT NULL,
    host            TEXT NOT NULL,
    source          TEXT NOT NULL,
    stage           TEXT NOT NULL,
    ip              TEXT NOT NULL,
    jail            TEXT NOT NULL,
    at              TEXT NOT NULL,
    until           TEXT,
    failures        INTEGER NOT NULL,
    bantime_seconds INTEGER NOT NULL,
    previous_bans   INTEGER NOT NULL,
    dry_run         INTEGER NOT NULL,
    reason          TEXT,
    evidence_rule   TEXT,
    evidence_count  INTEGER,
    evidence        TEXT NOT NULL
);
CREATE INDEX bans_time ON bans (time);
CREATE INDEX bans_ip ON bans (ip);

CREATE TABLE audit_types (
    record_type TEXT PRIMARY KEY,
    table_name  TEXT NOT NULL UNIQUE,
    columns     TEXT NOT NULL
);

CREATE TABLE detector_state (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE checkpoints (
    id         INTEGER PRIMARY KEY,
    stream     TEXT NOT NULL UNIQUE,
    source     TEXT NOT NULL,
    line_end   INTEGER NOT NULL,
    updated_at TEXT NOT NULL
);
"#,
];

/// The schema version recorded in `conn`'s database (0 for an empty one).
pub(crate) fn version(conn: &Connection) -> rusqlite::Result<i64> {
    let exists: Option<i64> = conn
        .query_row(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'",
            [],
            |row| row.get(0),
        )
        .optional()?;
    if exists.is_none() {
        return Ok(0);
    }
    conn.query_row("SELECT coalesce(max(version), 0) FROM schema_version", [], |row| row.get(0))
}

/// Brings the schema to [`SCHEMA_VERSION`]. Returns the version found before, or `Err(found)`
/// through `Ok(Err)` when the database is newer than this build.
pub(crate) fn migrate(conn: &mut Connection) -> rusqlite::Result<Result<i64, i64>> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_version (
             version    INTEGER PRIMARY KEY,
             applied_at TEXT NOT NULL
         )",
    )?;
    let found = version(&tx)?;
    if found > SCHEMA_VERSION {
        return Ok(Err(found));
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        tx.execute_batch(sql)?;
        tx.execute(
            "INSERT INTO schema_version (version, applied_at) VALUES (?1, ?2)",
            rusqlite::params![index as i64 + 1, super::store::now_text()],
        )?;
    }
    tx.commit()?;
    Ok(Ok(found))
}
