//! Tests of the SQLite store on real database files: idempotent writes, typed tables,
//! migrations, retention, read-only queries, concurrent readers, locks and detector state.

use std::{sync::Arc, time::Duration};

use chrono::{TimeZone, Utc};
use rusqlite::Connection;
use vigil_core::StateStore;
use vigil_event::{
    AuditSchema, Ban, BanStage, Event, Evidence, Finding, FindingLevel, LineOrigin, LogEvent,
    Payload,
};

use super::*;

fn line(stream: &str, offset: u64, ip: &str, user: &str) -> Event {
    let message = format!("Failed password for {user} from {ip} port 22 ssh2");
    let end = offset + message.len() as u64 + 1;
    Event::new(
        "web-1",
        "files.auth",
        Payload::Log(LogEvent {
            action: Some("failed_password".into()),
            ip: ip.parse().ok(),
            user: Some(user.into()),
            port: Some(22),
            origin: Some(LineOrigin { stream: stream.into(), offset, end }),
            ..LogEvent::new("sshd", message)
        }),
    )
}

fn count(db: &std::path::Path, sql: &str) -> i64 {
    let conn = Connection::open(db).unwrap();
    conn.query_row(sql, [], |row| row.get(0)).unwrap()
}

#[test]
fn a_line_written_twice_is_stored_once_and_checkpoints_follow() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sub/vigil.db");
    let mut store = SqliteStore::open(&db).unwrap();
    let batch: Vec<Event> =
        (0..10).map(|i| line("file:1:2:ab", i * 100, "203.0.113.9", "root")).collect();
    assert_eq!(store.write(&batch).unwrap(), WriteStats { inserted: 10, duplicates: 0 });
    // The same lines read again after a crash, with new event ids, plus two new ones.
    let mut again: Vec<Event> =
        (5..12).map(|i| line("file:1:2:ab", i * 100, "203.0.113.9", "root")).collect();
    again.push(line("file:1:3:cd", 0, "198.51.100.1", "admin"));
    assert_eq!(store.write(&again).unwrap(), WriteStats { inserted: 3, duplicates: 5 });
    assert_eq!(count(&db, "SELECT count(*) FROM events"), 13);
    assert_eq!(
        count(
            &db,
            "SELECT count(DISTINCT line_offset) FROM events JOIN checkpoints c ON c.id = stream_id WHERE c.stream = 'file:1:2:ab'"
        ),
        12
    );
    let end = count(&db, "SELECT line_end FROM checkpoints WHERE stream = 'file:1:2:ab'");
    assert_eq!(end as u64, again[6].payload_origin_end());
    // Events without an origin are never taken for duplicates.
    let plain = Event::new("web-1", "x", Payload::Log(LogEvent::new("sshd", "hello")));
    store.write(&[plain.clone(), plain]).unwrap();
    assert_eq!(count(&db, "SELECT count(*) FROM events WHERE stream_id IS NULL"), 2);
    let (user, ip, kind): (String, String, String) = Connection::open(&db)
        .unwrap()
        .query_row(
            "SELECT user, ip, kind FROM events \
             WHERE stream_id = (SELECT id FROM checkpoints WHERE stream = 'file:1:3:cd')",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!((user.as_str(), ip.as_str(), kind.as_str()), ("admin", "198.51.100.1", "log"));
}

trait OriginEnd {
    fn payload_origin_end(&self) -> u64;
}

impl OriginEnd for Event {
    fn payload_origin_end(&self) -> u64 {
        match &self.payload {
            Payload::Log(log) => log.origin.as_ref().unwrap().end,
            _ => 0,
        }
    }
}

