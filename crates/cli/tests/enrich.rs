//! `vigil ip`, `vigil ips` and `vigil errors` as a user runs them, on log files written here
//! in the documented formats: JSON keys, scores, exports and exit codes.

mod common;

use common::{text, vigil};

use std::{fmt::Write as _, path::Path, process::Output};

use serde_json::Value;

fn run(args: &[&str]) -> Output {
    vigil(args).output().expect("vigil runs")
}

/// An auth.log with one fast brute force (198.51.100.7), a sweep of 203.0.113.0/24 and a
/// legitimate user (192.0.2.10) who mistypes once.
fn auth_log(dir: &Path) -> String {
    let mut log = String::new();
    for n in 0..30 {
        let (m, s) = (n / 60, n % 60);
        writeln!(
            log,
            "Nov  3 10:{m:02}:{s:02} web1 sshd[{}]: Failed password for invalid user admin{n} \
             from 198.51.100.7 port {} ssh2",
            4000 + n,
            40000 + n
        )
        .unwrap();
    }
    for host in 1..=12 {
        writeln!(
            log,
            "Nov  3 11:00:{host:02} web1 sshd[5{host:03}]: Invalid user test from 203.0.113.{host} \
             port 5{host:04}"
        )
        .unwrap();
    }
    log.push_str(
        "Nov  3 12:00:00 web1 sshd[6000]: Failed password for alice from 192.0.2.10 port 50000 ssh2\n\
         Nov  3 12:00:05 web1 sshd[6000]: Accepted password for alice from 192.0.2.10 port 50000 ssh2\n\
         Nov  3 18:00:05 web1 sshd[6001]: Accepted publickey for alice from 192.0.2.10 port 50001 ssh2: ED25519 SHA256:abc\n",
    );
    let path = dir.join("auth.log");
    std::fs::write(&path, &log).unwrap();
    path.to_string_lossy().into_owned()
}

