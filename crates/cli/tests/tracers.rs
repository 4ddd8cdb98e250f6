//! `vigil run` over a Django log with tracebacks, as a user runs it: each traceback is stored as
//! one error event with the right category and exception type, and `vigil report` then shows
//! the tracers' aggregates and recurring errors the agent saved; an agent killed with SIGKILL at
//! random moments while tracebacks are being written and joined stores every record once.

mod common;

use common::{XorShift, agent_run, quiet_agent_config, text, vigil};

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::Child,
    time::{Duration, Instant},
};

use serde_json::Value;

const INFO: &str = "2026-11-23 10:00:00,000 INFO django.server \"GET / HTTP/1.1\" 200 512\n";

fn traceback(second: u32) -> String {
    format!(
        "ERROR 2026-11-23 10:00:{second:02},123 log 1234 140 Internal Server Error: /orders/42\n\
         Traceback (most recent call last):\n  \
         File \"/srv/app/venv/lib/python3.11/site-packages/django/core/handlers/exception.py\", line 55, in inner\n    \
         response = get_response(request)\n  \
         File \"/srv/app/orders/views.py\", line 17, in detail\n    \
         order = ORDERS[pk]\n\
         KeyError: 'order'\n"
    )
}

fn write_config(dir: &Path, log: &Path) -> PathBuf {
    let config = dir.join("vigil.toml");
    let text = quiet_agent_config(dir, "traceback-test")
        + &format!(
            r#"
[sources.files.app]
paths = [{log:?}]
start_at = "beginning"
poll_interval = "20ms"
parser = "django"
multiline_timeout = "300ms"

[stores.sqlite]
flush_interval = "50ms"
"#,
            log = log.to_str().unwrap(),
        );
    std::fs::write(&config, text).unwrap();
    config
}

fn spawn(config: &Path) -> Child {
    agent_run(config).env("TZ", "UTC").spawn().unwrap()
}

fn stop(mut child: Child) {
    let pid = rustix::process::Pid::from_child(&child);
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let status = child.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(status.success(), "{status:?}: {err}");
}

fn log_rows(db: &Path) -> Vec<(String, String, i64, i64)> {
    let Ok(conn) = rusqlite::Connection::open(db) else { return Vec::new() };
    let Ok(mut stmt) = conn.prepare(
        "SELECT message, coalesce(enrichment, ''), line_offset, line_end FROM events \
         WHERE kind = 'log' ORDER BY line_offset",
    ) else {
        return Vec::new();
    };
    stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)))
        .map(|rows| rows.flatten().collect())
        .unwrap_or_default()
}

