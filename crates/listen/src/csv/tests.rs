//! Behaviour tests of the CSV listener: real files read back column by column.

use std::{fs, os::unix::fs::PermissionsExt, path::Path, sync::Arc};

use chrono::{TimeZone, Utc};
use vigil_core::{Filter, Listener};
use vigil_event::{
    AuditSchema, Ban, BanStage, Event, EventKind, Evidence, Finding, FindingLevel, LogEvent,
    Payload, Value,
};

use super::{BAN_COLUMNS, CsvConfig, CsvListener, FINDING_COLUMNS};

const LOGINS: AuditSchema =
    AuditSchema { name: "ssh_logins", fields: &["user", "ip", "count", "note"] };
const DAILY: AuditSchema = AuditSchema { name: "ssh_daily", fields: &["day", "failed"] };

fn login(user: &str, count: i64, note: Value) -> Arc<Event> {
    let record = LOGINS
        .record([
            ("note", note),
            ("count", count.into()),
            ("user", user.into()),
            ("ip", "203.0.113.9".into()),
        ])
        .unwrap();
    Arc::new(Event::new("web-1", "sshd", Payload::Audit(record)))
}

fn listener(dir: &Path) -> CsvListener {
    let filter = Filter::any().kinds([EventKind::Audit, EventKind::Finding, EventKind::Ban]);
    CsvConfig { dir: dir.to_owned(), filter, ..CsvConfig::default() }.build().unwrap().unwrap()
}

/// Every record of `path`, header included, parsed back with an RFC 4180 reader.
fn read(path: &Path) -> Vec<Vec<String>> {
    let mut reader =
        csv::ReaderBuilder::new().has_headers(false).from_path(path).unwrap_or_else(|err| {
            panic!("{}: {err}", path.display());
        });
    reader.records().map(|it| it.unwrap().iter().map(str::to_owned).collect()).collect()
}

#[tokio::test]
async fn one_file_per_record_type_with_a_header_and_quoted_cells() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = listener(dir.path());
    let daily = DAILY.record([("day", Value::from("2026-11-23")), ("failed", 12.into())]).unwrap();
    let log = Event::new("web-1", "auth", Payload::Log(LogEvent::new("sshd", "ignored")));
    csv.handle(&[
        login("root", 3, Value::Null),
        login("a,b \"quoted\"\nnext line", 1, serde_json::json!(["x", 1])),
        Arc::new(Event::new("web-1", "sshd", Payload::Audit(daily))),
        Arc::new(log),
    ])
    .await
    .unwrap();
    // Rows are in the file when `handle` returns.
    let rows = read(&dir.path().join("ssh_logins.csv"));
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert_eq!(rows[0], ["user", "ip", "count", "note"]);
    assert_eq!(rows[1], ["root", "203.0.113.9", "3", ""]);
    assert_eq!(rows[2], ["a,b \"quoted\"\nnext line", "203.0.113.9", "1", "[\"x\",1]"]);
    let raw = fs::read_to_string(dir.path().join("ssh_logins.csv")).unwrap();
    assert!(raw.starts_with("user,ip,count,note\nroot,203.0.113.9,3,\n\"a,b \"\"quoted\"\"\nnext"));

    assert_eq!(
        read(&dir.path().join("ssh_daily.csv")),
        [vec!["day", "failed"], vec!["2026-11-23", "12"]]
    );
    // Nothing but the two record types (log events are not written).
    let mut names: Vec<String> = fs::read_dir(dir.path())
        .unwrap()
        .map(|it| it.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["ssh_daily.csv", "ssh_logins.csv"]);
    let mode = fs::metadata(dir.path().join("ssh_daily.csv")).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o640);
    csv.flush().await.unwrap();
}

#[tokio::test]
async fn a_restart_appends_without_a_second_header() {
    let dir = tempfile::tempdir().unwrap();
    for count in 1..=3 {
        let mut csv = listener(dir.path());
        csv.handle(&[login("root", count, Value::Null)]).await.unwrap();
        csv.flush().await.unwrap();
    }
    let rows = read(&dir.path().join("ssh_logins.csv"));
    assert_eq!(rows.len(), 4, "{rows:?}");
    assert_eq!(rows[0], ["user", "ip", "count", "note"]);
    let counts: Vec<&str> = rows[1..].iter().map(|it| it[2].as_str()).collect();
    assert_eq!(counts, ["1", "2", "3"]);

    // An empty file (left by a crash before the header) gets the header.
    fs::write(dir.path().join("ssh_daily.csv"), "").unwrap();
    let daily = DAILY.record([("day", Value::from("d")), ("failed", 0.into())]).unwrap();
    let mut csv = listener(dir.path());
    csv.handle(&[Arc::new(Event::new("h", "s", Payload::Audit(daily)))]).await.unwrap();
    assert_eq!(read(&dir.path().join("ssh_daily.csv")), [vec!["day", "failed"], vec!["d", "0"]]);
}

