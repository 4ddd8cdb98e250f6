//! [`SqliteStore`]: the embedded database, opened for writing — batched inserts in one
//! transaction, idempotent for tailed lines, typed tables per kind, and incremental retention.
//!
//! This is also the library API `vigil replay --store` back-fills through:
//! `SqliteStore::open(path)?.write(&events)?`.

use std::{
    borrow::Borrow,
    collections::HashMap,
    path::{Path, PathBuf},
    time::Duration,
};

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OpenFlags, Transaction, params};
use vigil_event::{AuditRecord, Ban, Event, Finding, Payload, Value};

use super::{
    config::Synchronous,
    schema::{self, SCHEMA_VERSION},
};
use crate::StoreError;

/// How a writable database is opened.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// How long a write waits for another process's lock before failing with
    /// [`StoreError::Locked`].
    pub busy_timeout: Duration,
    /// When commits reach the disk.
    pub synchronous: Synchronous,
    /// What retention removes.
    pub retention: Retention,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            busy_timeout: Duration::from_secs(1),
            synchronous: Synchronous::Normal,
            retention: Retention::default(),
        }
    }
}

/// What retention removes, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct Retention {
    /// Rows older than this (by their `time`) are removed; `None` keeps them.
    pub max_age: Option<Duration>,
    /// The oldest events are removed while the database's used pages exceed this; `None` lets
    /// it grow.
    pub max_bytes: Option<u64>,
    /// Most rows removed per table in one step (one short transaction).
    pub step_rows: usize,
}

impl Default for Retention {
    fn default() -> Self {
        Retention { max_age: None, max_bytes: None, step_rows: 5_000 }
    }
}

/// What one [`SqliteStore::write`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteStats {
    /// Events stored.
    pub inserted: u64,
    /// Tailed lines already stored (same `stream` + `offset`), skipped.
    pub duplicates: u64,
}

/// What one pruning step or run removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Rows removed over all tables.
    pub rows: u64,
    /// Whether retention is satisfied (nothing more to remove now).
    pub done: bool,
}

/// The embedded database, open for writing.
pub struct SqliteStore {
    conn: Connection,
    path: PathBuf,
    options: SqliteOptions,
    audit: HashMap<String, AuditTable>,
    streams: HashMap<String, i64>,
    json: Vec<u8>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").field("path", &self.path).finish_non_exhaustive()
    }
}

/// One audit type's table and its columns (record column → SQL column).
#[derive(Debug, Clone)]
struct AuditTable {
    table: String,
    columns: Vec<(String, String)>,
}

const INSERT_EVENT: &str = "INSERT OR IGNORE INTO events (id, time, host, source, severity, kind, \
     program, log_time, utc_offset, log_host, level, action, ip, ip_raw, user, port, service, pid, \
     method, dst, dport, protocol, status, path, message, raw, stream_id, line_offset, line_end, \
     payload, enrichment) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, \
     ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30, ?31)";

const INSERT_FINDING: &str = "INSERT INTO findings (event_id, time, host, source, level, name, \
     system, summary, record, message, data, evidence) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, \
     ?10, ?11, ?12)";

const INSERT_BAN: &str = "INSERT INTO bans (event_id, time, host, source, stage, ip, jail, at, \
     until, failures, bantime_seconds, previous_bans, dry_run, reason, evidence_rule, \
     evidence_count, evidence) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, \
     ?14, ?15, ?16, ?17)";

const NEW_STREAM: &str = "INSERT INTO checkpoints (stream, source, line_end, updated_at) \
     VALUES (?1, ?2, 0, ?3) ON CONFLICT (stream) DO NOTHING";

const ADVANCE_CHECKPOINT: &str =
    "UPDATE checkpoints SET line_end = max(line_end, ?2), updated_at = ?3 WHERE id = ?1";

/// Columns every audit table starts with; a record column of the same name gets a `_` suffix.
const AUDIT_BASE_COLUMNS: [&str; 5] = ["seq", "event_id", "time", "host", "source"];

impl SqliteStore {
    /// Opens (creating it and its directory if needed) the database at `path` with the default
    /// options: WAL, a one-second busy timeout, no retention.
    pub fn open(path: impl Into<PathBuf>) -> Result<SqliteStore, StoreError> {
        SqliteStore::open_with(path, SqliteOptions::default())
    }

