//! Behaviour tests of the Report detector: its notices, statistics and saved state.

use chrono::{TimeZone, Utc};
use expect_test::{Expect, expect};
use serde_json::json;
use vigil_core::{Detector, DetectorContext};
use vigil_event::{
    ConnectionInfo, Event, Finding, FindingLevel, LogEvent, Payload, ProcessEvent, ProcessInfo,
    ProcessPhase, Severity, Value,
};

use super::{ReportConfig, ReportDetector};

fn detector() -> ReportDetector {
    ReportConfig::default().build().unwrap()
}

fn ssh_line(action: &str, message: &str) -> LogEvent {
    LogEvent {
        action: Some(action.into()),
        ip: Some("203.0.113.9".parse().unwrap()),
        user: Some("root".into()),
        port: Some(51022),
        pid: Some(811),
        raw: Some(format!("Jan  1 00:00:00 web-1 sshd[811]: {message}")),
        ..LogEvent::new("sshd", message)
    }
}

fn log_event(log: LogEvent) -> Event {
    Event::new("web-1", "auth_log", Payload::Log(log))
}

/// Runs a fresh detector on `event` and renders the one notice it must dispatch.
fn check(event: &Event, expect: &Expect) {
    let mut report = detector();
    let mut ctx = DetectorContext::new("web-1", report.name());
    report.handle(event, &mut ctx).unwrap();
    let out = ctx.take();
    assert_eq!(out.len(), 1, "one notice per record");
    let notice = &out[0];
    assert_eq!(notice.severity, Severity::Notice);
    assert_eq!(&*notice.source, ReportDetector::NAME);
    let Payload::Finding(finding) = &notice.payload else { panic!("not a finding: {notice:?}") };
    assert_eq!(finding.level, FindingLevel::Notice);
    assert_eq!(finding.name, ReportDetector::FINDING_NAME);

    let mut data = finding.data.clone();
    assert_eq!(data.remove("event_id"), Some(Value::from(event.id.to_string())));
    let mut actual = format!("{} from {}: {}\n", finding.name, finding.system, finding.summary);
    for (key, value) in &data {
        actual.push_str(&format!("  {key} = {value}\n"));
    }
    if let Some(record) = &finding.record {
        actual.push_str(&format!("  record: {record}\n"));
    }
    expect.assert_eq(&actual);
}