#[test]
fn findings_bans_and_audit_records_get_typed_tables() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("vigil.db");
    let mut store = SqliteStore::open(&db).unwrap();
    let at = Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap();
    let evidence = Evidence {
        rule: "jail sshd: maxretry 5 within findtime 600s".into(),
        count: 5,
        window_seconds: 600,
        lines: vec!["Failed password for root from 203.0.113.9".into(); 5],
        ..Evidence::default()
    };
    let mut ban = Ban::request("203.0.113.9", "sshd", at);
    ban.evidence = evidence.clone();
    let mut banned = ban.clone();
    banned.stage = BanStage::Banned;
    banned.until = Some(at + chrono::Duration::seconds(600));
    let finding = Finding {
        evidence: Some(evidence),
        ..Finding::new(FindingLevel::Warning, "SSHLoginTriesExceeded", "sshd", "5 failures")
    }
    .with_data("ip", "203.0.113.9");
    let logins =
        AuditSchema { name: "ssh-logins", fields: &["user", "count", "ratio", "ok", "seq"] };
    let record = logins
        .record([
            ("user", serde_json::json!("root")),
            ("count", serde_json::json!(7)),
            ("ratio", serde_json::json!(0.5)),
            ("ok", serde_json::json!(true)),
            ("seq", serde_json::json!("x")),
        ])
        .unwrap();
    let events = vec![
        Event::new("h", "jail.sshd", Payload::Ban(ban)),
        Event::new("h", "bans", Payload::Ban(banned)),
        Event::new("h", "jail.sshd", Payload::Finding(finding)),
        Event::new("h", "report", Payload::Audit(record.clone())),
    ];
    store.write(&events).unwrap();
    store.write(&[Event::new("h", "report", Payload::Audit(record))]).unwrap();
    let conn = Connection::open(&db).unwrap();
    let (stage, until, rule, n): (String, Option<String>, String, i64) = conn
        .query_row(
            "SELECT stage, until, evidence_rule, json_array_length(evidence, '$.lines') \
             FROM bans WHERE stage = 'banned'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert_eq!(stage, "banned");
    assert_eq!(until.as_deref(), Some("2026-11-23T10:10:00.000Z"));
    assert!(rule.contains("maxretry 5"));
    assert_eq!(n, 5);
    assert_eq!(count(&db, "SELECT count(*) FROM bans"), 2);
    let (name, ip): (String, String) = conn
        .query_row("SELECT name, json_extract(data, '$.ip') FROM findings", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!((name.as_str(), ip.as_str()), ("SSHLoginTriesExceeded", "203.0.113.9"));
    // One table for the audit type, with typed columns; `seq` collides with ours.
    let columns: Vec<(String, String)> = conn
        .prepare("SELECT name, type FROM pragma_table_info('audit_ssh_logins')")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let typed: Vec<(&str, &str)> =
        columns.iter().skip(5).map(|(n, t)| (n.as_str(), t.as_str())).collect();
    assert_eq!(
        typed,
        [
            ("user", "TEXT"),
            ("count", "INTEGER"),
            ("ratio", "REAL"),
            ("ok", "INTEGER"),
            ("seq_", "TEXT")
        ]
    );
    assert_eq!(count(&db, "SELECT sum(count) FROM audit_ssh_logins WHERE ok = 1"), 14);
    assert_eq!(count(&db, "SELECT count(*) FROM events"), 5);
    // Reopening finds the audit table again rather than making a second one.
    drop(store);
    let mut store = SqliteStore::open(&db).unwrap();
    let record = logins
        .record([
            ("user", serde_json::json!("bob")),
            ("count", serde_json::json!(1)),
            ("ratio", serde_json::json!(1.0)),
            ("ok", serde_json::json!(false)),
            ("seq", serde_json::json!("y")),
        ])
        .unwrap();
    store.write(&[Event::new("h", "report", Payload::Audit(record))]).unwrap();
    assert_eq!(count(&db, "SELECT count(*) FROM audit_ssh_logins"), 3);
    assert_eq!(count(&db, "SELECT count(*) FROM audit_types"), 1);
}

#[test]
fn the_schema_is_versioned_and_a_newer_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("vigil.db");
    drop(SqliteStore::open(&db).unwrap());
    drop(SqliteStore::open(&db).unwrap());
    assert_eq!(count(&db, "SELECT max(version) FROM schema_version"), SCHEMA_VERSION);
    assert_eq!(count(&db, "SELECT count(*) FROM schema_version"), SCHEMA_VERSION);
    let conn = Connection::open(&db).unwrap();
    assert_eq!(
        conn.query_row("PRAGMA journal_mode", [], |r| r.get::<_, String>(0)).unwrap(),
        "wal"
    );
    assert_eq!(conn.query_row("PRAGMA auto_vacuum", [], |r| r.get::<_, i64>(0)).unwrap(), 2);
    conn.execute("INSERT INTO schema_version VALUES (99, 'later')", []).unwrap();
    drop(conn);
    let err = SqliteStore::open(&db).unwrap_err();
    assert!(err.to_string().contains("schema version 99 is newer"), "{err}");
}

