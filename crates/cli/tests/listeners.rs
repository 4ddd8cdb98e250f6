//! `vigil run` end to end through the listeners of issue 7: lines appended to a followed auth.log
//! become Report findings that reach a real HTTP server on 127.0.0.1 as Slack-shaped webhooks
//! (after a retried `500`) and rows of `findings.csv`; a template syntax error in the
//! configuration is a configuration error (exit status 2) at the key's file, line and column.

mod common;

use common::vigil;

use std::{
    io::{Read, Write},
    path::Path,
    process::{Output, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

/// A real HTTP server on 127.0.0.1: answers `500` to the first request and `200` to the rest,
/// keeping every body.
fn start_server() -> (u16, Arc<Mutex<Vec<String>>>) {
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let port = server.server_addr().to_ip().unwrap().port();
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let kept = Arc::clone(&bodies);
    std::thread::spawn(move || {
        let mut first = true;
        for mut request in server.incoming_requests() {
            let mut body = String::new();
            request.as_reader().read_to_string(&mut body).unwrap();
            kept.lock().unwrap().push(body);
            let status = if std::mem::take(&mut first) { 500 } else { 200 };
            let _ = request.respond(tiny_http::Response::from_string("").with_status_code(status));
        }
    });
    (port, bodies)
}

const LINES: [&str; 3] = [
    "Nov 23 10:00:00 web1 sshd[42]: Failed password for root from 203.0.113.9 port 22 ssh2",
    "Nov 23 10:00:01 web1 sshd[42]: Failed password for invalid user a,b\"c from 203.0.113.9 port 22 ssh2",
    "Nov 23 10:00:02 web1 sshd[43]: Accepted publickey for deploy from 198.51.100.4 port 50022 ssh2",
];

fn write_config(dir: &Path, port: u16) -> std::path::PathBuf {
    let config = format!(
        r#"
[agent]
state_dir = {state:?}

[runtime]
flush_interval = "100ms"

[sources.system]
enabled = false

[sources.network]
enabled = false

[sources.process]
enabled = false

[sources.files.auth]
paths = [{log:?}]
start_at = "beginning"
poll_interval = "20ms"

[listeners.webhook.slack]
url = "http://127.0.0.1:{port}/services/T0/B0/SECRET"
format = "slack"
message = "{{{{ name }}}} {{{{ severity }}}}: {{{{ event.payload.record }}}}{{{{ event.payload.nope.deeper }}}}"
initial_backoff = "50ms"
filter = {{ kinds = ["finding"] }}

[listeners.csv.findings]
dir = {csv:?}
filter = {{ kinds = ["finding"] }}
"#,
        state = dir.join("state").to_str().unwrap(),
        log = dir.join("auth.log").to_str().unwrap(),
        csv = dir.join("csv").to_str().unwrap(),
    );
    let path = dir.join("vigil.toml");
    std::fs::write(&path, config).unwrap();
    path
}

/// The Slack texts received so far.
fn texts(bodies: &Mutex<Vec<String>>) -> Vec<String> {
    bodies
        .lock()
        .unwrap()
        .iter()
        .map(|it| {
            let value: serde_json::Value = serde_json::from_str(it).expect("a JSON body");
            assert_eq!(value.as_object().unwrap().len(), 1, "only `text`: {value}");
            value["text"].as_str().unwrap().to_owned()
        })
        .collect()
}

#[test]
fn appended_lines_reach_a_webhook_and_a_csv_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("auth.log"), format!("{}\n", LINES[0])).unwrap();
    let (port, bodies) = start_server();
    let config = write_config(dir.path(), port);
    let mut child = vigil(&["--config", config.to_str().unwrap(), "run"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    let expected: Vec<String> = LINES.iter().map(|it| format!("Report notice: {it}")).collect();
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut appended = false;
    loop {
        let texts = texts(&bodies);
        let delivered: Vec<&String> = texts.iter().filter(|it| expected.contains(it)).collect();
        if !appended && !delivered.is_empty() {
            let mut file =
                std::fs::OpenOptions::new().append(true).open(dir.path().join("auth.log")).unwrap();
            file.write_all(format!("{}\n{}\n", LINES[1], LINES[2]).as_bytes()).unwrap();
            appended = true;
        }
        if expected.iter().all(|it| texts.contains(it)) {
            break;
        }
        assert!(Instant::now() < deadline, "webhooks so far: {texts:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    rustix::process::kill_process(
        rustix::process::Pid::from_child(&child),
        rustix::process::Signal::TERM,
    )
    .unwrap();
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    assert!(status.success(), "{status:?}\n{stderr}");

    // The first delivery met a 500 and was retried: the first text arrived twice, nothing lost.
    let texts = texts(&bodies);
    assert_eq!(texts[0], texts[1], "{texts:?}");
    assert_eq!(texts.iter().filter(|it| **it == expected[0]).count(), 2, "{texts:?}");
    assert!(!stderr.contains("SECRET"), "the URL's path is never logged: {stderr}");

    // findings.csv: the documented header, then one row per line, column by column.
    let mut reader = csv_rows(&dir.path().join("csv/findings.csv"));
    let header = reader.remove(0);
    assert_eq!(header, vigil_listen_columns());
    let col = |name: &str| header.iter().position(|it| it == name).unwrap();
    assert_eq!(reader.len(), 3, "{reader:?}");
    for (row, line) in reader.iter().zip(LINES) {
        assert_eq!(row.len(), header.len());
        assert_eq!(row[col("name")], "Report");
        assert_eq!(row[col("severity")], "notice");
        assert_eq!(row[col("source")], "report");
        assert_eq!(row[col("record")], line);
        assert_eq!(row[col("event_id")].len(), 36);
        assert!(row[col("timestamp")].ends_with("+00:00"));
    }
}

#[test]
fn a_template_syntax_error_is_a_configuration_error_at_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vigil.toml");
    std::fs::write(
        &path,
        "[listeners.webhook.oncall]\nurl = \"https://h.example/x\"\nmessage = \"{{ summary \"\n",
    )
    .unwrap();
    for args in [vec!["config", "check"], vec!["run"]] {
        let mut full = vec!["--config", path.to_str().unwrap()];
        full.extend(args);
        let out: Output = vigil(&full).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{full:?}: {stderr}");
        assert!(stderr.contains("template syntax error"), "{stderr}");
        // The position is the `message` key inside `[listeners.webhook.oncall]`, with a snippet.
        assert!(stderr.contains("vigil.toml:3:11: template syntax error: "), "{stderr}");
        assert!(stderr.contains("3 | message = \"{{ summary \""), "{stderr}");
    }

    // A listener that cannot work (a relative program) is also exit 2, naming the instance.
    std::fs::write(&path, "[listeners.exec.page]\nprogram = \"page-me\"\n").unwrap();
    let out = vigil(&["--config", path.to_str().unwrap(), "run"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("listener exec.page") && stderr.contains("absolute path"), "{stderr}");
}

/// The columns `findings.csv` documents (vigil-listen's `FINDING_COLUMNS`).
fn vigil_listen_columns() -> Vec<String> {
    [
        "timestamp",
        "host",
        "source",
        "severity",
        "name",
        "system",
        "summary",
        "message",
        "data",
        "record",
        "rule",
        "count",
        "event_id",
    ]
    .map(str::to_owned)
    .to_vec()
}

/// A minimal RFC 4180 reader (quoted cells, doubled quotes, line breaks inside quotes), so this
/// test checks the file independently of the writer's library.
fn csv_rows(path: &Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(path).unwrap();
    let (mut rows, mut row, mut cell) = (Vec::new(), Vec::new(), String::new());
    let (mut quoted, mut chars) = (false, text.chars().peekable());
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                cell.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => cell.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut cell)),
            (false, '\n') => {
                row.push(std::mem::take(&mut cell));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => cell.push(c),
        }
    }
    rows
}
