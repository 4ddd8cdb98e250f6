//! The built-in parsers against the ground truth of `shared/data/gen_authlog.py`: 100,000
//! generated auth.log lines (brute force, sweeps, port scans, injected user names, mapped
//! addresses, legitimate sessions, housekeeping), each compared with its truth record.

use std::{
    collections::BTreeMap,
    io::{BufRead, BufReader},
    net::IpAddr,
    path::{Path, PathBuf},
    process::Command,
};

use serde_json::Value;
use vigil_parse::{Clock, Format, Parsed, parse_ip};

fn shared_data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data")
}

/// Runs the generator into `dir`; returns the log and truth paths.
fn generate(dir: &Path, lines: u32, seed: u32, extra: &[&str]) -> (PathBuf, PathBuf) {
    let log = dir.join("auth.log");
    let truth = dir.join("auth.truth.jsonl");
    #[allow(clippy::disallowed_methods)] // The generator is a Python script; no shell involved.
    let status = Command::new("python3")
        .arg(shared_data().join("gen_authlog.py"))
        .args(["--lines", &lines.to_string(), "--seed", &seed.to_string()])
        .args(extra)
        .arg("-o")
        .arg(&log)
        .arg("--truth")
        .arg(&truth)
        .status()
        .expect("python3 runs (scripts/test installs it)");
    assert!(status.success(), "gen_authlog.py failed");
    (log, truth)
}

fn truth_ip(value: &Value) -> Option<IpAddr> {
    value.as_str().map(|it| parse_ip(it).unwrap_or_else(|| panic!("truth ip {it:?}")))
}

#[derive(Default)]
struct Tally {
    events: BTreeMap<String, u64>,
    mismatches: Vec<String>,
}

fn compare(n: usize, line: &str, got: Option<&Parsed<'_>>, truth: &Value, tally: &mut Tally) {
    let mut wrong = |what: &str| {
        if tally.mismatches.len() < 20 {
            tally.mismatches.push(format!("line {n}: {what}\n  {line}\n  {truth}"));
        } else {
            tally.mismatches.push(String::new());
        }
    };
    let Some(got) = got else {
        wrong("not recognised");
        return;
    };
    let event = truth["event"].as_str();
    *tally.events.entry(event.unwrap_or("null").into()).or_default() += 1;
    if got.action.map(|it| it.as_str()) != event {
        wrong(&format!("action {:?}", got.action));
        return;
    }
    if let Some(decoy) = truth_ip(&truth["decoy_ip"])
        && got.ip == Some(decoy)
    {
        wrong("reported the decoy address");
    }
    if event.is_none() {
        return;
    }
    if got.ip != truth_ip(&truth["ip"]) {
        wrong(&format!("ip {:?}", got.ip));
    }
    if got.user != truth["user"].as_str() {
        wrong(&format!("user {:?}", got.user));
    }
    if got.port.map(u64::from) != truth["port"].as_u64() {
        wrong(&format!("port {:?}", got.port));
    }
    if let Some(dport) = truth.get("dport")
        && got.dport.map(u64::from) != dport.as_u64()
    {
        wrong(&format!("dport {:?}", got.dport));
    }
    if let Some(method) = truth.get("method")
        && got.method != method.as_str()
    {
        wrong(&format!("method {:?}", got.method));
    }
    if got.timestamp.is_none() {
        wrong("no timestamp");
    }
}

fn run(format: Format, log: &Path, truth: &Path) -> Tally {
    let clock = Clock::utc_at("2026-11-23T00:00:00Z".parse().unwrap());
    let parser = format.parser(clock);
    let log = BufReader::new(std::fs::File::open(log).unwrap());
    let truth = BufReader::new(std::fs::File::open(truth).unwrap());
    let mut tally = Tally::default();
    let mut last = i64::MIN;
    for (idx, (line, truth)) in log.lines().zip(truth.lines()).enumerate() {
        let (line, truth) = (line.unwrap(), truth.unwrap());
        let truth: Value = serde_json::from_str(&truth).unwrap();
        assert_eq!(truth["n"].as_u64(), Some(idx as u64 + 1));
        let got = parser.parse(&line);
        if let Some(stamp) = got.as_ref().and_then(|it| it.timestamp) {
            assert!(stamp.seconds >= last, "line {}: time went back", idx + 1);
            last = stamp.seconds;
        }
        compare(idx + 1, &line, got.as_ref(), &truth, &mut tally);
    }
    tally
}