#[test]
fn a_log_record_becomes_a_notice_with_its_key_fields() {
    let failed =
        ssh_line("failed_password", "Failed password for root from 203.0.113.9 port 51022");
    check(
        &log_event(failed).with_severity(Severity::Warning),
        &expect![[r#"
            Report from sshd: Failed password for root from 203.0.113.9 port 51022
              action = "failed_password"
              ip = "203.0.113.9"
              kind = "log"
              log_source = "sshd"
              pid = 811
              port = 51022
              severity = "warning"
              source = "auth_log"
              user = "root"
              record: Jan  1 00:00:00 web-1 sshd[811]: Failed password for root from 203.0.113.9 port 51022
        "#]],
    );
}

#[test]
fn long_and_multi_line_messages_are_summarised_on_one_short_line() {
    let message = format!("first line\nsecond line {}", "é".repeat(300));
    let log = LogEvent { service: Some("web".into()), ..LogEvent::new("", message) };
    let event = log_event(log);
    let mut report = detector();
    let mut ctx = DetectorContext::new("web-1", report.name());
    report.handle(&event, &mut ctx).unwrap();
    let Payload::Finding(finding) = &ctx.take()[0].payload else { panic!("not a finding") };
    assert_eq!(finding.system, "web", "the service names the system when the source is empty");
    assert_eq!(finding.summary.chars().count(), ReportConfig::default().summary_max_chars);
    assert!(finding.summary.starts_with("first line second line é"));
    assert!(finding.summary.ends_with('…') && !finding.summary.contains('\n'));
    assert_eq!(finding.record, None);
}

#[test]
fn other_kinds_get_a_sensible_summary() {
    let process = Payload::Process(ProcessEvent {
        phase: ProcessPhase::Start,
        process: ProcessInfo {
            pid: 42,
            ppid: Some(1),
            name: Some("nc".into()),
            ..Default::default()
        },
    });
    check(
        &Event::new("web-1", "processes", process),
        &expect![[r#"
            Report from processes: process start pid 42 (nc)
              kind = "process"
              name = "nc"
              phase = "start"
              pid = 42
              ppid = 1
              severity = "info"
              source = "processes"
        "#]],
    );
    let connection = Payload::Connection(ConnectionInfo {
        protocol: "tcp".into(),
        local: "192.0.2.7:22".parse().unwrap(),
        remote: "[2001:db8::1]:51000".parse().unwrap(),
        state: "ESTABLISHED".into(),
        inode: None,
        pid: Some(811),
        process_name: Some("sshd".into()),
    });
    check(
        &Event::new("web-1", "connections", connection),
        &expect![[r#"
            Report from connections: tcp 192.0.2.7:22 -> [2001:db8::1]:51000 ESTABLISHED by sshd (pid 811)
              ip = "2001:db8::1"
              kind = "connection"
              local = "192.0.2.7:22"
              pid = 811
              process_name = "sshd"
              protocol = "tcp"
              remote = "[2001:db8::1]:51000"
              severity = "info"
              source = "connections"
              state = "ESTABLISHED"
        "#]],
    );
    let finding = Finding::new(FindingLevel::Error, "SSHLoginTriesExceeded", "sshd", "6 tries");
    check(
        &Event::new("web-1", "sshd", Payload::Finding(finding)),
        &expect![[r#"
            Report from sshd: SSHLoginTriesExceeded: 6 tries
              kind = "finding"
              name = "SSHLoginTriesExceeded"
              severity = "error"
              source = "sshd"
              system = "sshd"
        "#]],
    );
}

#[test]
fn statistics_count_records_by_dimension_and_time() {
    let mut report = detector();
    let mut ctx = DetectorContext::new("web-1", report.name());
    let at = |minute| Utc.with_ymd_and_hms(2026, 1, 1, 0, minute, 0).unwrap();
    let events = [
        log_event(ssh_line("failed_password", "m")).with_timestamp(at(5)),
        log_event(ssh_line("failed_password", "m")).with_timestamp(at(1)),
        log_event(ssh_line("accepted_password", "m")).with_timestamp(at(3)),
        Event::new("web-1", "nginx_log", Payload::Log(LogEvent::new("nginx_access", "GET /")))
            .with_timestamp(at(2))
            .with_severity(Severity::Notice),
    ];
    for event in &events {
        report.handle(event, &mut ctx).unwrap();
    }
    assert_eq!(ctx.take().len(), 4);
    let stats = serde_json::to_value(report.statistics()).unwrap();
    assert_eq!(
        stats,
        json!({
            "records": 4,
            "first_seen": "2026-01-01T00:01:00+00:00",
            "last_seen": "2026-01-01T00:05:00+00:00",
            "by_kind": {"log": 4},
            "by_source": {"auth_log": 3, "nginx_log": 1},
            "by_system": {"sshd": 3, "nginx_access": 1},
            "by_severity": {"info": 3, "notice": 1},
            "by_action": {"failed_password": 2, "accepted_password": 1},
        })
    );
}

#[test]
fn distinct_keys_per_dimension_stay_bounded() {
    let mut report = detector();
    let mut ctx = DetectorContext::new("web-1", report.name());
    for idx in 0..5000 {
        let log = LogEvent { action: Some(format!("action_{idx}")), ..LogEvent::new("app", "m") };
        report.handle(&log_event(log), &mut ctx).unwrap();
        ctx.take();
    }
    assert_eq!(report.max_n_keys(), ReportDetector::MAX_DISTINCT_KEYS);
    let stats = report.statistics();
    let by_action = stats["by_action"].as_object().unwrap();
    assert_eq!(by_action.len(), ReportDetector::MAX_DISTINCT_KEYS + 1);
    assert_eq!(by_action["other"], 4000);
    assert_eq!(by_action["action_0"], 1);
    assert_eq!(stats["records"], 5000);
}

#[test]
fn statistics_continue_across_a_restart() {
    let mut first = detector();
    let mut ctx = DetectorContext::new("web-1", first.name());
    for action in ["failed_password", "failed_password", "accepted_password"] {
        first.handle(&log_event(ssh_line(action, "m")), &mut ctx).unwrap();
    }
    let state = first.save_state().unwrap();
    let state: Value = serde_json::from_str(&state.to_string()).unwrap();
    assert_eq!(state["version"], 1);

    let mut second = detector();
    second.restore_state(state).unwrap();
    assert_eq!(second.statistics(), first.statistics());
    second.handle(&log_event(ssh_line("failed_password", "m")), &mut ctx).unwrap();
    let stats = second.statistics();
    assert_eq!(stats["records"], 4);
    assert_eq!(stats["by_action"]["failed_password"], 3);
}

#[test]
fn malformed_state_is_an_error_and_keeps_the_counters() {
    let mut report = detector();
    let mut ctx = DetectorContext::new("web-1", report.name());
    report.handle(&log_event(ssh_line("failed_password", "m")), &mut ctx).unwrap();
    let before = report.statistics();
    let cases = [
        (Value::Null, "expected version 1, found none"),
        (json!("state"), "expected version 1, found none"),
        (json!({"version": 2, "statistics": {}}), "expected version 1, found 2"),
        (json!({"version": 1}), "missing field `statistics`"),
        (json!({"version": 1, "statistics": {"records": "many"}}), "invalid type"),
        (json!({"version": 1, "statistics": {"records": -1}}), "invalid value"),
        (
            json!({"version": 1, "statistics": {"records": 1, "first_seen": "yesterday"}}),
            "input contains invalid characters",
        ),
        (
            json!({"version": 1, "statistics": {"records": 1, "by_kind": {"counts": [1]}}}),
            "invalid type",
        ),
    ];
    for (state, expected) in cases {
        let err = report.restore_state(state.clone()).unwrap_err().to_string();
        assert!(err.starts_with("invalid report state: "), "{state}: {err}");
        assert!(err.contains(expected), "{state}: {err}");
    }
    assert_eq!(report.statistics(), before);
}

#[test]
fn restored_state_is_brought_within_the_key_limit() {
    let counts: serde_json::Map<String, Value> =
        (0..1500).map(|idx| (format!("user_{idx:04}"), Value::from(1))).collect();
    let state = json!({
        "version": 1,
        "statistics": {"records": 1500, "by_action": {"counts": counts}, "future_field": true},
    });
    let mut report = detector();
    report.restore_state(state).unwrap();
    assert_eq!(report.max_n_keys(), ReportDetector::MAX_DISTINCT_KEYS);
    assert_eq!(report.statistics()["by_action"]["other"], 500);
}

#[test]
fn the_detector_ignores_its_own_notices() {
    let mut report = detector();
    let mut ctx = DetectorContext::new("web-1", report.name());
    report.handle(&log_event(ssh_line("failed_password", "m")), &mut ctx).unwrap();
    let notices = ctx.take();
    report.handle(&notices[0], &mut ctx).unwrap();
    assert!(ctx.is_empty());
    assert_eq!(report.statistics()["records"], 1);
}

#[test]
fn public_types_are_send_and_sync() {
    fn is_send_sync<T: Send + Sync>() {}
    is_send_sync::<ReportDetector>();
    is_send_sync::<ReportConfig>();
}