#[test]
fn a_django_traceback_is_one_error_event_and_report_shows_the_tracers() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let written = format!("{INFO}{}{INFO}{}", traceback(1), traceback(2));
    std::fs::write(&log, &written).unwrap();
    let config = write_config(dir.path(), &log);
    let db = dir.path().join("state/vigil.db");

    let child = spawn(&config);
    // The last traceback waits for a next line, then for the timeout, and is sent as it is.
    let deadline = Instant::now() + Duration::from_secs(30);
    while log_rows(&db).len() < 4 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut file = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    file.write_all(INFO.as_bytes()).unwrap();
    while log_rows(&db).len() < 5 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    stop(child);

    let rows = log_rows(&db);
    assert_eq!(rows.len(), 5, "2 + 1 request lines and 2 tracebacks: {rows:#?}");
    let errors: Vec<_> = rows.iter().filter(|it| it.0.contains("Traceback")).collect();
    assert_eq!(errors.len(), 2, "{rows:#?}");
    for (message, enrichment, offset, end) in errors {
        assert!(message.starts_with("Internal Server Error: /orders/42\nTraceback"), "{message}");
        assert!(message.ends_with("KeyError: 'order'"), "the whole traceback: {message}");
        assert_eq!((end - offset) as usize, traceback(1).len(), "the origin covers every line");
        let enrichment: Value = serde_json::from_str(enrichment).unwrap();
        assert_eq!(enrichment["fields"]["error_category"], "python_exception", "{enrichment}");
        let text = enrichment.to_string();
        assert!(text.contains("\"exception_type\":\"KeyError\""), "{text}");
        assert!(text.contains("\"file\":\"/srv/app/orders/views.py\""), "{text}");
        assert!(text.contains("\"line\":17"), "{text}");
    }

    let out = vigil(&["--config", config.to_str().unwrap(), "report", "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    for key in ["day", "sshd", "detectors"] {
        assert!(report.get(key).is_some(), "the existing key {key} stays: {report}");
    }
    let event = &report["tracers"]["event"];
    assert_eq!(event["events"], 5, "{report}");
    assert_eq!(event["by_source"]["django"], 5, "{event}");
    assert_eq!(event["by_level"]["error"], 2, "{event}");
    assert_eq!(event["by_action"]["server_error"], 2, "{event}");
    for key in ["by_ip", "by_user", "by_service"] {
        assert!(event[key].is_object(), "{key}: {event}");
    }
    let recurring = &report["tracers"]["error"]["recurring"];
    assert_eq!(recurring.as_array().map(Vec::len), Some(1), "{report}");
    assert_eq!(recurring[0]["count"], 2);
    assert_eq!(recurring[0]["category"], "python_exception");
    assert_eq!(recurring[0]["exception_type"], "KeyError");
    assert_eq!(recurring[0]["first_seen"], "2026-11-23T10:00:01Z");
    assert_eq!(recurring[0]["last_seen"], "2026-11-23T10:00:02Z");

    let out = vigil(&["--config", config.to_str().unwrap(), "report"]).output().unwrap();
    let shown = text(&out.stdout);
    assert!(shown.contains("tracer event"), "{shown}");
    assert!(shown.contains("tracer error"), "{shown}");
    assert!(shown.contains("2x python_exception"), "{shown}");

    // A second run adds to what the first one saved.
    let child = spawn(&config);
    let mut file = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    file.write_all(format!("{}{INFO}", traceback(3)).as_bytes()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while log_rows(&db).len() < 7 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    stop(child);
    let out = vigil(&["--config", config.to_str().unwrap(), "report", "--json"]).output().unwrap();
    let again: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(again["tracers"]["since"], report["tracers"]["since"]);
    assert_eq!(again["tracers"]["event"]["events"], 7, "{again}");
    let recurring = &again["tracers"]["error"]["recurring"];
    assert_eq!(recurring[0]["count"], 3, "{again}");
    assert_eq!(recurring[0]["first_seen"], "2026-11-23T10:00:01Z");
    assert_eq!(recurring[0]["last_seen"], "2026-11-23T10:00:03Z");
}

/// Record `n` of the generated log: a request line, or (every third) a traceback naming `n`.
fn record(n: u64) -> String {
    if n % 3 == 2 {
        traceback(0).replace("/orders/42", &format!("/orders/{n}"))
    } else {
        INFO.replace("GET /", &format!("GET /{n}"))
    }
}

#[test]
fn sigkill_while_tracebacks_are_held_loses_and_duplicates_no_record() {
    use std::sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    };
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    std::fs::write(&log, "").unwrap();
    let config = write_config(dir.path(), &log);
    let mut toml = std::fs::read_to_string(&config).unwrap();
    toml = toml.replace("multiline_timeout = \"300ms\"", "multiline_timeout = \"1s\"");
    std::fs::write(&config, toml).unwrap();
    let db = dir.path().join("state/vigil.db");

    // A writer appends records in chunks that split lines and tracebacks anywhere.
    let stop_writing = Arc::new(AtomicBool::new(false));
    let writer = {
        let (stop_writing, log) = (stop_writing.clone(), log.clone());
        std::thread::spawn(move || {
            let mut rng = XorShift(0x2545_f491_4f6c_dd1d ^ u64::from(std::process::id()));
            let mut file = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
            let (mut text, mut written, mut n) = (String::new(), 0, 0);
            while !stop_writing.load(Ordering::Relaxed) {
                while text.len() < written + 400 {
                    text.push_str(&record(n));
                    n += 1;
                }
                let to = written + 1 + rng.below(300) as usize;
                file.write_all(&text.as_bytes()[written..to]).unwrap();
                written = to;
                std::thread::sleep(Duration::from_millis(5));
            }
            // Finish the record being written (whole records were queued): it ends the log.
            let mut end = 0;
            for it in 0..n {
                end += record(it).len();
                if end >= written {
                    break;
                }
            }
            file.write_all(&text.as_bytes()[written..end]).unwrap();
            text.truncate(end);
            text
        })
    };

    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15 ^ u64::from(std::process::id()));
    for _ in 0..8 {
        let mut child = spawn(&config);
        std::thread::sleep(Duration::from_millis(150 + rng.below(600)));
        let pid = rustix::process::Pid::from_child(&child);
        rustix::process::kill_process(pid, rustix::process::Signal::KILL).unwrap();
        child.wait().unwrap();
    }
    stop_writing.store(true, Ordering::Relaxed);
    let text = writer.join().unwrap();
    let mut joiner = vigil_enrich::error::Joiner::default();
    let mut expected: Vec<String> = text.lines().filter_map(|it| joiner.push(it)).collect();
    expected.extend(joiner.finish());

    // A last run catches up; the last record is sent once the timeout passed.
    let child = spawn(&config);
    let deadline = Instant::now() + Duration::from_secs(60);
    while log_rows(&db).len() < expected.len() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    stop(child);
    let conn = rusqlite::Connection::open(&db).unwrap();
    let mut stmt =
        conn.prepare("SELECT raw FROM events WHERE kind = 'log' ORDER BY line_offset").unwrap();
    let stored: Vec<String> =
        stmt.query_map([], |row| row.get(0)).unwrap().collect::<Result<_, _>>().unwrap();
    eprintln!("{} records written over 8 killed runs", expected.len());
    assert!(expected.len() > 20, "the writer wrote records: {}", expected.len());
    assert_eq!(stored.len(), expected.len(), "every record stored once");
    assert_eq!(stored, expected, "each record whole, in order");
}
