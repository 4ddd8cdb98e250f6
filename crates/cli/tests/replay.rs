//! `vigil replay` and `vigil report` as a user runs them: the replay's bans against the ground
//! truth of `shared/data/gen_authlog.py --summary` (exactly the addresses fail2ban's default
//! sshd jail would ban, at the same line; no decoy address of an injection line), the aggressive
//! mode through the built-in set and through fail2ban's unchanged `sshd.conf`, exit codes, and
//! the report read from an agent's saved state.

mod common;

use common::text;

use std::{
    collections::BTreeMap,
    net::IpAddr,
    path::{Path, PathBuf},
    process::{Command, Output},
};

use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[allow(clippy::disallowed_methods)] // Running the binary and the generator under test is the point.
fn command(program: &str) -> Command {
    let mut cmd = Command::new(program);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("VIGIL_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

fn vigil(args: &[&str]) -> Output {
    command(env!("CARGO_BIN_EXE_vigil")).args(args).output().expect("vigil runs")
}

/// Generates `lines` lines with `seed` into `dir`; returns the log and the summary.
fn generate(dir: &Path, lines: u32, seed: u32) -> (PathBuf, Value) {
    let log = dir.join("auth.log");
    let summary = dir.join("summary.json");
    let status = command("python3")
        .arg(root().join("../shared/data/gen_authlog.py"))
        .args(["--lines", &lines.to_string(), "--seed", &seed.to_string(), "-o"])
        .arg(&log)
        .arg("--summary")
        .arg(&summary)
        .status()
        .expect("python3 runs");
    assert!(status.success(), "gen_authlog.py failed");
    let summary = serde_json::from_str(&std::fs::read_to_string(summary).unwrap()).unwrap();
    (log, summary)
}

/// The generator writes addresses as logged; bans name IPv4-mapped clients by their IPv4.
fn canonical(ip: &str) -> String {
    match ip.parse::<IpAddr>().unwrap() {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(v6.to_string(), |it| it.to_string()),
        v4 => v4.to_string(),
    }
}

/// An address (canonical) or a prefix as written.
fn canonical_or_net(value: &Value) -> String {
    let text = value.as_str().unwrap();
    if text.contains('/') { text.to_owned() } else { canonical(text) }
}

/// `address → first ban time` from the summary's `expected_bans.<mode>`.
fn expected(summary: &Value, mode: &str) -> BTreeMap<String, String> {
    summary["expected_bans"][mode]["ips"]
        .as_array()
        .unwrap()
        .iter()
        .map(|it| {
            let at = it["first_ban"].as_str().unwrap();
            (canonical(it["ip"].as_str().unwrap()), format!("{at}Z"))
        })
        .collect()
}

/// `address → first ban time` from `vigil replay --json`.
fn first_bans(replay: &Value) -> BTreeMap<String, String> {
    let mut first = BTreeMap::new();
    for ban in replay["bans"].as_array().unwrap() {
        first
            .entry(ban["ip"].as_str().unwrap().to_owned())
            .or_insert_with(|| ban["at"].as_str().unwrap().to_owned());
    }
    first
}

fn replay(args: &[&str]) -> Value {
    let mut all = vec!["replay", "--json", "--tz", "UTC", "--now", "2026-12-01T00:00:00Z"];
    all.extend_from_slice(args);
    let out = vigil(&all);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn bans_equal_the_generators_expected_bans() {
    let dir = tempfile::tempdir().unwrap();
    let (log, summary) = generate(dir.path(), 100_000, 3);
    let got = replay(&[log.to_str().unwrap()]);
    assert_eq!(got["lines"], 100_000);
    let want = expected(&summary, "normal");
    assert!(want.len() > 20, "the sample has attackers: {}", want.len());
    assert_eq!(first_bans(&got), want);
    // No decoy planted in an injection line's user name is ever banned.
    let banned = first_bans(&got);
    for decoy in summary["decoy_ips"].as_array().unwrap() {
        assert!(!banned.contains_key(&canonical(decoy.as_str().unwrap())), "{decoy} banned");
    }
    // Every ban lasts the default bantime and carries the failures that crossed maxretry.
    for ban in got["bans"].as_array().unwrap() {
        let at = chrono::DateTime::parse_from_rfc3339(ban["at"].as_str().unwrap()).unwrap();
        let until = chrono::DateTime::parse_from_rfc3339(ban["until"].as_str().unwrap()).unwrap();
        assert_eq!((until - at).num_seconds(), 600);
        assert_eq!(ban["failures"], 5);
        assert_eq!(ban["jail"], "sshd");
    }
    let findings = got["findings"].as_array().unwrap();
    let named = |name: &str, key: &str| -> std::collections::BTreeSet<String> {
        findings
            .iter()
            .filter(|it| it["name"] == name)
            .map(|it| it["data"][key].as_str().unwrap().to_owned())
            .collect()
    };
    let set = |key: &str| -> std::collections::BTreeSet<String> {
        summary[key].as_array().unwrap().iter().map(canonical_or_net).collect()
    };
    // Every port scanner and every swept /24 is found, and nothing else.
    let scanners: std::collections::BTreeSet<String> = summary["attackers"]["portscan"]
        .as_array()
        .unwrap()
        .iter()
        .map(|it| canonical(it.as_str().unwrap()))
        .collect();
    assert!(!scanners.is_empty());
    assert_eq!(named("PortScan", "ip"), scanners);
    assert_eq!(named("IpSweep", "subnet"), set("subnet_sweep_prefix"));
    // sshd findings: only addresses that failed, never a legitimate user's address.
    let legit = set("legit_ips");
    let tries = named("SSHLoginTriesExceeded", "ip");
    assert!(!tries.is_empty() && tries.is_disjoint(&legit));
    for finding in findings.iter().filter(|it| it["name"] == "SSHLoginTriesExceeded") {
        assert_eq!(finding["evidence"]["lines"].as_array().unwrap().len(), 5);
    }
}

#[test]
fn aggressive_mode_matches_through_the_builtin_set_and_fail2bans_filter_file() {
    let dir = tempfile::tempdir().unwrap();
    let (log, summary) = generate(dir.path(), 20_000, 11);
    let want = expected(&summary, "aggressive");
    let builtin = dir.path().join("builtin.toml");
    std::fs::write(&builtin, "[jails.sshd]\nfilter = \"sshd-aggressive\"\n").unwrap();
    let got = replay(&["--config", builtin.to_str().unwrap(), log.to_str().unwrap()]);
    assert_eq!(first_bans(&got), want);
    let filter = root().join("../shared/conformance/fail2ban/filter.d/sshd.conf");
    let file = dir.path().join("file.toml");
    std::fs::write(
        &file,
        format!(
            "[jails.sshd]\nenabled = false\n\n[jails.f2b]\nfilter_file = \"{}[mode=aggressive]\"\n",
            filter.display()
        ),
    )
    .unwrap();
    let got = replay(&["--config", file.to_str().unwrap(), log.to_str().unwrap()]);
    assert!(got["bans"].as_array().unwrap().iter().all(|it| it["jail"] == "f2b"));
    // fail2ban's own regexes see the same attackers. On injection lines (user names such as
    // `x from 192.0.2.1 port 22 ssh2`) they also match lines the ground truth does not count as
    // failures, so an injector's first ban may come a line or two earlier than the built-in
    // set's; everyone else's is the same line.
    let got = first_bans(&got);
    assert_eq!(got.keys().collect::<Vec<_>>(), want.keys().collect::<Vec<_>>());
    let injectors: Vec<String> = summary["attackers"]["injection"]
        .as_array()
        .unwrap()
        .iter()
        .map(|it| canonical(it.as_str().unwrap()))
        .collect();
    for (ip, at) in &want {
        if !injectors.contains(ip) {
            assert_eq!(&got[ip], at, "{ip}");
        }
    }
}

#[test]
fn text_summary_and_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("auth.log");
    let lines: String = (0..6)
        .map(|i| {
            format!("Nov  1 00:00:0{i} web1 sshd[7]: Invalid user pi from 203.0.113.9 port 22\n")
        })
        .collect();
    std::fs::write(&log, lines).unwrap();
    let args = ["replay", "--tz", "UTC", "--now", "2026-12-01T00:00:00Z", log.to_str().unwrap()];
    let out = vigil(&args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with(
            "ban 203.0.113.9 jail sshd at 2026-11-01T00:00:04Z until 2026-11-01T00:10:04Z after 5 failures\n"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("lines                6\n") && stdout.contains("bans                 1\n"),
        "{stdout}"
    );
    let out = vigil(&["replay", "--jail", "nope", log.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no jail \"nope\" (jails: sshd)"), "{}", text(&out.stderr));
    let out = vigil(&["replay", "--now", "yesterday", log.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[jails.sshd]\nmaxretry = 0\n").unwrap();
    let out = vigil(&["replay", "--config", bad.to_str().unwrap(), log.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("jail sshd: maxretry must be at least 1"));
    let out = vigil(&["replay", "/nonexistent/auth.log"]);
    assert_eq!(out.status.code(), Some(1));
    // Piped: no progress bar on standard error.
    let out = vigil(&args);
    assert_eq!(text(&out.stderr), "");
}

#[allow(clippy::disallowed_methods)]
fn spawn_agent(dir: &Path, log: &Path) -> std::process::Child {
    let mut cmd = command(env!("CARGO_BIN_EXE_vigil"));
    cmd.args(["run", "--print"])
        .env("VIGIL_AGENT__STATE_DIR", dir.join("vigil"))
        .env("VIGIL_SOURCES__FILES__AUTH__PATHS", format!("[{:?}]", log.to_str().unwrap()))
        .env("VIGIL_SOURCES__FILES__AUTH__START_AT", "beginning")
        .env("VIGIL_SOURCES__FILES__AUTH__POLL_INTERVAL", "20ms")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    cmd.spawn().unwrap()
}

#[test]
fn the_agent_bans_and_report_reads_its_saved_state() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("auth.log");
    let line = |time: &str, message: &str| {
        format!("<38>1 2026-11-01T{time}Z web1 sshd 42 - - {message}\n")
    };
    let mut lines = String::new();
    lines += &line("08:59:00", "Failed password for alice from 192.0.2.10 port 5000 ssh2");
    lines += &line("09:00:00", "Accepted password for alice from 192.0.2.10 port 5001 ssh2");
    for i in 0..5 {
        lines +=
            &line(&format!("10:00:0{i}"), "Failed password for root from 203.0.113.9 port 22 ssh2");
    }
    std::fs::write(&log, lines).unwrap();
    let mut child = spawn_agent(dir.path(), &log);
    let rx = common::stdout_lines(child.stdout.take().unwrap());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let (mut ban, mut finding, mut decided) = (None, None, None);
    while (ban.is_none() || finding.is_none() || decided.is_none())
        && std::time::Instant::now() < deadline
    {
        let Ok(line) = rx.recv_timeout(std::time::Duration::from_millis(200)) else { continue };
        let event: Value = serde_json::from_str(&line).unwrap();
        if event["kind"] == "ban" && event["payload"]["stage"] == "banned" {
            decided = Some(event);
        } else if event["kind"] == "ban" {
            ban = Some(event);
        } else if event["kind"] == "finding" && event["payload"]["name"] == "SSHLoginTriesExceeded"
        {
            finding = Some(event);
        }
    }
    rustix::process::kill_process(
        rustix::process::Pid::from_child(&child),
        rustix::process::Signal::TERM,
    )
    .unwrap();
    assert!(child.wait().unwrap().success());
    let ban = ban.expect("a ban request on the bus");
    assert_eq!(ban["source"], "jails");
    assert_eq!(ban["payload"]["stage"], "requested");
    assert_eq!(ban["payload"]["ip"], "203.0.113.9");
    assert_eq!(ban["payload"]["at"], "2026-11-01T10:00:04Z");
    assert_eq!(ban["payload"]["bantime_seconds"], 600);
    assert_eq!(ban["payload"]["evidence"]["lines"].as_array().unwrap().len(), 5);
    assert!(finding.is_some(), "SSHLoginTriesExceeded on the bus");
    // The ban manager (dry-run by default) decided the request.
    let decided = decided.expect("the ban manager's decision on the bus");
    assert_eq!(decided["payload"]["ip"], "203.0.113.9");
    assert_eq!(decided["payload"]["dry_run"], true);
    // A live agent bans from the moment it decides, however old the line was.
    assert!(decided["payload"]["until"].as_str().unwrap() > "2026-11-23", "{decided}");

    let out = command(env!("CARGO_BIN_EXE_vigil"))
        .args(["report", "--day", "2026-11-01", "--json"])
        .env("VIGIL_AGENT__STATE_DIR", dir.path().join("vigil"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["day"], "2026-11-01");
    assert_eq!(
        report["sshd"],
        serde_json::json!({
            "successful_logins": 1, "failed_logins": 6, "failed_logins_without_success": 5,
            "failing_addresses": 2, "addresses_blocked": 1, "tries_exceeded": 1,
        })
    );
    assert_eq!(report["detectors"]["jails"]["jails"]["sshd"]["bans"], 1);
    assert_eq!(report["detectors"]["jails"]["jails"]["sshd"]["failures"], 6);
    let text_out = command(env!("CARGO_BIN_EXE_vigil"))
        .args(["report", "--day", "2026-11-01"])
        .env("VIGIL_AGENT__STATE_DIR", dir.path().join("vigil"))
        .output()
        .unwrap();
    let shown = text(&text_out.stdout);
    assert!(shown.starts_with("sshd on 2026-11-01\n  successful logins"), "{shown}");
    let out = vigil(&["report", "--day", "1st of November"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn replay_store_back_fills_every_line_once() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = generate(dir.path(), 3000, 11);
    let db = dir.path().join("back.db");
    let replay = || {
        command(env!("CARGO_BIN_EXE_vigil"))
            .arg("replay")
            .arg(&log)
            .args(["--json", "--tz", "UTC", "--now", "2026-12-01T00:00:00Z", "--store", "--db"])
            .arg(&db)
            .output()
            .unwrap()
    };
    let first = replay();
    assert_eq!(first.status.code(), Some(0), "{}", text(&first.stderr));
    let summary: Value = serde_json::from_slice(&first.stdout).unwrap();
    assert!(text(&first.stderr).contains("(0 lines were already in the store)"));
    let second = replay();
    assert_eq!(second.status.code(), Some(0), "{}", text(&second.stderr));
    let events = summary["events"].as_u64().unwrap();
    assert!(text(&second.stderr).contains(&format!("({events} lines were already in the store)")));
    let query = |sql: &str| {
        let out = command(env!("CARGO_BIN_EXE_vigil"))
            .args(["query", sql, "--json", "--db"])
            .arg(&db)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    let logs = query(
        "SELECT count(*) AS n, count(DISTINCT line_offset) AS offsets FROM events WHERE kind = 'log'",
    );
    assert_eq!(logs[0]["n"], events, "every recognised line stored once: {logs}");
    assert_eq!(logs[0]["offsets"], events);
    let bans = query("SELECT ip, at FROM bans WHERE stage = 'banned' ORDER BY at, ip");
    let want: Vec<(String, String)> = summary["bans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| (b["ip"].as_str().unwrap().to_owned(), b["at"].as_str().unwrap().to_owned()))
        .collect();
    assert!(!want.is_empty());
    // Each replay wrote its decisions: twice the summary's bans, same addresses.
    assert_eq!(bans.as_array().unwrap().len(), 2 * want.len(), "{bans}");
}

#[test]
fn tracers_block_list_attackers_apart_from_the_jails_bans_deterministically() {
    let dir = tempfile::tempdir().unwrap();
    let (log, summary) = generate(dir.path(), 100_000, 5);
    let args = ["replay", "--json", "--tz", "UTC", "--now", "2026-12-01T00:00:00Z"];
    let run = || {
        let out = vigil(&[&args[..], &[log.to_str().unwrap()]].concat());
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        out.stdout
    };
    let first = run();
    // The same files and configuration give the same bytes, trace clocks notwithstanding.
    assert_eq!(first, run(), "two replays differ");
    let got: Value = serde_json::from_slice(&first).unwrap();
    // The jails' bans stay exactly fail2ban's.
    assert_eq!(first_bans(&got), expected(&summary, "normal"));
    assert!(got["bans"].as_array().unwrap().iter().all(|it| it["jail"] == "sshd"));
    let listed = got["blocklisted"].as_array().unwrap();
    assert!(listed.len() > 10, "the fast brute-forcers are block-listed: {}", listed.len());
    let attackers: std::collections::BTreeSet<String> = summary["attackers"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|it| it.as_array().unwrap())
        .map(|it| canonical(it.as_str().unwrap()))
        .collect();
    let of = |key: &str| -> Vec<String> {
        summary[key].as_array().unwrap().iter().map(|it| canonical(it.as_str().unwrap())).collect()
    };
    let (legit, decoys) = (of("legit_ips"), of("decoy_ips"));
    let mut seen = std::collections::BTreeSet::new();
    let mut last = String::new();
    for it in listed {
        let ip = it["ip"].as_str().unwrap().to_owned();
        assert!(attackers.contains(&ip), "{ip} is no attacker");
        assert!(!legit.contains(&ip) && !decoys.contains(&ip), "{ip}");
        assert!(seen.insert(ip.clone()), "{ip} block-listed twice");
        let at = it["at"].as_str().unwrap().to_owned();
        assert!(at >= last, "ordered by time: {at} after {last}");
        last = at;
        assert!(it["score"].as_u64().unwrap() >= 70, "{it}");
        assert!(!it["reasons"].as_array().unwrap().is_empty(), "{it}");
    }
    // --jail filters the bans only; the human summary counts the block-list on one line.
    let human =
        vigil(&[&["replay"], &args[2..], &["--jail", "sshd", log.to_str().unwrap()]].concat());
    let shown = text(&human.stdout);
    assert!(
        shown.contains(&format!("block-listed by threat score: {}\n", listed.len())),
        "{shown}"
    );
    // With the IP tracer off there is nothing to block-list; the bans do not change.
    let off = dir.path().join("off.toml");
    std::fs::write(&off, "[tracers.ip]\nenabled = false\n").unwrap();
    let out =
        vigil(&[&args[..], &["--config", off.to_str().unwrap(), log.to_str().unwrap()]].concat());
    let without: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(without["blocklisted"], serde_json::json!([]));
    assert_eq!(without["bans"], got["bans"]);
    assert_eq!(without["findings"], got["findings"]);
}

#[test]
fn permanent_bans_and_bantime_multipliers_reach_the_ban_decisions() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("auth.log");
    // One failure each at 00:00, 00:10, 00:30 and 01:10 (maxretry 1: a ban each, once the
    // previous one has ended).
    let lines: String = ["00:00:00", "00:10:00", "00:30:00", "01:10:00"]
        .iter()
        .map(|t| {
            format!(
                "Nov  1 {t} web1 sshd[7]: Failed password for root from 203.0.113.9 port 22 ssh2\n"
            )
        })
        .collect();
    std::fs::write(&log, lines).unwrap();
    let run = |config: &str| -> Value {
        let path = dir.path().join("jail.toml");
        std::fs::write(&path, config).unwrap();
        replay(&["--config", path.to_str().unwrap(), log.to_str().unwrap()])
    };
    let got = run("[jails.sshd]\nmaxretry = 1\n[jails.sshd.bantime_increment]\nenabled = true\n\
         multipliers = [1, 2, 4]\nmaxtime = \"30m\"\n");
    let spans: Vec<(String, String)> = got["bans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| (b["at"].as_str().unwrap().into(), b["until"].as_str().unwrap().into()))
        .collect();
    let span = |a: &str, b: &str| (format!("2026-11-01T{a}Z"), format!("2026-11-01T{b}Z"));
    // 10m, then 10m × 2, then 10m × 4 capped at maxtime 30m, then the last multiplier again.
    assert_eq!(
        spans,
        vec![
            span("00:00:00", "00:10:00"),
            span("00:10:00", "00:30:00"),
            span("00:30:00", "01:00:00"),
            span("01:10:00", "01:40:00"),
        ]
    );
    let got = run("[jails.sshd]\nmaxretry = 1\nbantime = -1\n");
    let bans = got["bans"].as_array().unwrap();
    assert_eq!(bans.len(), 1, "banned for good at the first failure: {got}");
    assert_eq!(bans[0]["until"], Value::Null);
    let path = dir.path().join("jail.toml");
    let out = vigil(&[
        "replay",
        "--config",
        path.to_str().unwrap(),
        "--tz",
        "UTC",
        log.to_str().unwrap(),
    ]);
    assert!(
        text(&out.stdout).contains("until permanent after 1 failures"),
        "{}",
        text(&out.stdout)
    );
    // `vigil config check` takes the new keys and refuses bad values with exit 2.
    let out = vigil(&["config", "check", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    for bad in [
        "[jails.sshd]\nbantime = \"-5m\"\n",
        "[jails.sshd]\nbantime = 600\n",
        "[jails.sshd.bantime_increment]\nmultipliers = [2, 0]\n",
        "[jails.sshd.bantime_increment]\nmultipliers = \"1 2 4\"\n",
    ] {
        std::fs::write(&path, bad).unwrap();
        let out = vigil(&["config", "check", path.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{bad}");
        let err = text(&out.stderr);
        assert!(err.contains("bantime") || err.contains("multipliers"), "{bad}: {err}");
    }
}

#[test]
fn the_agent_bans_for_good_keeps_the_ban_across_a_restart_and_lists_it_as_permanent() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("auth.log");
    let lines: String = (0..5)
        .map(|i| {
            format!(
                "<38>1 2026-11-01T10:00:0{i}Z web1 sshd 42 - - Failed password for root from 203.0.113.9 port 22 ssh2\n"
            )
        })
        .collect();
    std::fs::write(&log, lines).unwrap();
    // Runs the agent (bantime = -1 through the environment) until a ban event of `stage`.
    let run_until = |stage: &str| -> Option<Value> {
        let mut cmd = command(env!("CARGO_BIN_EXE_vigil"));
        cmd.args(["run", "--print"])
            .env("VIGIL_AGENT__STATE_DIR", dir.path().join("vigil"))
            .env("VIGIL_JAILS__SSHD__BANTIME", "-1")
            .env("VIGIL_SOURCES__FILES__AUTH__PATHS", format!("[{:?}]", log.to_str().unwrap()))
            .env("VIGIL_SOURCES__FILES__AUTH__START_AT", "beginning")
            .env("VIGIL_SOURCES__FILES__AUTH__POLL_INTERVAL", "20ms")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null());
        let mut child = cmd.spawn().unwrap();
        let rx = common::stdout_lines(child.stdout.take().unwrap());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let mut found = None;
        while found.is_none() && std::time::Instant::now() < deadline {
            let Ok(line) = rx.recv_timeout(std::time::Duration::from_millis(200)) else { continue };
            let event: Value = serde_json::from_str(&line).unwrap();
            if event["kind"] == "ban" && event["payload"]["stage"] == stage {
                found = Some(event);
            }
        }
        rustix::process::kill_process(
            rustix::process::Pid::from_child(&child),
            rustix::process::Signal::TERM,
        )
        .unwrap();
        assert!(child.wait().unwrap().success());
        found
    };
    let banned = run_until("banned").expect("the ban manager's decision");
    assert_eq!(banned["payload"]["ip"], "203.0.113.9");
    assert_eq!(banned["payload"]["bantime_seconds"], -1);
    assert_eq!(banned["payload"].get("until"), None, "no end: {banned}");
    let bans = |json: bool| {
        let mut cmd = command(env!("CARGO_BIN_EXE_vigil"));
        cmd.arg("bans").env("VIGIL_AGENT__STATE_DIR", dir.path().join("vigil"));
        if json {
            cmd.arg("--json");
        }
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        text(&out.stdout)
    };
    let rows: Value = serde_json::from_str(&bans(true)).unwrap();
    assert_eq!(rows[0]["ip"], "203.0.113.9");
    assert_eq!(rows[0]["until"], Value::Null);
    assert!(bans(false).contains("permanent"), "{}", bans(false));
    // Restarted, the agent restores it, still without an end.
    let restored = run_until("restored").expect("the ban restored on start");
    assert_eq!(restored["payload"]["ip"], "203.0.113.9");
    assert_eq!(restored["payload"].get("until"), None, "{restored}");
}