    /// Opens (creating it and its directory if needed) the database at `path`.
    pub fn open_with(
        path: impl Into<PathBuf>,
        options: SqliteOptions,
    ) -> Result<SqliteStore, StoreError> {
        let path = path.into();
        let conn = open_writable(&path, &options)?;
        let mut store = SqliteStore {
            conn,
            path,
            options,
            audit: HashMap::new(),
            streams: HashMap::new(),
            json: Vec::new(),
        };
        store.load_audit_tables()?;
        Ok(store)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The options it was opened with.
    pub fn options(&self) -> &SqliteOptions {
        &self.options
    }

    /// Replaces the retention policy.
    pub fn set_retention(&mut self, retention: Retention) {
        self.options.retention = retention;
    }

    fn err(&self, err: rusqlite::Error) -> StoreError {
        StoreError::sqlite(&self.path, err)
    }

    /// Stores `events` in one transaction: all of them or, on error, none. A tailed line already
    /// stored (same `stream` + `offset`) is skipped, so writing a batch again after a crash or a
    /// failed attempt stores each line exactly once.
    ///
    /// To back-fill many events (`vigil replay --store`), call it with batches of about 10,000:
    /// one transaction holds a whole call, and the write-ahead log grows with it.
    pub fn write<E: Borrow<Event>>(&mut self, events: &[E]) -> Result<WriteStats, StoreError> {
        if events.is_empty() {
            return Ok(WriteStats::default());
        }
        let result = self.write_inner(events);
        if result.is_err() {
            // Audit tables and streams created in the failed transaction are gone again.
            self.audit.clear();
            self.streams.clear();
            let _ = self.load_audit_tables();
        }
        result
    }

    fn write_inner<E: Borrow<Event>>(&mut self, events: &[E]) -> Result<WriteStats, StoreError> {
        let path = self.path.clone();
        let err = |it| StoreError::sqlite(&path, it);
        let mut stats = WriteStats::default();
        let now = now_text();
        let tx = self.conn.transaction().map_err(err)?;
        // Stream id → highest line end written in this batch.
        let mut advanced: HashMap<i64, u64> = HashMap::new();
        let mut text = TextBuffers::default();
        {
            let mut insert = tx.prepare_cached(INSERT_EVENT).map_err(err)?;
            for event in events {
                let event = event.borrow();
                self.json.clear();
                text.id.clear();
                text.time.clear();
                write_time(&mut text.time, &event.timestamp);
                use std::fmt::Write as _;
                let mut id = [0u8; uuid::fmt::Hyphenated::LENGTH];
                text.id.push_str(event.id.as_uuid().hyphenated().encode_lower(&mut id));
                let enrichment = if event.enrichment.is_empty() {
                    None
                } else {
                    Some(serde_json::to_string(&event.enrichment)?)
                };
                let changed = match &event.payload {
                    Payload::Log(log) => {
                        let stream_id = match &log.origin {
                            Some(origin) => {
                                let id = stream_id(&tx, &mut self.streams, origin, event, &now)
                                    .map_err(err)?;
                                let end = advanced.entry(id).or_insert(0);
                                *end = (*end).max(origin.end);
                                Some(id)
                            }
                            None => None,
                        };
                        text.log_time.clear();
                        if let Some(time) = &log.timestamp {
                            write_time(&mut text.log_time, time);
                        }
                        text.ip.clear();
                        if let Some(ip) = &log.ip {
                            let _ = write!(text.ip, "{ip}");
                        }
                        let origin = log.origin.as_ref();
                        insert.execute(params![
                            text.id,
                            text.time,
                            &*event.host,
                            &*event.source,
                            event.severity.as_str(),
                            "log",
                            log.source,
                            log.timestamp.is_some().then_some(text.log_time.as_str()),
                            log.utc_offset_seconds,
                            log.host,
                            log.level,
                            log.action,
                            log.ip.is_some().then_some(text.ip.as_str()),
                            log.ip_raw,
                            log.user,
                            log.port,
                            log.service,
                            log.pid,
                            log.method,
                            log.dst.map(|it| it.to_string()),
                            log.dport,
                            log.protocol,
                            log.status,
                            log.path,
                            log.message,
                            log.raw,
                            stream_id,
                            origin.map(|it| it.offset as i64),
                            origin.map(|it| it.end as i64),
                            Option::<&str>::None,
                            enrichment,
                        ])
                    }
                    other => {
                        payload_json(other, &mut self.json)?;
                        let none: Option<&str> = None;
                        insert.execute(params![
                            text.id,
                            text.time,
                            &*event.host,
                            &*event.source,
                            event.severity.as_str(),
                            event.kind().as_str(),
                            none,
                            none,
                            none,
                            none,
                            none,
                            none,
                            none,
                            none,
                            none,
                            none,
                            none,
                            none,
                            none,
                            none,
                            none,
                            none,
                            none,
                            none,
                            none,
                            none,
                            none,
                            none,
                            none,
                            std::str::from_utf8(&self.json).unwrap_or_default(),
                            enrichment,
                        ])
                    }
                }
                .map_err(err)?;
                if changed == 0 {
                    stats.duplicates += 1;
                    continue;
                }
                stats.inserted += 1;
                match &event.payload {
                    Payload::Finding(finding) => insert_finding(&tx, event, finding, &text),
                    Payload::Ban(ban) => insert_ban(&tx, event, ban, &text),
                    Payload::Audit(record) => {
                        insert_audit(&tx, &mut self.audit, event, record, &text)
                    }
                    _ => Ok(()),
                }
                .map_err(err)?;
            }
        }
        if !advanced.is_empty() {
            let mut update = tx.prepare_cached(ADVANCE_CHECKPOINT).map_err(err)?;
            for (id, end) in advanced {
                update.execute(params![id, end as i64, now]).map_err(err)?;
            }
        }
        tx.commit().map_err(err)?;
        Ok(stats)
    }

    /// Removes one step of what retention says is too old or too much (each table at most
    /// `step_rows` rows, in one short transaction), as of `now`.
    pub fn prune_step(&mut self, now: DateTime<Utc>) -> Result<PruneReport, StoreError> {
        let retention = self.options.retention.clone();
        let step = retention.step_rows.max(1) as i64;
        let mut tables = vec!["events".to_owned(), "findings".to_owned(), "bans".to_owned()];
        tables.extend(self.audit.values().map(|it| it.table.clone()));
        let path = self.path.clone();
        let err = |it| StoreError::sqlite(&path, it);
        let mut rows = 0u64;
        let mut more = false;
        let tx = self.conn.transaction().map_err(err)?;
        if let Some(age) = retention.max_age {
            let age = chrono::Duration::from_std(age).unwrap_or(chrono::Duration::MAX);
            let cutoff = now.checked_sub_signed(age).unwrap_or(DateTime::<Utc>::MIN_UTC);
            let cutoff = time_text(&cutoff);
            for table in &tables {
                // Rows arrive in time order: walk the oldest by `seq` (the primary key) rather
                // than keep an index on `time`.
                let sql = format!(
                    "DELETE FROM \"{table}\" WHERE seq IN \
                     (SELECT seq FROM \"{table}\" ORDER BY seq LIMIT ?2) AND time < ?1"
                );
                let n = tx.execute(&sql, params![cutoff, step]).map_err(err)? as u64;
                more |= n == step as u64;
                rows += n;
            }
        }
        if let Some(max) = retention.max_bytes
            && used_bytes(&tx).map_err(err)? > max
        {
            // The oldest events go first; findings, bans and audit rows only when no event is
            // left to remove.
            for table in &tables {
                let sql = format!(
                    "DELETE FROM \"{table}\" WHERE seq IN \
                     (SELECT seq FROM \"{table}\" ORDER BY seq LIMIT ?1)"
                );
                let n = tx.execute(&sql, params![step]).map_err(err)? as u64;
                rows += n;
                if n > 0 {
                    more = true;
                    break;
                }
            }
        }
        tx.commit().map_err(err)?;
        if rows > 0 {
            // Give the freed pages back to the file system, a bounded number per step.
            incremental_vacuum(&self.conn, 2048).map_err(|it| self.err(it))?;
        }
        Ok(PruneReport { rows, done: !more })
    }

    /// Applies retention to completion, step by step, as of `now`.
    pub fn prune(&mut self, now: DateTime<Utc>) -> Result<PruneReport, StoreError> {
        let mut total = PruneReport::default();
        loop {
            let step = self.prune_step(now)?;
            total.rows += step.rows;
            if step.done {
                total.done = true;
                return Ok(total);
            }
        }
    }

    /// Bytes in the database's used pages (the file can be larger until it is vacuumed).
    pub fn used_bytes(&self) -> Result<u64, StoreError> {
        used_bytes(&self.conn).map_err(|it| self.err(it))
    }

    /// The value saved under `key` in `detector_state`.
    pub fn load_state(&self, key: &str) -> Result<Option<Value>, StoreError> {
        super::state::load(&self.conn, key).map_err(|it| self.err(it))?.map_or(Ok(None), |text| {
            serde_json::from_str(&text).map(Some).map_err(StoreError::Json)
        })
    }

    fn load_audit_tables(&mut self) -> Result<(), StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT record_type, table_name, columns FROM audit_types")
            .map_err(|it| StoreError::sqlite(&self.path, it))?;
        let rows = stmt
            .query_map([], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?, row.get::<_, String>(2)?))
            })
            .and_then(Iterator::collect::<Result<Vec<_>, _>>)
            .map_err(|it| StoreError::sqlite(&self.path, it))?;
        for (record_type, table, columns) in rows {
            let columns: Vec<(String, String)> = serde_json::from_str(&columns)?;
            self.audit.insert(record_type, AuditTable { table, columns });
        }
        Ok(())
    }
}