#[tokio::test]
async fn a_file_with_another_header_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ssh_logins.csv");
    fs::write(&path, "user,ip\nold,row\n").unwrap();
    let mut csv = listener(dir.path());
    let daily = DAILY.record([("day", Value::from("d")), ("failed", 0.into())]).unwrap();
    let err = csv
        .handle(&[
            login("root", 1, Value::Null),
            Arc::new(Event::new("h", "s", Payload::Audit(daily))),
        ])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("differs from the columns"), "{err}");
    assert!(err.to_string().contains("ssh_logins.csv"), "{err}");
    assert_eq!(fs::read_to_string(&path).unwrap(), "user,ip\nold,row\n");
    // The rest of the batch was written.
    assert_eq!(read(&dir.path().join("ssh_daily.csv")).len(), 2);
}

#[tokio::test]
async fn unsafe_record_types_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let schema = AuditSchema { name: "../escape", fields: &["a"] };
    let record = schema.record([("a", Value::from(1))]).unwrap();
    let mut csv = listener(&dir.path().join("csv"));
    let err =
        csv.handle(&[Arc::new(Event::new("h", "s", Payload::Audit(record)))]).await.unwrap_err();
    assert!(err.to_string().contains("not a snake_case name"), "{err}");
    assert!(!dir.path().join("escape.csv").exists());
}

#[tokio::test]
async fn findings_and_bans_have_fixed_columns() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = listener(dir.path());
    let at = Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap();
    let evidence = Evidence {
        rule: "jail sshd: maxretry 5 within findtime 600s".into(),
        count: 6,
        window_seconds: 600,
        ..Evidence::default()
    };
    let finding = Finding::new(FindingLevel::Error, "SSHLoginTriesExceeded", "sshd", "6 tries")
        .with_data("ip", "203.0.113.9")
        .with_record("Failed password for =cmd|' /C calc'!A0")
        .with_evidence(evidence.clone());
    let finding = Event::new("web-1", "ssh", Payload::Finding(finding)).with_timestamp(at);
    let ban = Ban {
        stage: BanStage::Banned,
        until: Some(at + chrono::Duration::seconds(600)),
        failures: 6,
        bantime_seconds: 600,
        dry_run: false,
        evidence,
        ..Ban::request("203.0.113.9", "sshd", at)
    };
    let ban = Event::new("web-1", "bans", Payload::Ban(ban)).with_timestamp(at);
    let (finding_id, ban_id) = (finding.id.to_string(), ban.id.to_string());
    csv.handle(&[Arc::new(finding), Arc::new(ban)]).await.unwrap();

    let rows = read(&dir.path().join("findings.csv"));
    assert_eq!(rows[0], FINDING_COLUMNS);
    assert_eq!(
        rows[1],
        [
            "2026-11-23T10:00:00+00:00",
            "web-1",
            "ssh",
            "error",
            "SSHLoginTriesExceeded",
            "sshd",
            "6 tries",
            "",
            "{\"ip\":\"203.0.113.9\"}",
            "Failed password for =cmd|' /C calc'!A0",
            "jail sshd: maxretry 5 within findtime 600s",
            "6",
            finding_id.as_str(),
        ]
    );
    let rows = read(&dir.path().join("bans.csv"));
    assert_eq!(rows[0], BAN_COLUMNS);
    assert_eq!(
        rows[1],
        [
            "2026-11-23T10:00:00+00:00",
            "web-1",
            "bans",
            "banned",
            "203.0.113.9",
            "sshd",
            "2026-11-23T10:00:00+00:00",
            "2026-11-23T10:10:00+00:00",
            "6",
            "600",
            "0",
            "false",
            "",
            "jail sshd: maxretry 5 within findtime 600s",
            "6",
            "600",
            ban_id.as_str(),
        ]
    );
}

#[tokio::test]
async fn formula_like_text_is_escaped_unless_turned_off() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = listener(dir.path());
    csv.handle(&[login("=HYPERLINK(\"x\")", -5, Value::from("-3.5"))]).await.unwrap();
    let rows = read(&dir.path().join("ssh_logins.csv"));
    // Text gets a leading quote; numbers (and text that is a number) stay as they are.
    assert_eq!(rows[1], ["'=HYPERLINK(\"x\")", "203.0.113.9", "-5", "-3.5"]);

    let dir = tempfile::tempdir().unwrap();
    let config =
        CsvConfig { dir: dir.path().to_owned(), escape_formulas: false, ..CsvConfig::default() };
    let mut csv = config.build().unwrap().unwrap();
    csv.handle(&[login("=1+1", 1, Value::Null)]).await.unwrap();
    assert_eq!(read(&dir.path().join("ssh_logins.csv"))[1][0], "=1+1");
}

#[test]
fn an_unusable_directory_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("file");
    fs::write(&blocker, "").unwrap();
    let config = CsvConfig { dir: blocker.join("csv"), ..CsvConfig::default() };
    assert!(config.build().is_err());
    let config = CsvConfig { dir: "".into(), ..CsvConfig::default() };
    assert_eq!(config.build().unwrap_err().to_string(), "invalid configuration: csv dir is empty");
}