#[test]
fn every_truth_event_of_100k_lines_is_parsed_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let (log, truth) = generate(dir.path(), 100_000, 5, &[]);
    for format in [Format::Auto, Format::Syslog] {
        let tally = run(format, &log, &truth);
        assert!(
            tally.mismatches.is_empty(),
            "{format}: {} mismatches, first ones:\n{}",
            tally.mismatches.len(),
            tally.mismatches.iter().take(20).cloned().collect::<Vec<_>>().join("\n")
        );
        assert_eq!(tally.events.values().sum::<u64>(), 100_000);
        // Every event kind of the generator occurred and was checked, injections included.
        for kind in [
            "failed_password",
            "failed_password_invalid",
            "invalid_user",
            "accepted",
            "pam_auth_failure",
            "max_auth_exceeded",
            "too_many_auth_failures",
            "closed_preauth",
            "closed_preauth_invalid",
            "disconnected_preauth",
            "received_disconnect",
            "disconnected_user",
            "session_opened",
            "session_closed",
            "connection_reset",
            "banner_invalid",
            "fw_block",
            "null",
        ] {
            assert!(tally.events.get(kind).is_some_and(|it| *it > 0), "{format}: no {kind}");
        }
    }
}

#[test]
fn the_sshd_parser_reads_only_sshd_lines() {
    let dir = tempfile::tempdir().unwrap();
    let (log, truth) = generate(dir.path(), 5_000, 11, &[]);
    let parser = Format::Sshd.parser(Clock::utc_at("2026-11-23T00:00:00Z".parse().unwrap()));
    let log = std::fs::read_to_string(log).unwrap();
    let truth = std::fs::read_to_string(truth).unwrap();
    let mut sshd_lines = 0;
    for (line, truth) in log.lines().zip(truth.lines()) {
        let truth: Value = serde_json::from_str(truth).unwrap();
        let got = parser.parse(line);
        if truth["program"] == "sshd" {
            sshd_lines += 1;
            let got = got.unwrap_or_else(|| panic!("not recognised: {line}"));
            assert_eq!(got.action.map(|it| it.as_str()), truth["event"].as_str(), "{line}");
            assert_eq!(got.ip, truth_ip(&truth["ip"]), "{line}");
        } else {
            assert!(got.is_none(), "{line}");
        }
    }
    assert!(sshd_lines > 2_000);
}

#[test]
fn year_less_times_cross_new_year() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) =
        generate(dir.path(), 2_000, 3, &["--span-hours", "2", "--start", "2026-12-31T23:00:00"]);
    // Read on 2 January: December lines are from 2026, January lines from 2027.
    let parser = Format::Auto.parser(Clock::utc_at("2027-01-02T00:00:00Z".parse().unwrap()));
    let log = std::fs::read_to_string(log).unwrap();
    let stamps: Vec<i64> =
        log.lines().map(|it| parser.parse(it).unwrap().timestamp.unwrap().seconds).collect();
    let new_year: i64 = "2027-01-01T00:00:00Z".parse::<jiff::Timestamp>().unwrap().as_second();
    assert_eq!(stamps.first().map(|it| it / 3600), Some((new_year - 3600) / 3600));
    assert!(stamps.windows(2).all(|it| it[0] <= it[1]));
    assert!(stamps.iter().any(|it| *it >= new_year));
    assert!(stamps.iter().all(|it| (new_year - 3600..new_year + 3600).contains(it)));
}