/// Opens `path` for writing: WAL, the busy timeout, incremental auto-vacuum for a new file,
/// and the schema brought up to date.
fn open_writable(path: &Path, options: &SqliteOptions) -> Result<Connection, StoreError> {
    if let Some(dir) = path.parent().filter(|it| !it.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|it| StoreError::io(dir, it))?;
    }
    let err = |it| StoreError::sqlite(path, it);
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut conn = Connection::open_with_flags(path, flags).map_err(err)?;
    conn.busy_timeout(options.busy_timeout).map_err(err)?;
    // Only takes effect on a new, empty database: freed pages can then be returned to the
    // file system a few at a time (`PRAGMA incremental_vacuum`), never in one long VACUUM.
    conn.pragma_update(None, "auto_vacuum", "INCREMENTAL").map_err(err)?;
    let mode: String =
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0)).map_err(err)?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(path = %path.display(), mode = %mode, "Could not switch the database to WAL");
    }
    conn.pragma_update(None, "synchronous", options.synchronous.pragma()).map_err(err)?;
    // 16 MiB of page cache keeps the indexes' hot pages in memory during bulk writes, and a
    // checkpoint every 4000 pages (16 MiB of WAL) copies a hot page once rather than four times.
    conn.pragma_update(None, "cache_size", -16_384).map_err(err)?;
    conn.pragma_update(None, "wal_autocheckpoint", 4_000).map_err(err)?;
    conn.set_prepared_statement_cache_capacity(64);
    match schema::migrate(&mut conn).map_err(err)? {
        Ok(_) => Ok(conn),
        Err(found) => Err(StoreError::SchemaTooNew {
            path: path.to_path_buf(),
            found,
            supported: SCHEMA_VERSION,
        }),
    }
}

