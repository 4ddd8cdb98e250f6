//! The store as a user meets it: `vigil run` writing a growing auth.log into SQLite while it is
//! killed with SIGKILL at random moments and restarted (every line stored exactly once),
//! `vigil query` reading meanwhile and refusing writes, and `vigil db info` / `vigil db prune`.

mod common;

use common::{XorShift, agent_run, quiet_agent_config, text, vigil};

use std::{
    collections::HashSet,
    io::Write,
    path::{Path, PathBuf},
    process::{Child, Command, Output},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

fn output(cmd: &mut Command) -> Output {
    cmd.output().expect("vigil runs")
}

/// Line `n` of the generated auth.log: unique by its user name.
fn auth_line(n: u64) -> String {
    format!(
        "Nov 23 10:{:02}:{:02} web1 sshd[{}]: Failed password for invalid user u{n} from 203.0.113.{} port {} ssh2\n",
        (n / 60) % 60,
        n % 60,
        1000 + n % 5000,
        n % 250 + 1,
        1024 + n % 60_000
    )
}

fn write_config(dir: &Path, log: &Path) -> PathBuf {
    let config = dir.join("vigil.toml");
    let text = quiet_agent_config(dir, "crash-test")
        + &format!(
            r#"
[sources.files.auth]
paths = [{log:?}]
start_at = "beginning"
poll_interval = "20ms"
parser = "sshd"
max_in_flight_lines = 2000

[stores.sqlite]
batch_size = 300
flush_interval = "50ms"
synchronous = "normal"
"#,
            log = log.to_str().unwrap(),
        );
    std::fs::write(&config, text).unwrap();
    config
}

fn spawn(config: &Path) -> Child {
    agent_run(config).spawn().unwrap()
}

fn kill(child: &mut Child, signal: rustix::process::Signal) {
    rustix::process::kill_process(rustix::process::Pid::from_child(child), signal).unwrap();
}

/// The number `vigil query` prints for a one-value query (0 while there is no database yet).
fn query_count(config: &Path, sql: &str) -> Option<u64> {
    let out = output(&mut vigil(&["--config", config.to_str().unwrap(), "query", "--csv", sql]));
    if !out.status.success() {
        let err = text(&out.stderr);
        assert!(err.contains("no database here"), "a reader never fails otherwise: {err}");
        return None;
    }
    let stdout = text(&out.stdout);
    stdout.lines().nth(1).and_then(|it| it.trim().parse().ok())
}

#[test]
fn sigkill_at_random_moments_loses_and_duplicates_no_line() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("auth.log");
    std::fs::write(&log, "").unwrap();
    let config = write_config(dir.path(), &log);

    // A writer appends lines steadily while the agent is killed and restarted.
    let written = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (written, stop, log) = (written.clone(), stop.clone(), log.clone());
        std::thread::spawn(move || {
            let mut file = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let mut chunk = String::new();
                for _ in 0..20 {
                    chunk.push_str(&auth_line(n));
                    n += 1;
                }
                file.write_all(chunk.as_bytes()).unwrap();
                written.store(n, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };

    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15 ^ u64::from(std::process::id()));
    let mut seen = 0;
    let rounds = 12;
    for _ in 0..rounds {
        let mut child = spawn(&config);
        std::thread::sleep(Duration::from_millis(150 + rng.below(700)));
        // A reader while the agent writes: counts only grow, and reading never blocks it.
        if let Some(n) = query_count(&config, "SELECT count(*) FROM events WHERE kind = 'log'") {
            assert!(n >= seen, "a reader saw {n} rows after {seen}");
            seen = n;
        }
        kill(&mut child, rustix::process::Signal::KILL);
        child.wait().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    let total = written.load(Ordering::Relaxed);
    assert!(seen > 0, "the agent stored lines between kills");

    // A last run catches up, then stops gracefully.
    let mut child = spawn(&config);
    let caught_up = wait_for(|| {
        query_count(&config, "SELECT count(*) FROM events WHERE kind = 'log'") == Some(total)
    });
    eprintln!("{total} lines written over {rounds} killed runs; {seen} stored while running");
    kill(&mut child, rustix::process::Signal::TERM);
    let status = child.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(status.success(), "{status:?}: {err}");
    assert!(caught_up, "the last run stores every line: {err}");

    let db = dir.path().join("state/vigil.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    let mut stmt = conn.prepare("SELECT raw FROM events WHERE kind = 'log'").unwrap();
    let stored: Vec<String> =
        stmt.query_map([], |row| row.get(0)).unwrap().collect::<Result<_, _>>().unwrap();
    let unique: HashSet<&str> = stored.iter().map(String::as_str).collect();
    assert_eq!(unique.len(), stored.len(), "no line is stored twice");
    let expected: HashSet<String> =
        (0..total).map(|n| auth_line(n).trim_end().to_owned()).collect();
    let missing = expected.iter().filter(|it| !unique.contains(it.as_str())).count();
    assert_eq!(missing, 0, "no line is lost ({} of {total} stored)", stored.len());
    assert_eq!(stored.len() as u64, total);
    // The lines were parsed on the way in.
    let failed: i64 = conn
        .query_row(
            "SELECT count(*) FROM events WHERE action = 'failed_password_invalid' \
             AND user LIKE 'u%' AND ip LIKE '203.0.113.%'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(failed as u64, total);
}

/// A database with a few stored lines, findings and bans, written through the library.
fn sample_db(dir: &Path) -> PathBuf {
    use vigil_core::event::{Ban, BanStage, Event, Evidence, LineOrigin, LogEvent, Payload};
    let db = dir.join("sample.db");
    let mut store = vigil_store::sqlite::SqliteStore::open(&db).unwrap();
    let mut events = Vec::new();
    for (n, (ip, user)) in
        [("203.0.113.9", "root"), ("203.0.113.9", "admin"), ("198.51.100.7", "root")]
            .into_iter()
            .enumerate()
    {
        let message = format!("Failed password for {user} from {ip} port 22 ssh2");
        let offset = n as u64 * 100;
        events.push(Event::new(
            "web-1",
            "files.auth",
            Payload::Log(LogEvent {
                action: Some("failed_password".into()),
                ip: ip.parse().ok(),
                user: Some(user.into()),
                origin: Some(LineOrigin { stream: "file:1:2:ab".into(), offset, end: offset + 60 }),
                ..LogEvent::new("sshd", message)
            }),
        ));
    }
    let mut ban = Ban::request("203.0.113.9", "sshd", chrono::Utc::now());
    ban.stage = BanStage::Banned;
    ban.evidence = Evidence {
        rule: "jail sshd: maxretry 2 within findtime 600s".into(),
        count: 2,
        lines: vec!["Failed password for root from 203.0.113.9, \"quoted\"".into()],
        ..Evidence::default()
    };
    events.push(Event::new("web-1", "bans", Payload::Ban(ban)));
    store.write(&events).unwrap();
    db
}

#[test]
fn query_prints_tables_json_and_csv_and_refuses_writes() {
    let dir = tempfile::tempdir().unwrap();
    let db = sample_db(dir.path());
    let db_arg = db.to_str().unwrap();
    let top = "SELECT ip, count(*) AS attempts FROM events WHERE action = 'failed_password' \
               GROUP BY ip ORDER BY attempts DESC";
    let out = output(&mut vigil(&["query", top, "--db", db_arg]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "ip            attempts\n203.0.113.9          2\n198.51.100.7         1\n"
    );
    assert_eq!(text(&out.stderr), "(2 rows)\n");

    let out = output(&mut vigil(&["query", top, "--db", db_arg, "--json"]));
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        rows,
        serde_json::json!([
            {"ip": "203.0.113.9", "attempts": 2},
            {"ip": "198.51.100.7", "attempts": 1}
        ])
    );

    let bans = "SELECT ip, stage, evidence_rule, json_extract(evidence, '$.lines[0]') AS line \
                FROM bans";
    let out = output(&mut vigil(&["query", bans, "--db", db_arg, "--csv"]));
    assert_eq!(
        text(&out.stdout),
        "ip,stage,evidence_rule,line\r\n203.0.113.9,banned,jail sshd: maxretry 2 within findtime 600s,\
         \"Failed password for root from 203.0.113.9, \"\"quoted\"\"\"\r\n"
    );

    for write in ["DELETE FROM events", "UPDATE bans SET ip = 'x'", "DROP TABLE events"] {
        let out = output(&mut vigil(&["query", write, "--db", db_arg]));
        assert_eq!(out.status.code(), Some(2), "{write}: {}", text(&out.stderr));
        assert!(text(&out.stderr).contains("only read-only statements"), "{}", text(&out.stderr));
    }
    let out = output(&mut vigil(&["query", "SELEKT", "--db", db_arg]));
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("invalid query"), "{}", text(&out.stderr));
    let missing = dir.path().join("none.db");
    let out = output(&mut vigil(&["query", "SELECT 1", "--db", missing.to_str().unwrap()]));
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("no database here"), "{}", text(&out.stderr));
    assert!(!missing.exists());
    let conn = rusqlite::Connection::open(&db).unwrap();
    let n: i64 = conn.query_row("SELECT count(*) FROM events", [], |r| r.get(0)).unwrap();
    assert_eq!(n, 4, "nothing was changed");
}

#[test]
fn db_info_and_prune() {
    let dir = tempfile::tempdir().unwrap();
    let db = sample_db(dir.path());
    let db_arg = db.to_str().unwrap();
    let out = output(&mut vigil(&["db", "info", "--db", db_arg, "--json"]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info["schema_version"], 1);
    assert_eq!(info["tables"]["events"], 4);
    assert_eq!(info["tables"]["bans"], 1);
    assert!(info["size_bytes"].as_u64().unwrap() > 0);
    let out = output(&mut vigil(&["db", "info", "--db", db_arg]));
    let human = text(&out.stdout);
    assert!(human.contains("schema version  1") && human.contains("events"), "{human}");

    // Nothing is a day old: the default retention keeps everything; 0s removes everything.
    let out = output(&mut vigil(&["db", "prune", "--db", db_arg, "--json"]));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["rows_removed"], 0, "{}", text(&out.stderr));
    std::thread::sleep(Duration::from_millis(20));
    let out = output(&mut vigil(&["db", "prune", "--db", db_arg, "--older-than", "1ms"]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("removed 5 rows"), "{}", text(&out.stdout));
    let out = output(&mut vigil(&["db", "info", "--db", db_arg, "--json"]));
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info["tables"]["events"], 0);
}

#[test]
fn every_example_query_of_the_schema_page_runs() {
    let dir = tempfile::tempdir().unwrap();
    let db = sample_db(dir.path());
    let page =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/schema.md"))
            .unwrap();
    let queries: Vec<&str> =
        page.split("```sql\n").skip(1).filter_map(|it| it.split("```").next()).collect();
    assert!(queries.len() >= 3, "the page has example queries");
    for sql in queries {
        let out = output(&mut vigil(&["query", sql, "--db", db.to_str().unwrap(), "--json"]));
        assert!(out.status.success(), "{sql}\n{}", text(&out.stderr));
        let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(rows.is_array());
        if sql.contains("FROM bans AS b") {
            assert_eq!(rows[0]["evidence_rule"], "jail sshd: maxretry 2 within findtime 600s");
            assert_eq!(
                rows[0]["evidence_line"],
                "Failed password for root from 203.0.113.9, \"quoted\""
            );
        }
    }
}

/// Polls `check` every 100 ms for up to 30 s.
fn wait_for(mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

#[test]
fn a_locked_database_is_reported_and_the_lines_land_once_it_is_released() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("auth.log");
    std::fs::write(&log, auth_line(0)).unwrap();
    let config = write_config(dir.path(), &log);
    // A second destination at once: JSON lines, one file per day.
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "\n[stores.json_files.archive]\npath = {:?}\nmode = \"lines\"\ntag = \"auth\"\n\
         flush_interval = \"50ms\"\nbatch_size = 100\n",
        dir.path().join("json/%TAG-%YYYY%MM%DD.jsonl").to_str().unwrap()
    ));
    text = text.replace("[stores.sqlite]\n", "[stores.sqlite]\nbusy_timeout = \"50ms\"\n");
    std::fs::write(&config, text).unwrap();
    let db = dir.path().join("state/vigil.db");
    let stored =
        || query_count(&config, "SELECT count(*) FROM events WHERE kind = 'log'").unwrap_or(0);

    let mut child = spawn(&config);
    assert!(wait_for(|| stored() == 1), "the first line is stored");
    // Another process takes the database; the agent keeps reading into its buffer.
    let lock = rusqlite::Connection::open(&db).unwrap();
    lock.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let mut file = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    for n in 1..200 {
        file.write_all(auth_line(n).as_bytes()).unwrap();
    }
    std::thread::sleep(Duration::from_secs(2));
    let count: i64 =
        lock.query_row("SELECT count(*) FROM events WHERE kind = 'log'", [], |r| r.get(0)).unwrap();
    assert_eq!(count, 1, "nothing is written while the lock is held");
    lock.execute_batch("COMMIT").unwrap();
    drop(lock);
    assert!(wait_for(|| stored() == 200), "every line lands once the lock is gone");
    kill(&mut child, rustix::process::Signal::TERM);
    let status = child.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(status.success(), "{status:?}: {err}");
    assert!(err.contains("locked by another process"), "a clear error is logged: {err}");
    // The JSON lines destination got every line too.
    let json = std::fs::read_dir(dir.path().join("json")).unwrap();
    let mut lines = 0;
    for entry in json {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        lines += text.lines().count();
    }
    assert!(lines >= 200, "the JSON lines destination has every line ({lines})");
}

