//! The `vigil` binary as a user runs it: help, exit codes, configuration checking with positions
//! and hints, environment overrides, and `vigil run --print` stopped by a real SIGTERM.

mod common;

use common::{text, vigil};

use std::{
    io::Write,
    path::Path,
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("vigil runs")
}

fn run_with_stdin(cmd: &mut Command, stdin: &str) -> Output {
    let mut child =
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn version_and_help_for_every_subcommand() {
    let out = run(&mut vigil(&["--version"]));
    assert!(out.status.success());
    assert_eq!(text(&out.stdout).trim(), format!("vigil {}", env!("CARGO_PKG_VERSION")));

    let out = run(&mut vigil(&["--help"]));
    assert!(out.status.success());
    let help = text(&out.stdout);
    for needle in ["run", "config", "Exit codes: 0", "VIGIL_RUNTIME__EVENT_BUFFER_SIZE"] {
        assert!(help.contains(needle), "--help lacks {needle:?}:\n{help}");
    }
    for (args, needle) in [
        (&["run", "--help"][..], "--print"),
        (&["config", "--help"][..], "check"),
        (&["config", "default", "--help"][..], "commented"),
        (&["config", "check", "--help"][..], "standard input"),
        (&["config", "show", "--help"][..], "effective"),
    ] {
        let out = run(&mut vigil(args));
        assert!(out.status.success(), "{args:?}");
        assert!(text(&out.stdout).contains(needle), "{args:?} help lacks {needle:?}");
    }
}

#[test]
fn usage_errors_exit_2() {
    let out = run(&mut vigil(&["frobnicate"]));
    assert_eq!(out.status.code(), Some(2));
    let out = run(&mut vigil(&["config", "check"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no file to check"));
    let out = run(&mut vigil(&["config", "check", "/nonexistent/vigil.toml"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("cannot read /nonexistent/vigil.toml"));
}

#[test]
fn the_default_configuration_checks_clean() {
    let out = run(&mut vigil(&["config", "default"]));
    assert!(out.status.success());
    let default = text(&out.stdout);
    for key in [
        "[runtime]",
        "event_buffer_size = 4096",
        "shutdown_timeout = \"5s\"",
        "[detectors.report]",
        "[listeners.log.default]",
        "# ",
    ] {
        assert!(default.contains(key), "default config lacks {key:?}:\n{default}");
    }
    let out = run_with_stdin(&mut vigil(&["config", "check", "-"]), &default);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "<stdin>: configuration is valid");
}

#[test]
fn configuration_errors_carry_file_line_column_and_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vigil.toml");
    std::fs::write(&path, "[runtime]\nshutdown_timeout = \"5s\"\nevnt_buffer_size = 10\n").unwrap();
    let out = run(&mut vigil(&["config", "check", path.to_str().unwrap()]));
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains(&format!("{}:3:1", path.display())), "{err}");
    assert!(err.contains("unknown field `evnt_buffer_size`"), "{err}");
    assert!(err.contains("did you mean `event_buffer_size`"), "{err}");

    std::fs::write(&path, "[runtime]\nevent_buffer_size = 0\n").unwrap();
    let out = run(&mut vigil(&["config", "check", path.to_str().unwrap()]));
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains(":2:"), "{}", text(&out.stderr));

    std::fs::write(&path, "[runtime]\nshutdown_timeout = \"soon\"\n").unwrap();
    let out = run(&mut vigil(&["run", "--config", path.to_str().unwrap()]));
    assert_eq!(out.status.code(), Some(2), "run refuses a bad configuration too");
    assert!(text(&out.stderr).contains("5s"), "{}", text(&out.stderr));
}

#[test]
fn environment_overrides_win_over_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vigil.toml");
    std::fs::write(&path, "[runtime]\nevent_buffer_size = 100\n").unwrap();
    let out = run(vigil(&["config", "show", "--config", path.to_str().unwrap()])
        .env("VIGIL_RUNTIME__EVENT_BUFFER_SIZE", "8192")
        .env("VIGIL_LISTENERS__JSON_LINES__AUDIT__PATH", "/tmp/audit.jsonl"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown: toml::Table = text(&out.stdout).parse().unwrap();
    assert_eq!(shown["runtime"]["event_buffer_size"].as_integer(), Some(8192));
    assert_eq!(
        shown["listeners"]["json_lines"]["audit"]["path"].as_str(),
        Some("/tmp/audit.jsonl")
    );

    let out = run(vigil(&["config", "check", path.to_str().unwrap()])
        .env("VIGIL_RUNTIME__EVENT_BUFFER_SIZE", "lots"));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("VIGIL_RUNTIME__EVENT_BUFFER_SIZE"),
        "{}",
        text(&out.stderr)
    );
}

/// Starts `vigil run --print` with a private state directory and returns it with its stdout.
fn spawn_agent(state_home: &Path, extra_env: &[(&str, &str)]) -> std::process::Child {
    let mut cmd = vigil(&["run", "--print"]);
    // CI runs as root, whose default is /var/lib/vigil: keep the test's state private.
    cmd.env("VIGIL_AGENT__STATE_DIR", state_home.join("vigil"));
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
}

#[test]
fn run_prints_events_and_stops_gracefully_on_sigterm() {
    let home = tempfile::tempdir().unwrap();
    let mut child = spawn_agent(home.path(), &[]);
    // The sources start together, so a host metric may be printed before the first status.
    let lines = common::stdout_lines(child.stdout.take().unwrap());
    let deadline = Instant::now() + Duration::from_secs(30);
    let event = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = lines.recv_timeout(left).expect("an agent_status event on stdout");
        let event: serde_json::Value = serde_json::from_str(&line).expect("a JSON line on stdout");
        if event["kind"] == "agent_status" {
            break event;
        }
    };
    assert_eq!(event["source"], "agent");
    assert_eq!(event["schema_version"], 1);
    let components: Vec<&str> = event["payload"]["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|it| it["name"].as_str().unwrap())
        .collect();
    for name in ["agent", "report", "log.default", "print"] {
        assert!(components.contains(&name), "{name} missing from {components:?}");
    }
    assert!(home.path().join("vigil/state").is_dir(), "the state directory is created");

    let started = Instant::now();
    rustix::process::kill_process(
        rustix::process::Pid::from_child(&child),
        rustix::process::Signal::TERM,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "graceful shutdown exits 0, got {status:?}");
    assert!(started.elapsed() < Duration::from_secs(5), "within the default 5 s timeout");
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(err.contains("Shutting down") && err.contains("Agent stopped"), "{err}");
}

/// Starts an agent whose only JSON-lines listener writes into a FIFO that nobody reads, with a
/// status event every 10 ms: within about a second the pipe is full and the listener is stuck in
/// a write, so a graceful shutdown cannot finish by itself.
fn spawn_stuck_agent(dir: &Path, shutdown_timeout: &str) -> (std::process::Child, std::fs::File) {
    use rustix::fs::{Mode, OFlags};
    let fifo = dir.join("events.fifo");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &fifo,
        rustix::fs::FileType::Fifo,
        Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    // Holding a reader open lets the agent's writer open the FIFO; never reading fills it.
    let reader = rustix::fs::open(&fifo, OFlags::RDONLY | OFlags::NONBLOCK, Mode::empty()).unwrap();
    let child = vigil(&["run"])
        .env("VIGIL_AGENT__STATE_DIR", dir.join("state"))
        .env("VIGIL_RUNTIME__HEALTH_CHECK_INTERVAL", "10ms")
        .env("VIGIL_RUNTIME__SHUTDOWN_TIMEOUT", shutdown_timeout)
        .env("VIGIL_LISTENERS__JSON_LINES__FIFO__PATH", &fifo)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the pipe is full: the agent's writes no longer drain.
    let full = Instant::now();
    let mut pipe_bytes = 0;
    while full.elapsed() < Duration::from_secs(20) {
        let n = rustix::io::ioctl_fionread(&reader).unwrap_or(0);
        if n > 0 && n == pipe_bytes {
            break;
        }
        pipe_bytes = n;
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(pipe_bytes > 0, "the agent never wrote to the FIFO");
    (child, std::fs::File::from(reader))
}

fn signal(child: &std::process::Child, signal: rustix::process::Signal) {
    rustix::process::kill_process(rustix::process::Pid::from_child(child), signal).unwrap();
}

#[test]
fn a_second_signal_exits_at_once_while_a_graceful_shutdown_waits() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, _reader) = spawn_stuck_agent(dir.path(), "60s");
    signal(&child, rustix::process::Signal::TERM);
    std::thread::sleep(Duration::from_millis(500));
    assert!(child.try_wait().unwrap().is_none(), "the graceful shutdown waits for the listener");
    let second = Instant::now();
    signal(&child, rustix::process::Signal::INT);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert!(second.elapsed() < Duration::from_secs(5), "took {:?}", second.elapsed());
}

#[test]
fn a_shutdown_that_passes_its_deadline_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, _reader) = spawn_stuck_agent(dir.path(), "300ms");
    let started = Instant::now();
    signal(&child, rustix::process::Signal::TERM);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(1), "events were left undelivered");
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(err.contains("Shutdown timeout passed"), "{err}");
}