/// Returns up to `pages` free pages to the file system.
pub(crate) fn incremental_vacuum(conn: &Connection, pages: u32) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare(&format!("PRAGMA incremental_vacuum({pages})"))?;
    let mut rows = stmt.query([])?;
    while rows.next()?.is_some() {}
    Ok(())
}

fn used_bytes(conn: &Connection) -> rusqlite::Result<u64> {
    let pragma = |name: &str| conn.query_row(&format!("PRAGMA {name}"), [], |r| r.get::<_, i64>(0));
    let used = pragma("page_count")? - pragma("freelist_count")?;
    Ok((used.max(0) as u64) * pragma("page_size")?.max(0) as u64)
}

/// The current time as stored: RFC 3339, UTC, milliseconds.
pub(crate) fn now_text() -> String {
    time_text(&Utc::now())
}

/// A time as stored: RFC 3339, UTC, milliseconds (`2026-11-23T14:02:11.532Z`), so text
/// comparison orders times and `time >= date('now')` means "today (UTC)".
pub(crate) fn time_text(time: &DateTime<Utc>) -> String {
    let mut out = String::with_capacity(24);
    write_time(&mut out, time);
    out
}

/// Reused text of one row.
#[derive(Default)]
struct TextBuffers {
    id: String,
    time: String,
    log_time: String,
    ip: String,
}