#[test]
fn ip_reports_class_activity_and_score_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let log = auth_log(dir.path());
    let out = run(&["ip", "198.51.100.7", "--log", &log, "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let value: Value = serde_json::from_slice(&out.stdout).unwrap();
    for key in ["ip", "class", "score", "score_reasons", "activity", "subnet", "blocklisted"] {
        assert!(value.get(key).is_some(), "missing {key}: {value}");
    }
    assert!(value["connections"].is_array());
    for key in ["failed_logins", "invalid_users", "accepted_logins", "first_seen", "last_seen"] {
        assert!(value["activity"].get(key).is_some(), "missing activity.{key}");
    }
    assert_eq!(value["ip"], "198.51.100.7");
    assert_eq!(value["class"], "public");
    assert_eq!(value["subnet"], "198.51.100.0/24");
    assert_eq!(value["activity"]["failed_logins"], 30);
    assert!(value["score"].as_u64().unwrap() >= 70, "{value}");
    assert_eq!(value["blocklisted"], true);
    assert!(value["score_reasons"].as_array().unwrap().len() >= 2);

    let out = run(&["ip", "::ffff:192.0.2.10", "--log", &log, "--json"]);
    let value: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(value["ip"], "192.0.2.10", "mapped addresses are shown as IPv4");
    assert_eq!(value["activity"]["accepted_logins"], 2);
    assert!(value["score"].as_u64().unwrap() < 30, "{value}");
    assert_eq!(value["blocklisted"], false);

    let out = run(&["ip", "10.1.2.3", "--json"]);
    assert!(out.status.success());
    let value: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(value["class"], "private");
    assert_eq!(value["score"], 0);

    let out = run(&["ip", "10.1.2.300"]);
    assert_eq!(out.status.code(), Some(2), "an invalid address is a usage error");
    assert!(text(&out.stderr).contains("not an IP address"));
    let out = run(&["ip", "10.1.2.3", "--log", "/nonexistent/auth.log"]);
    assert_eq!(out.status.code(), Some(1), "an unreadable log is a runtime failure");
}

#[test]
fn ips_ranks_addresses_finds_sweeps_and_exports_reputation() {
    let dir = tempfile::tempdir().unwrap();
    let log = auth_log(dir.path());
    let out = run(&["ips", "--log", &log, "--json", "--top", "3"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let value: Value = serde_json::from_slice(&out.stdout).unwrap();
    let top = value["top"].as_array().unwrap();
    assert!(top.len() <= 3);
    assert_eq!(top[0]["ip"], "198.51.100.7");
    let sweeps: Vec<&str> = value["sweeps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|it| it["subnet"].as_str().unwrap())
        .collect();
    assert_eq!(sweeps, ["203.0.113.0/24"]);
    let aggregates = &value["aggregates"];
    assert_eq!(aggregates["events"], 45);
    assert_eq!(aggregates["by_service"]["sshd"], 45);
    assert_eq!(aggregates["by_action"]["failed_password_invalid"], 30);
    assert_eq!(aggregates["by_user"]["alice"], 3);

    let out = run(&["ips", "--log", &log, "--export-reputation"]);
    assert!(out.status.success());
    assert_eq!(text(&out.stdout), "198.51.100.7\n");
    let out = run(&["ips", "--log", &log, "--export-reputation", "--min-score", "1", "--json"]);
    let value: Value = serde_json::from_slice(&out.stdout).unwrap();
    let ips: Vec<&str> =
        value.as_array().unwrap().iter().map(|it| it["ip"].as_str().unwrap()).collect();
    assert!(ips.contains(&"198.51.100.7") && ips.contains(&"203.0.113.5"), "{ips:?}");
    assert!(!ips.contains(&"192.0.2.10"), "the legitimate user scores 0: {ips:?}");

    let out = run(&["ips", "--log", &log, "--min-score", "101", "--export-reputation"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn errors_finds_categories_tracebacks_and_recurring_signatures() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/errors");
    let files: Vec<String> = ["nginx.log", "django.log", "syslog"]
        .iter()
        .map(|it| data.join(it).to_string_lossy().into_owned())
        .collect();
    let mut args = vec!["errors", "--json"];
    args.extend(files.iter().map(String::as_str));
    let out = run(&args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let value: Value = serde_json::from_slice(&out.stdout).unwrap();
    let by_category = &value["by_category"];
    for (name, count) in [
        ("network_refused", 2),
        ("disk_full", 1),
        ("too_many_open_files", 1),
        ("python_exception", 2),
        ("memory", 1),
        ("segfault", 1),
    ] {
        assert_eq!(by_category[name]["count"], count, "{name}: {by_category}");
        assert!(by_category[name]["hint"].as_str().is_some_and(|it| !it.is_empty()));
        assert!(by_category[name]["suggestion"].as_str().is_some_and(|it| !it.is_empty()));
    }
    assert_eq!(value["errors"], 8, "the accepted login and the INFO line are no errors");
    let events = value["events"].as_array().unwrap();
    let traceback = events.iter().find(|it| it["exception_type"] == "ZeroDivisionError").unwrap();
    assert_eq!(traceback["lines"], 7, "the traceback is one event");
    assert_eq!(traceback["source_file"], "/srv/app/orders/views.py");
    assert_eq!(traceback["source_line"], 17);
    let full = events.iter().find(|it| it["category"] == "disk_full").unwrap();
    assert_eq!(full["error_code"], "28");
    assert!(full["severity"].as_u64().unwrap() >= 90);
    let recurring = value["recurring"].as_array().unwrap();
    let counts: Vec<(u64, &str)> = recurring
        .iter()
        .map(|it| (it["count"].as_u64().unwrap(), it["category"].as_str().unwrap()))
        .collect();
    assert!(counts.contains(&(2, "network_refused")), "{counts:?}");
    assert!(counts.contains(&(2, "python_exception")), "{counts:?}");

    let out = run(&["errors", &files[0]]);
    assert!(out.status.success());
    assert!(text(&out.stdout).contains("network_refused"));
    let out = run(&["errors", "/nonexistent.log"]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn run_enriches_log_events_and_requests_bans() {
    use std::io::BufRead;
    let home = tempfile::tempdir().unwrap();
    let log = auth_log(home.path());
    let mut cmd = vigil(&["run", "--print"]);
    cmd.env("VIGIL_AGENT__STATE_DIR", home.path().join("vigil"))
        .env("VIGIL_SOURCES__FILES__AUTH__PATHS", format!("[{log:?}]"))
        .env("VIGIL_SOURCES__FILES__AUTH__START_AT", "beginning")
        .env("VIGIL_SOURCES__FILES__AUTH__POLL_INTERVAL", "20ms")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let (tx, rx) = std::sync::mpsc::sync_channel(4096);
    std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut traced = None;
    let mut ban = None;
    while (traced.is_none() || ban.is_none()) && std::time::Instant::now() < deadline {
        let Ok(line) = rx.recv_timeout(std::time::Duration::from_millis(200)) else { continue };
        let event: Value = serde_json::from_str(&line).expect("a JSON line");
        if event["kind"] == "log" && event["payload"]["ip"] == "198.51.100.7" {
            traced = Some(event);
        } else if event["kind"] == "ban" {
            ban = Some(event);
        }
    }
    rustix::process::kill_process(
        rustix::process::Pid::from_child(&child),
        rustix::process::Signal::TERM,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let traced = traced.expect("a log event from the brute-force address");
    let tracers: Vec<&str> = traced["enrichment"]["trace"]["tracers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|it| it["tracer"].as_str().unwrap())
        .collect();
    assert_eq!(tracers, ["ip", "event"], "the default tracers ran, in order");
    assert_eq!(traced["enrichment"]["trace"]["tracers"][0]["found"]["class"], "public");
    assert!(traced["enrichment"]["fields"]["threat_score"].as_u64().is_some());
    let ban = ban.expect("the IP tracer requested a ban");
    assert_eq!(ban["source"], "tracer.ip");
    assert_eq!(ban["payload"]["stage"], "requested");
    assert_eq!(ban["payload"]["ip"], "198.51.100.7");
    assert_eq!(ban["payload"]["jail"], "ip_tracer");
    assert!(ban["payload"]["evidence"]["data"]["score_reasons"].as_array().unwrap().len() >= 2);
}

#[test]
fn run_refuses_an_invalid_trigger_or_tracer() {
    let dir = tempfile::tempdir().unwrap();
    for (toml, want) in [
        ("[triggers.bad]\ncondition = \"process_name\"\n", "triggers.bad: `pattern` is required"),
        ("[triggers.bad]\ncondition = \"ip_score_above\"\nanalysis = \"trace_ip\"\n", "`bound`"),
        ("[tracers.ip]\nallowlist = [\"10.0.0.0/33\"]\n", "tracers.ip.allowlist"),
    ] {
        let config = dir.path().join("vigil.toml");
        std::fs::write(&config, toml).unwrap();
        let out = vigil(&["run", "--config", config.to_str().unwrap()])
            .env("VIGIL_AGENT__STATE_DIR", dir.path().join("state"))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{toml}");
        assert!(text(&out.stderr).contains(want), "{toml}: {}", text(&out.stderr));
    }
    // A valid trigger passes `config check`.
    let config = dir.path().join("ok.toml");
    std::fs::write(
        &config,
        "[triggers.miner]\npattern = \"xmrig\"\npriority = \"high\"\n[tracers.triggers]\nmax_per_minute = 10\n",
    )
    .unwrap();
    let out = run(&["config", "check", config.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn ip_reads_the_store_when_no_log_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let log = auth_log(dir.path());
    let db = dir.path().join("vigil.db");
    let db = db.to_str().unwrap();
    let out = run(&["replay", &log, "--tz", "UTC", "--store", "--db", db]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let from_log: Value =
        serde_json::from_slice(&run(&["ip", "198.51.100.7", "--log", &log, "--json"]).stdout)
            .unwrap();
    let out = run(&["ip", "198.51.100.7", "--db", db, "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let from_store: Value = serde_json::from_slice(&out.stdout).unwrap();
    for key in ["failed_logins", "invalid_users", "accepted_logins"] {
        assert_eq!(from_store["activity"][key], from_log["activity"][key], "{key}");
    }
    assert_eq!(from_store["activity"]["failed_logins"], 30);
    // The replay's dry-run ban decisions are in the store too.
    assert!(from_store["activity"]["bans"].as_u64().unwrap() >= 1, "{from_store}");
    assert_eq!(from_store["blocklisted"], true);
    // A database that does not exist reads as an address never seen.
    let out = run(&["ip", "198.51.100.7", "--db", "/nonexistent/vigil.db", "--json"]);
    assert!(out.status.success());
    let none: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(none["activity"]["failed_logins"], 0);
}