#[test]
fn retention_by_age_and_size_removes_the_oldest_rows_step_by_step() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("vigil.db");
    let mut store = SqliteStore::open(&db).unwrap();
    let now = Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap();
    let old: Vec<Event> = (0..2_500)
        .map(|i| {
            line("s", i * 80, "203.0.113.9", "root")
                .with_timestamp(now - chrono::Duration::days(40))
        })
        .collect();
    let recent: Vec<Event> = (2_500..3_000)
        .map(|i| {
            line("s", i * 80, "203.0.113.9", "root").with_timestamp(now - chrono::Duration::days(1))
        })
        .collect();
    store.write(&old).unwrap();
    store.write(&recent).unwrap();
    store.set_retention(Retention {
        max_age: Some(Duration::from_secs(30 * 86_400)),
        max_bytes: None,
        step_rows: 1_000,
    });
    let first = store.prune_step(now).unwrap();
    assert_eq!(first, PruneReport { rows: 1_000, done: false }, "one bounded step");
    let rest = store.prune(now).unwrap();
    assert_eq!(rest.rows, 1_500);
    assert_eq!(count(&db, "SELECT count(*) FROM events"), 500);
    assert_eq!(store.prune(now).unwrap(), PruneReport { rows: 0, done: true });

    // By size: fill, then cap well below what is used.
    let many: Vec<Event> =
        (10_000..30_000).map(|i| line("t", i * 80, "198.51.100.7", "admin")).collect();
    store.write(&many).unwrap();
    let used = store.used_bytes().unwrap();
    let cap = used / 4;
    store.set_retention(Retention { max_age: None, max_bytes: Some(cap), step_rows: 2_000 });
    let report = store.prune(now).unwrap();
    assert!(report.rows > 0 && report.done);
    assert!(store.used_bytes().unwrap() <= cap, "{} > {cap}", store.used_bytes().unwrap());
    // The newest rows are the ones kept.
    let newest = count(
        &db,
        "SELECT max(line_offset) FROM events JOIN checkpoints c ON c.id = stream_id WHERE c.stream = 't'",
    );
    assert_eq!(newest, 29_999 * 80);
    let file = std::fs::metadata(&db).unwrap().len();
    assert!(file < used + (4 << 20), "freed pages go back to the file system: {file}");
}

#[test]
fn queries_are_read_only_and_clear_about_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("vigil.db");
    let err = ReadOnlyDb::open(&db).unwrap_err();
    assert!(matches!(err, StoreError::Missing { .. }), "{err}");
    assert!(!db.exists(), "a query never creates a database");
    let mut store = SqliteStore::open(&db).unwrap();
    store
        .write(&[line("s", 0, "203.0.113.9", "root"), line("s", 60, "203.0.113.9", "bob")])
        .unwrap();
    let ro = ReadOnlyDb::open(&db).unwrap();
    let mut rows = Vec::new();
    let columns = ro
        .query("SELECT ip, count(*) AS n FROM events GROUP BY ip", |_, row| {
            rows.push(row);
            Ok(())
        })
        .unwrap();
    assert_eq!(columns, ["ip", "n"]);
    assert_eq!(rows, [vec![SqlValue::Text("203.0.113.9".into()), SqlValue::Integer(2)]]);
    for sql in [
        "DELETE FROM events",
        "INSERT INTO events (id) VALUES ('x')",
        "CREATE TABLE x (a)",
        "DROP TABLE events",
        "PRAGMA journal_mode = DELETE",
        "VACUUM",
    ] {
        assert!(ro.query(sql, |_, _| Ok(())).is_err(), "{sql} must be refused");
    }
    let err = ro.query("DELETE FROM events", |_, _| Ok(())).unwrap_err();
    assert!(err.to_string().starts_with("only read-only statements are allowed"), "{err}");
    assert!(ro.query("ATTACH 'other.db' AS o", |_, _| Ok(())).is_err());
    assert!(!dir.path().join("other.db").exists());
    let err = ro.query("SELECT 1; DELETE FROM events", |_, _| Ok(())).unwrap_err();
    assert!(matches!(err, StoreError::InvalidQuery(_)), "{err}");
    let err = ro.query("SELEKT 1", |_, _| Ok(())).unwrap_err();
    assert!(err.to_string().contains("syntax error"), "{err}");
    assert_eq!(count(&db, "SELECT count(*) FROM events"), 2);
    let info = ro.info().unwrap();
    assert_eq!(info.schema_version, SCHEMA_VERSION);
    let events = info.tables.iter().find(|it| it.name == "events").unwrap();
    assert_eq!(events.rows, 2);
    assert!(info.size_bytes > 0);
}