/// The id of `origin`'s stream in `checkpoints`, added on first sight.
fn stream_id(
    tx: &Transaction<'_>,
    cache: &mut HashMap<String, i64>,
    origin: &vigil_event::LineOrigin,
    event: &Event,
    now: &str,
) -> rusqlite::Result<i64> {
    if let Some(id) = cache.get(&origin.stream) {
        return Ok(*id);
    }
    tx.prepare_cached(NEW_STREAM)?.execute(params![origin.stream, &*event.source, now])?;
    let id: i64 =
        tx.query_row("SELECT id FROM checkpoints WHERE stream = ?1", [&origin.stream], |row| {
            row.get(0)
        })?;
    cache.insert(origin.stream.clone(), id);
    Ok(id)
}

/// Writes a time as stored: RFC 3339, UTC, milliseconds (`2026-11-23T14:02:11.532Z`). Digits
/// are written by hand: this runs twice per stored line.
fn write_time(out: &mut String, time: &DateTime<Utc>) {
    use chrono::{Datelike, Timelike};
    let naive = time.naive_utc();
    let (date, clock) = (naive.date(), naive.time());
    let year = date.year();
    if !(0..=9999).contains(&year) {
        out.push_str(&time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
        return;
    }
    let mut buf = *b"0000-00-00T00:00:00.000Z";
    let mut put = |at: usize, width: usize, mut value: u32| {
        for i in (0..width).rev() {
            buf[at + i] = b'0' + (value % 10) as u8;
            value /= 10;
        }
    };
    put(0, 4, year as u32);
    put(5, 2, date.month());
    put(8, 2, date.day());
    put(11, 2, clock.hour());
    put(14, 2, clock.minute());
    put(17, 2, clock.second().min(59));
    put(20, 3, (clock.nanosecond() / 1_000_000).min(999));
    out.push_str(std::str::from_utf8(&buf).unwrap_or_default());
}

/// The JSON of a payload other than a log line, without its kind tag.
fn payload_json(payload: &Payload, json: &mut Vec<u8>) -> Result<(), StoreError> {
    match payload {
        Payload::Finding(finding) => serde_json::to_writer(&mut *json, finding)?,
        Payload::Ban(ban) => serde_json::to_writer(&mut *json, ban)?,
        Payload::Audit(record) => serde_json::to_writer(&mut *json, record)?,
        other => {
            // Adjacently tagged: `{"kind": …, "payload": {…}}`; keep the inner object.
            let mut value = serde_json::to_value(other)?;
            let inner = value.get_mut("payload").map(Value::take).unwrap_or(Value::Null);
            serde_json::to_writer(&mut *json, &inner)?;
        }
    }
    Ok(())
}

fn json_or_null<T: serde::Serialize>(value: &T, empty: bool) -> Option<String> {
    if empty { None } else { serde_json::to_string(value).ok() }
}

fn insert_finding(
    tx: &Transaction<'_>,
    event: &Event,
    finding: &Finding,
    text: &TextBuffers,
) -> rusqlite::Result<()> {
    let level = match finding.level {
        vigil_event::FindingLevel::Notice => "notice",
        vigil_event::FindingLevel::Warning => "warning",
        vigil_event::FindingLevel::Error => "error",
    };
    tx.prepare_cached(INSERT_FINDING)?.execute(params![
        text.id,
        text.time,
        &*event.host,
        &*event.source,
        level,
        finding.name,
        finding.system,
        finding.summary,
        finding.record,
        finding.message,
        json_or_null(&finding.data, finding.data.is_empty()),
        finding.evidence.as_ref().and_then(|it| serde_json::to_string(it).ok()),
    ])?;
    Ok(())
}

fn insert_ban(
    tx: &Transaction<'_>,
    event: &Event,
    ban: &Ban,
    text: &TextBuffers,
) -> rusqlite::Result<()> {
    tx.prepare_cached(INSERT_BAN)?.execute(params![
        text.id,
        text.time,
        &*event.host,
        &*event.source,
        ban.stage.as_str(),
        ban.ip,
        ban.jail,
        time_text(&ban.at),
        ban.until.as_ref().map(time_text),
        ban.failures as i64,
        ban.bantime_seconds,
        ban.previous_bans,
        ban.dry_run,
        ban.reason,
        (!ban.evidence.rule.is_empty()).then_some(&ban.evidence.rule),
        ban.evidence.count as i64,
        serde_json::to_string(&ban.evidence).unwrap_or_else(|_| "{}".to_owned()),
    ])?;
    Ok(())
}

/// Inserts an audit record into its type's table, creating the table (or new columns) first.
fn insert_audit(
    tx: &Transaction<'_>,
    tables: &mut HashMap<String, AuditTable>,
    event: &Event,
    record: &AuditRecord,
    text: &TextBuffers,
) -> rusqlite::Result<()> {
    let table = ensure_audit_table(tx, tables, record)?;
    let mut names: Vec<String> =
        AUDIT_BASE_COLUMNS[1..].iter().map(|it| format!("\"{it}\"")).collect();
    let mut values: Vec<rusqlite::types::Value> = vec![
        text.id.clone().into(),
        text.time.clone().into(),
        event.host.to_string().into(),
        event.source.to_string().into(),
    ];
    for (column, value) in record.columns().iter().zip(record.values()) {
        if let Some((_, sql)) = table.columns.iter().find(|(it, _)| it == column) {
            names.push(format!("\"{sql}\""));
            values.push(sql_value(value));
        }
    }
    let marks: Vec<String> = (1..=values.len()).map(|it| format!("?{it}")).collect();
    let sql = format!(
        "INSERT INTO \"{}\" ({}) VALUES ({})",
        table.table,
        names.join(", "),
        marks.join(", ")
    );
    tx.prepare_cached(&sql)?.execute(rusqlite::params_from_iter(values))?;
    Ok(())
}

fn ensure_audit_table<'t>(
    tx: &Transaction<'_>,
    tables: &'t mut HashMap<String, AuditTable>,
    record: &AuditRecord,
) -> rusqlite::Result<&'t AuditTable> {
    let record_type = record.record_type();
    if !tables.contains_key(record_type) {
        let base = format!("audit_{}", identifier(record_type));
        let mut table = base.clone();
        let mut n = 2;
        while tables.values().any(|it| it.table == table) {
            table = format!("{base}_{n}");
            n += 1;
        }
        tx.execute_batch(&format!(
            "CREATE TABLE \"{table}\" (seq INTEGER PRIMARY KEY, event_id TEXT NOT NULL, \
             time TEXT NOT NULL, host TEXT NOT NULL, source TEXT NOT NULL);
             CREATE INDEX \"{table}_time\" ON \"{table}\" (time);"
        ))?;
        tables.insert(record_type.to_owned(), AuditTable { table, columns: Vec::new() });
    }
    let table = tables.get_mut(record_type).expect("inserted above");
    let mut changed = table.columns.is_empty();
    for (column, value) in record.columns().iter().zip(record.values()) {
        if table.columns.iter().any(|(it, _)| it == column) {
            continue;
        }
        let mut sql = identifier(column);
        while AUDIT_BASE_COLUMNS.contains(&sql.as_str())
            || table.columns.iter().any(|(_, it)| *it == sql)
        {
            sql.push('_');
        }
        tx.execute_batch(&format!(
            "ALTER TABLE \"{}\" ADD COLUMN \"{sql}\" {}",
            table.table,
            sql_type(value)
        ))?;
        table.columns.push((column.clone(), sql));
        changed = true;
    }
    if changed {
        tx.execute(
            "INSERT INTO audit_types (record_type, table_name, columns) VALUES (?1, ?2, ?3) \
             ON CONFLICT (record_type) DO UPDATE SET columns = excluded.columns",
            params![
                record_type,
                table.table,
                serde_json::to_string(&table.columns).unwrap_or_default()
            ],
        )?;
    }
    Ok(table)
}

/// A safe SQL identifier made of `[a-z0-9_]`.
fn identifier(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// The declared SQL type of a column, from its first value.
fn sql_type(value: &Value) -> &'static str {
    match value {
        Value::Bool(_) => "INTEGER",
        Value::Number(n) if n.is_i64() || n.is_u64() => "INTEGER",
        Value::Number(_) => "REAL",
        _ => "TEXT",
    }
}

fn sql_value(value: &Value) -> rusqlite::types::Value {
    use rusqlite::types::Value as V;
    match value {
        Value::Null => V::Null,
        Value::Bool(it) => V::Integer(i64::from(*it)),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(it), _) => V::Integer(it),
            (None, Some(it)) => V::Real(it),
            _ => V::Text(n.to_string()),
        },
        Value::String(it) => V::Text(it.clone()),
        other => V::Text(other.to_string()),
    }
}