#[test]
fn run_prints_log_events_for_lines_appended_to_a_followed_file() {
    let home = tempfile::tempdir().unwrap();
    let log = home.path().join("auth.log");
    std::fs::write(&log, "first line\n").unwrap();
    let paths = format!("[{:?}]", log.to_str().unwrap());
    let mut child = spawn_agent(
        home.path(),
        &[
            ("VIGIL_SOURCES__FILES__AUTH__PATHS", &paths),
            ("VIGIL_SOURCES__FILES__AUTH__START_AT", "beginning"),
            ("VIGIL_SOURCES__FILES__AUTH__POLL_INTERVAL", "20ms"),
        ],
    );
    // Read stdout on a thread so the test can give up instead of hanging.
    let rx = common::stdout_lines(child.stdout.take().unwrap());
    let mut messages = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut appended = false;
    while messages.len() < 2 && Instant::now() < deadline {
        let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) else { continue };
        let event: serde_json::Value = serde_json::from_str(&line).expect("a JSON line");
        if event["kind"] == "log" {
            assert_eq!(event["source"], "files.auth");
            assert!(event["payload"]["origin"]["stream"].as_str().unwrap().starts_with("file:"));
            messages.push(event["payload"]["message"].as_str().unwrap().to_owned());
            if messages.len() == 2 {
                // The built-in parsers (parser = "auto" by default) structured the line.
                assert_eq!(event["payload"]["action"], "failed_password");
                assert_eq!(event["payload"]["ip"], "203.0.113.9");
                assert_eq!(event["payload"]["user"], "root");
                assert_eq!(event["payload"]["raw"].as_str().unwrap().len(), 85);
            }
            if !appended {
                let mut file = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
                file.write_all(
                    b"Nov 23 10:00:00 web1 sshd[42]: Failed password for root from 203.0.113.9 \
                      port 22 ssh2\n",
                )
                .unwrap();
                appended = true;
            }
        }
    }
    signal(&child, rustix::process::Signal::TERM);
    let status = child.wait().unwrap();
    assert_eq!(messages, ["first line", "Failed password for root from 203.0.113.9 port 22 ssh2"]);
    assert!(status.success(), "{status:?}");
    let checkpoint =
        std::fs::read_to_string(home.path().join("vigil/checkpoints/files.auth.json")).unwrap();
    assert!(checkpoint.contains("\"offset\": 97"), "{checkpoint}");
}