#[test]
fn readers_see_consistent_counts_while_a_writer_commits() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("vigil.db");
    let mut store = SqliteStore::open(&db).unwrap();
    let writer = std::thread::spawn(move || {
        for batch in 0..50u64 {
            let events: Vec<Event> = (0..200)
                .map(|i| line("s", (batch * 200 + i) * 90, "203.0.113.9", "root"))
                .collect();
            store.write(&events).unwrap();
        }
    });
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let db = db.clone();
            std::thread::spawn(move || {
                let ro = ReadOnlyDb::open(&db).unwrap();
                let mut last = 0;
                let mut reads = 0;
                while last < 10_000 {
                    let mut n = 0;
                    ro.query("SELECT count(*) FROM events", |_, row| {
                        if let SqlValue::Integer(it) = row[0] {
                            n = it;
                        }
                        Ok(())
                    })
                    .unwrap();
                    assert!(n >= last && n % 200 == 0, "a reader sees whole batches: {n}");
                    last = n;
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    writer.join().unwrap();
    for reader in readers {
        assert!(reader.join().unwrap() >= 1);
    }
}

#[test]
fn a_locked_database_fails_clearly_and_works_again_once_released() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("vigil.db");
    let options =
        SqliteOptions { busy_timeout: Duration::from_millis(50), ..SqliteOptions::default() };
    let mut store = SqliteStore::open_with(&db, options).unwrap();
    let other = Connection::open(&db).unwrap();
    other.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let err = store.write(&[line("s", 0, "203.0.113.9", "root")]).unwrap_err();
    assert!(matches!(err, StoreError::Locked { .. }), "{err:?}");
    assert!(err.to_string().contains("locked by another process"), "{err}");
    assert!(err.is_transient());
    other.execute_batch("COMMIT").unwrap();
    store.write(&[line("s", 0, "203.0.113.9", "root")]).unwrap();
    assert_eq!(count(&db, "SELECT count(*) FROM events"), 1);
}

#[test]
fn detector_state_lives_in_its_table() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("vigil.db");
    let state = SqliteStateStore::open(&db).unwrap();
    assert_eq!(state.load("report").unwrap(), None);
    state.save("report", &serde_json::json!({"total": 3})).unwrap();
    state.save("report", &serde_json::json!({"total": 4})).unwrap();
    assert_eq!(state.load("report").unwrap(), Some(serde_json::json!({"total": 4})));
    let reopened = SqliteStateStore::open(&db).unwrap();
    assert_eq!(reopened.load("report").unwrap(), Some(serde_json::json!({"total": 4})));
    let store = SqliteStore::open(&db).unwrap();
    assert_eq!(store.load_state("report").unwrap(), Some(serde_json::json!({"total": 4})));
    Connection::open(&db)
        .unwrap()
        .execute("UPDATE detector_state SET value = '{oops' WHERE key = 'report'", [])
        .unwrap();
    let err = reopened.load("report").unwrap_err();
    assert!(err.to_string().contains("invalid state"), "{err}");
    let _ = Arc::new(reopened);
}

#[test]
fn the_default_config_stores_everything_under_the_state_dir() {
    let config: SqliteConfig = toml::from_str("").unwrap();
    assert_eq!(config, SqliteConfig::default());
    assert!(config.enabled);
    assert_eq!(config.path(std::path::Path::new("/s")), std::path::Path::new("/s/vigil.db"));
    let retention = config.retention();
    assert_eq!(retention.max_age, Some(Duration::from_secs(30 * 86_400)));
    let config: SqliteConfig =
        toml::from_str("retention_age = \"0s\"\nretention_max_bytes = 0\nsynchronous = \"normal\"")
            .unwrap();
    assert_eq!(config.retention().max_age, None);
    assert_eq!(config.retention().max_bytes, None);
    let err = toml::from_str::<SqliteConfig>("paht = \"x\"").unwrap_err();
    assert!(err.to_string().contains("unknown field `paht`"), "{err}");
    let zero = SqliteConfig { batch_size: 0, ..SqliteConfig::default() };
    assert!(zero.build(std::path::Path::new("/tmp")).is_err());
    let off = SqliteConfig { enabled: false, ..SqliteConfig::default() };
    assert!(off.build(std::path::Path::new("/nonexistent")).unwrap().is_none());
}

#[test]
fn times_are_stored_as_sortable_utc_text() {
    let time =
        Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap() + chrono::Duration::milliseconds(67);
    assert_eq!(store::time_text(&time), "2026-01-02T03:04:05.067Z");
    assert_eq!(store::time_text(&time), time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
    let far = Utc.with_ymd_and_hms(12026, 1, 1, 0, 0, 0).unwrap();
    assert_eq!(store::time_text(&far), far.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
}
