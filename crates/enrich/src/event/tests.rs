//! The event tracer on sequences of parsed log events: related services, scores, each
//! causality chain, and bounded aggregates.

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;
use vigil_core::Enricher;
use vigil_event::{Event, Found, LogEvent, Payload};

use super::*;

fn log(source: &str, action: Option<&str>, ip: Option<&str>, message: &str) -> LogEvent {
    LogEvent {
        action: action.map(str::to_owned),
        ip: ip.map(|it| it.parse().unwrap()),
        ..LogEvent::new(source, message)
    }
}

/// What `tracer` records for `log` at `at`, as the event's JSON holds it.
fn trace(tracer: &EventTracer, log: &LogEvent, at: DateTime<Utc>) -> Value {
    Found::Event(tracer.trace(log, at)).to_value()
}

fn t0() -> DateTime<Utc> {
    "2026-11-23T10:00:00Z".parse().unwrap()
}

#[test]
fn services_scores_and_relations() {
    let ssh = log("sshd", Some("failed_password"), Some("203.0.113.9"), "Failed password");
    assert_eq!(service_name(&ssh), "sshd");
    assert!(related_services("sshd").contains(&"fail2ban"));
    assert!(related_services("fail2ban").contains(&"sshd"));
    assert!(related_services("nginx").contains(&"django"));
    assert!(related_services("django").contains(&"nginx"));
    let mut f2b = log("fail2ban", Some("ban"), Some("203.0.113.9"), "[sshd] Ban 203.0.113.9");
    f2b.service = Some("sshd".into());
    assert_eq!(service_name(&f2b), "fail2ban");
    assert_eq!(service_name(&log("nginx_error", None, None, "x")), "nginx");
    assert!(
        severity_score(Some("warning"), Some("ban"))
            > severity_score(None, Some("failed_password"))
    );
    assert!(severity_score(None, Some("failed_password")) > severity_score(None, Some("accepted")));
    assert_eq!(severity_score(Some("emergency"), Some("ban")), 100);
    assert_eq!(severity_score(Some("info"), None), 10);
}

#[test]
fn failed_logins_lead_to_the_ban_chain() {
    let tracer = EventTracerConfig::default().build_always();
    for n in 0..5 {
        let it = log("sshd", Some("failed_password"), Some("203.0.113.9"), "Failed password");
        let found = trace(&tracer, &it, t0() + Duration::seconds(n * 10));
        if n >= 1 {
            assert_eq!(found["causality"]["chain"], "authentication_failure");
            assert_eq!(found["causality"]["cause"], "wrong password");
            assert_eq!(found["causality"]["failures_in_window"], n + 1);
        }
    }
    let invalid = log("sshd", Some("invalid_user"), Some("203.0.113.9"), "Invalid user x");
    let found = trace(&tracer, &invalid, t0() + Duration::seconds(55));
    assert_eq!(found["causality"]["cause"], "unknown user name");
    let ban = log("fail2ban", Some("ban"), Some("203.0.113.9"), "[sshd] Ban 203.0.113.9");
    let found = trace(&tracer, &ban, t0() + Duration::seconds(60));
    assert_eq!(found["service"], "fail2ban");
    assert_eq!(found["causality"]["chain"], "failed_logins_to_ban");
    assert_eq!(found["causality"]["failures"], 6);
    assert_eq!(found["causality"]["first_failure"], "2026-11-23T10:00:00Z");
    // A ban long after the failures has no recorded cause.
    let other = log("sshd", Some("failed_password"), Some("198.51.100.7"), "Failed password");
    trace(&tracer, &other, t0());
    let late = log("fail2ban", Some("ban"), Some("198.51.100.7"), "[sshd] Ban 198.51.100.7");
    let found = trace(&tracer, &late, t0() + Duration::hours(2));
    assert_eq!(found["causality"]["failures"], 0);
}

#[test]
fn connection_failures_find_their_trigger() {
    let tracer = EventTracerConfig::default().build_always();
    let oom = log(
        "kernel",
        None,
        None,
        "Out of memory: Killed process 4242 (gunicorn) total-vm:2048000kB, anon-rss:1024000kB",
    );
    let found = trace(&tracer, &oom, t0());
    assert_eq!(found["causality"]["chain"], "resource_exhaustion");
    assert_eq!(found["causality"]["kind"], "memory");
    assert_eq!(found["causality"]["victim"], "gunicorn");
    let refused = log(
        "nginx_error",
        None,
        None,
        "connect() failed (111: Connection refused) while connecting to upstream",
    );
    let found = trace(&tracer, &refused, t0() + Duration::seconds(30));
    assert_eq!(found["causality"]["chain"], "connection_failure");
    assert_eq!(found["causality"]["failure"], "refused");
    assert_eq!(found["causality"]["trigger"]["kind"], "memory");
    assert_eq!(found["causality"]["trigger"]["victim"], "gunicorn");
    let later = log("nginx_error", None, None, "upstream timed out (110: Connection timed out)");
    let found = trace(&tracer, &later, t0() + Duration::hours(1));
    assert_eq!(found["causality"]["failure"], "timeout");
    assert!(found["causality"]["trigger"].is_null(), "the exhaustion is too old");
    let disk = log("nginx_error", None, None, "write() failed (28: No space left on device)");
    assert_eq!(trace(&tracer, &disk, t0())["causality"]["kind"], "disk");
}

#[test]
fn aggregates_are_counted_and_bounded() {
    let tracer = EventTracerConfig { max_keys: 10, ..Default::default() }.build_always();
    for n in 0..100 {
        let mut it = log("sshd", Some("failed_password"), Some(&format!("192.0.2.{n}")), "x");
        it.user = Some(format!("user{}", n % 3));
        it.level = Some("info".into());
        let mut event = Event::new("h", "auth", Payload::Log(it));
        assert!(tracer.wants(&event));
        tracer.enrich(&mut event, &mut Vec::new());
        assert_eq!(event.enrichment.trace.as_ref().unwrap().tracers[0].tracer, "event");
        let found = event.enrichment.trace.as_ref().unwrap().tracers[0].found.to_value();
        assert_eq!(found["severity_score"], 40);
        assert_eq!(found["related"], "fail2ban,firewall,pam");
    }
    let agg = tracer.aggregates();
    assert_eq!(agg.events, 100);
    assert_eq!(agg.by_action.counts["failed_password"], 100);
    assert_eq!(agg.by_user.counts.len(), 3);
    assert_eq!(agg.by_ip.counts.len(), 10);
    assert_eq!(agg.by_ip.other, 90);
    assert_eq!(agg.by_level.counts["info"], 100);
    assert_eq!(agg.by_service.counts["sshd"], 100);
    let json = tracer.aggregates_json(2);
    assert_eq!(json["by_ip"]["other"], 90);
    assert_eq!(json["by_user"].as_object().unwrap().len(), 2);
}