const AUTH_LOG: &str = "\
Dec 31 23:59:58 web1 sshd[4242]: Failed password for invalid user root from 198.51.100.7 port 22 from ::ffff:203.0.113.9 port 51234 ssh2
Jan  1 00:00:01 web1 kernel: [  12.5] [UFW BLOCK] IN=eth0 OUT= MAC=00 SRC=192.0.2.1 DST=192.0.2.2 LEN=40 PROTO=TCP SPT=4000 DPT=23 WINDOW=1024
Jan  1 00:00:02 web1 CRON[77]: pam_unix(cron:session): session closed for user root
not a log line at all
";

#[test]
fn parse_prints_one_json_object_per_recognised_line() {
    let out = run_with_stdin(
        &mut vigil(&["parse", "-", "--json", "--tz", "UTC", "--now", "2027-01-02T00:00:00Z"]),
        AUTH_LOG,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines: Vec<serde_json::Value> =
        text(&out.stdout).lines().map(|it| serde_json::from_str(it).unwrap()).collect();
    assert_eq!(lines.len(), 3);
    let keys: Vec<&str> = lines[0].as_object().unwrap().keys().map(String::as_str).collect();
    let mut want = vec![
        "line",
        "source",
        "timestamp",
        "level",
        "action",
        "ip",
        "user",
        "port",
        "service",
        "pid",
        "message",
    ];
    want.sort_unstable();
    let mut keys = keys;
    keys.sort_unstable();
    assert_eq!(keys, want);
    let first = &lines[0];
    assert_eq!(first["line"], 1);
    assert_eq!(first["action"], "failed_password_invalid");
    assert_eq!(first["ip"], "203.0.113.9");
    assert_eq!(first["user"], "root from 198.51.100.7 port 22");
    assert_eq!(first["port"], 51234);
    assert_eq!(first["pid"], 4242);
    assert_eq!(first["timestamp"], "2026-12-31T23:59:58Z");
    assert_eq!(lines[1]["action"], "fw_block");
    assert_eq!(lines[1]["timestamp"], "2027-01-01T00:00:01Z");
    assert_eq!(lines[2]["line"], 3);
    assert_eq!(lines[2]["action"], serde_json::Value::Null);
    assert_eq!(lines[2]["service"], "CRON");
}

#[test]
fn parse_stats_count_actions_across_files_and_survive_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("auth.log");
    let mut bytes = AUTH_LOG.as_bytes().to_vec();
    bytes.extend_from_slice(
        b"Jan  1 00:00:03 web1 sshd[1]: Invalid user \xff\xfe from 192.0.2.9 port 1\n",
    );
    // A 3 MiB line, then one more ordinary line without a final newline.
    bytes.extend(std::iter::repeat_n(b'x', 3 << 20));
    bytes
        .extend_from_slice(b"\nJan  1 00:00:04 web1 sshd[1]: Connection reset by 192.0.2.9 port 1");
    std::fs::write(&log, &bytes).unwrap();
    let log = log.to_str().unwrap();
    let out = run(&mut vigil(&["parse", log, log, "--stats", "--json", "--parser", "syslog"]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stats: serde_json::Value = serde_json::from_str(text(&out.stdout).trim()).unwrap();
    assert_eq!(stats["lines"], 14);
    assert_eq!(stats["recognised"], 10);
    assert_eq!(stats["actions"]["failed_password_invalid"], 2);
    assert_eq!(stats["actions"]["invalid_user"], 2);
    assert_eq!(stats["actions"]["connection_reset"], 2);
    assert_eq!(stats["invalid_utf8"], 2);
    assert_eq!(stats["truncated"], 2);
    let err = text(&out.stderr);
    assert!(err.contains("truncated") && err.contains("invalid UTF-8"), "{err}");

    let out = run(&mut vigil(&["parse", log, "--stats"]));
    let table = text(&out.stdout);
    assert!(table.contains("fw_block") && table.contains("(unrecognised)"), "{table}");

    let out = run(&mut vigil(&["parse", log, "--parser", "apache"]));
    assert_eq!(out.status.code(), Some(2));
    let out = run(&mut vigil(&["parse", log, "--tz", "Mars/Olympus"]));
    assert_eq!(out.status.code(), Some(2));
    let out = run(&mut vigil(&["parse", "/nonexistent/auth.log", log]));
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("/nonexistent/auth.log"));
    assert!(!out.stdout.is_empty());
}

#[test]
fn an_unknown_parser_for_a_followed_file_is_a_configuration_error() {
    let home = tempfile::tempdir().unwrap();
    let out = run(vigil(&["run"])
        .env("VIGIL_AGENT__STATE_DIR", home.path())
        .env("VIGIL_SOURCES__FILES__AUTH__ENABLED", "true")
        .env("VIGIL_SOURCES__FILES__AUTH__PATHS", "[\"/var/log/auth.log\"]")
        .env("VIGIL_SOURCES__FILES__AUTH__PARSER", "apache"));
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("source files.auth") && err.contains("unknown format `apache`"), "{err}");
    assert!(err.contains("sshd") && err.contains("none"), "the error lists the parsers: {err}");
}

