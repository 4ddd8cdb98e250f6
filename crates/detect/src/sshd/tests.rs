//! Behaviour tests of the sshd detector on real auth.log lines read by vigil-parse.

use chrono::TimeZone;
use serde_json::json;
use vigil_core::{Detector, DetectorContext};
use vigil_event::{Ban, BanStage, Event, Payload};
use vigil_parse::{Clock, Format};

use super::{SshdConfig, SshdDetector};

fn event(line: &str) -> Event {
    let parser = Format::Auto.parser(Clock::utc_at("2026-11-23T12:00:00Z".parse().unwrap()));
    Event::new("web1", "auth", Payload::Log(parser.parse_line(line).unwrap()))
}

fn run(detector: &mut SshdDetector, lines: &[&str]) -> Vec<Event> {
    let mut ctx = DetectorContext::new("web1", SshdDetector::NAME);
    for line in lines {
        detector.handle(&event(line), &mut ctx).unwrap();
    }
    ctx.take()
}

const FAIL_ALICE: &str =
    "Nov  1 09:00:00 web1 sshd[1]: Failed password for alice from 192.0.2.10 port 5000 ssh2";
const OK_ALICE: &str =
    "Nov  1 09:00:30 web1 sshd[1]: Accepted password for alice from 192.0.2.10 port 5001 ssh2";
const FAIL_ROOT: &str =
    "Nov  1 10:00:00 web1 sshd[2]: Failed password for root from 203.0.113.9 port 6000 ssh2";
const INVALID: &str = "Nov  1 10:00:01 web1 sshd[2]: Failed password for invalid user pi from 203.0.113.9 port 6001 ssh2";
const FAIL_ALICE_LATER: &str =
    "Nov  1 11:00:00 web1 sshd[1]: Failed password for alice from 192.0.2.10 port 5002 ssh2";

#[test]
fn daily_statistics_count_logins_and_failures_without_success() {
    let mut sshd = SshdConfig::default().build().unwrap();
    let lines = [FAIL_ALICE, OK_ALICE, FAIL_ROOT, INVALID, FAIL_ALICE_LATER];
    assert!(run(&mut sshd, &lines).is_empty());
    sshd.ban_decided("203.0.113.9", chrono::Utc.with_ymd_and_hms(2026, 11, 1, 10, 5, 0).unwrap());
    // A day with no line reports nothing.
    assert_eq!(sshd.day_report("2026-11-02"), None);
    assert_eq!(
        sshd.day_report("2026-11-01").unwrap(),
        json!({
            "successful_logins": 1,
            "failed_logins": 4,
            // alice's failures before and after her login do not count; root's and pi's do.
            "failed_logins_without_success": 2,
            "failing_addresses": 2,
            "addresses_blocked": 1,
            "tries_exceeded": 0,
        })
    );
    let stats = sshd.statistics();
    assert_eq!(
        (stats["successful_logins"].clone(), stats["failed_logins"].clone()),
        (json!(1), json!(4))
    );
}

#[test]
fn max_tries_failures_from_one_address_raise_one_finding_with_evidence() {
    let mut sshd = SshdConfig { max_tries: 3, ..SshdConfig::default() }.build().unwrap();
    let lines: Vec<String> = (0..8)
        .map(|i| format!("Nov  1 10:00:{i:02} web1 sshd[2]: Failed password for root from 203.0.113.9 port 6000 ssh2"))
        .collect();
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let out = run(&mut sshd, &refs);
    assert_eq!(out.len(), 1, "one finding per window for one address");
    let Payload::Finding(finding) = &out[0].payload else { panic!("{:?}", out[0]) };
    assert_eq!(finding.name, "SSHLoginTriesExceeded");
    assert_eq!(finding.data["ip"], json!("203.0.113.9"));
    let evidence = finding.evidence.as_ref().unwrap();
    assert_eq!(evidence.lines, lines[..3].to_vec());
    assert_eq!((evidence.count, evidence.window_seconds), (3, 600));
    assert_eq!(evidence.rule, "sshd: 3 failed logins within 600s");
    assert_eq!(sshd.statistics()["findings_suppressed"], json!(1));
    assert_eq!(sshd.day_report("2026-11-01").unwrap()["tries_exceeded"], json!(1));
}

#[test]
fn state_survives_a_restart_and_bad_state_is_refused() {
    let mut before = SshdConfig { max_tries: 2, ..SshdConfig::default() }.build().unwrap();
    assert!(run(&mut before, &[FAIL_ROOT]).is_empty());
    let saved = before.save_state().unwrap();
    let mut after = SshdConfig { max_tries: 2, ..SshdConfig::default() }.build().unwrap();
    after.restore_state(saved).unwrap();
    assert_eq!(run(&mut after, &[INVALID]).len(), 1, "the saved failure still counts");
    assert_eq!(after.day_report("2026-11-01").unwrap()["failed_logins"], json!(2));
    assert!(after.restore_state(json!({"version": 2})).is_err());
    assert!(after.restore_state(json!({"version": 1, "tries": 5})).is_err());
}

#[test]
fn ban_decisions_on_the_bus_count_as_blocked_addresses() {
    let mut sshd = SshdConfig::default().build().unwrap();
    let at = chrono::Utc.with_ymd_and_hms(2026, 11, 3, 1, 0, 0).unwrap();
    let mut ctx = DetectorContext::new("web1", SshdDetector::NAME);
    for stage in [BanStage::Requested, BanStage::Banned, BanStage::Banned, BanStage::Refused] {
        let ban = Ban { stage, ..Ban::request("198.51.100.4", "sshd", at) };
        sshd.handle(&Event::new("web1", "bans", Payload::Ban(ban)), &mut ctx).unwrap();
    }
    assert_eq!(sshd.day_report("2026-11-03").unwrap()["addresses_blocked"], json!(1));
    assert!(SshdConfig::filter().matches(&Event::new(
        "web1",
        "bans",
        Payload::Ban(Ban::request("198.51.100.4", "sshd", at))
    )));
}

#[test]
fn days_are_calendar_days_in_the_zone_the_lines_were_written_in() {
    let mut sshd = SshdConfig::default().build().unwrap();
    let lines = [
        "<38>1 2026-11-01T23:30:00+01:00 web1 sshd 42 - - Failed password for root from 203.0.113.9 port 22 ssh2",
        "<38>1 2026-11-02T00:30:00+01:00 web1 sshd 42 - - Failed password for root from 203.0.113.9 port 22 ssh2",
        "<38>1 2026-11-01T23:45:00Z web1 sshd 42 - - Failed password for root from 203.0.113.9 port 22 ssh2",
    ];
    run(&mut sshd, &lines);
    let failed = |day| sshd.day_report(day).map(|it| it["failed_logins"].clone());
    // 23:30+01:00 is 22:30Z on the 1st, 00:30+01:00 is on the 2nd locally, 23:45Z on the 1st.
    assert_eq!(failed("2026-11-01"), Some(json!(2)));
    assert_eq!(failed("2026-11-02"), Some(json!(1)));
}