#[test]
fn a_store_that_filters_log_lines_out_never_holds_the_file_back() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("auth.log");
    // More lines than may be in flight unacknowledged (2000).
    let text: String = (0..3_000).map(auth_line).collect();
    std::fs::write(&log, &text).unwrap();
    let config = write_config(dir.path(), &log);
    let mut toml = std::fs::read_to_string(&config).unwrap();
    toml.push_str("filter = { kinds = [\"finding\"] }\n");
    std::fs::write(&config, toml).unwrap();
    let mut child = spawn(&config);
    let checkpoint = dir.path().join("state/checkpoints/files.auth.json");
    let want = format!("\"offset\": {}", text.len());
    let done = wait_for(|| std::fs::read_to_string(&checkpoint).is_ok_and(|it| it.contains(&want)));
    kill(&mut child, rustix::process::Signal::TERM);
    child.wait().unwrap();
    assert!(done, "the checkpoint reaches the end of the file");
    let logs = query_count(&config, "SELECT count(*) FROM events WHERE kind = 'log'");
    assert_eq!(logs, Some(0), "the store kept only what its filter accepts");
    let findings =
        query_count(&config, "SELECT count(*) FROM findings WHERE source = 'report'").unwrap();
    assert_eq!(findings, 3_000, "the report detector's findings were stored");
}