#[cfg(not(feature = "journald"))]
#[test]
fn an_enabled_journal_source_without_the_journald_feature_is_a_configuration_error() {
    let home = tempfile::tempdir().unwrap();
    let out = run(vigil(&["run"])
        .env("VIGIL_AGENT__STATE_DIR", home.path())
        .env("VIGIL_SOURCES__JOURNAL__SSHD__ENABLED", "true"));
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("source journal.sshd")
            && err.contains("built without the journald feature: cargo build --features journald"),
        "{err}"
    );
}

/// Writes sshd and cron entries in journal export format and turns them into a journal file in
/// `dir` with systemd-journal-remote (no journald needed).
#[cfg(feature = "journald")]
fn make_journal(dir: &Path) {
    let entries = [
        (1, "sshd", "Failed password for root from 203.0.113.9 port 4711 ssh2"),
        (2, "CRON", "pam_unix(cron:session): session closed for user root"),
        (3, "sshd", "Invalid user admin from 192.0.2.1 port 6000"),
    ];
    let mut export = String::new();
    for (seq, identifier, message) in entries {
        export.push_str(&format!(
            "__CURSOR=s=00000000000000000000000000000000;i={seq}\n\
             __REALTIME_TIMESTAMP={}\n__MONOTONIC_TIMESTAMP={seq}000000\n\
             _BOOT_ID=0123456789abcdef0123456789abcdef\n\
             SYSLOG_IDENTIFIER={identifier}\n_PID=4{seq}\nMESSAGE={message}\n\n",
            1_700_000_000_000_000u64 + seq * 1_000_000
        ));
    }
    let file = dir.join("entries.export");
    std::fs::write(&file, export).unwrap();
    #[allow(clippy::disallowed_methods)] // A helper program that builds journal files.
    let out = Command::new("/lib/systemd/systemd-journal-remote")
        .arg(format!("--output={}", dir.join("remote.journal").display()))
        .arg(&file)
        .output()
        .expect("systemd-journal-remote runs");
    assert!(out.status.success(), "{}", text(&out.stderr));
    std::fs::remove_file(&file).unwrap();
}

#[cfg(feature = "journald")]
#[test]
fn run_prints_parsed_sshd_events_read_from_the_journal() {
    let home = tempfile::tempdir().unwrap();
    let journal = home.path().join("journal");
    std::fs::create_dir(&journal).unwrap();
    make_journal(&journal);
    let mut child = spawn_agent(
        home.path(),
        &[
            ("VIGIL_SOURCES__JOURNAL__SSHD__ENABLED", "true"),
            ("VIGIL_SOURCES__JOURNAL__SSHD__DIRECTORY", journal.to_str().unwrap()),
            ("VIGIL_SOURCES__JOURNAL__SSHD__START_AT", "beginning"),
        ],
    );
    let rx = common::stdout_lines(child.stdout.take().unwrap());
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while seen.len() < 2 && Instant::now() < deadline {
        let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) else { continue };
        let event: serde_json::Value = serde_json::from_str(&line).expect("a JSON line");
        if event["kind"] == "log" {
            assert_eq!(event["source"], "journal.sshd");
            let payload = &event["payload"];
            assert_eq!(payload["service"], "sshd");
            assert!(payload["origin"]["stream"].as_str().unwrap().starts_with("journal:"));
            seen.push((
                payload["action"].as_str().unwrap_or_default().to_owned(),
                payload["ip"].as_str().unwrap_or_default().to_owned(),
            ));
        }
    }
    signal(&child, rustix::process::Signal::TERM);
    let status = child.wait().unwrap();
    assert_eq!(
        seen,
        [
            ("failed_password".to_owned(), "203.0.113.9".to_owned()),
            ("invalid_user".to_owned(), "192.0.2.1".to_owned()),
        ]
    );
    assert!(status.success(), "{status:?}");
    let cursor =
        std::fs::read_to_string(home.path().join("vigil/checkpoints/journal.sshd.journal.json"))
            .unwrap();
    assert!(cursor.contains("\"cursor\""), "{cursor}");
}
