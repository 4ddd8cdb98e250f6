//! The JSON that the IP and event tracers write into events is a contract for users: these tests
//! pin it byte for byte (keys, their order as the agent writes them, values), for a parsed sshd
//! event and for every causality chain, so a change of the in-memory representation cannot
//! change the output.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use vigil_core::{Enricher, enrich_with};
use vigil_enrich::{event::EventTracerConfig, ip::IpTracerConfig};
use vigil_event::{Event, LogEvent, Payload};
use vigil_parse::{Clock, Format};

fn chain() -> Vec<Arc<dyn Enricher>> {
    vec![
        Arc::new(IpTracerConfig::default().build_always().unwrap()),
        Arc::new(EventTracerConfig::default().build_always()),
    ]
}

fn fixed_time() -> DateTime<Utc> {
    "2026-11-23T10:00:30Z".parse().unwrap()
}

/// Enriches `event` with `chain` and sets the trace's clock readings to a fixed time.
fn enrich(chain: &[Arc<dyn Enricher>], mut event: Event) -> (Event, Vec<Event>) {
    let extra = enrich_with(chain, &mut event);
    if let Some(trace) = &mut event.enrichment.trace {
        trace.traced_at = fixed_time();
        for record in &mut trace.tracers {
            record.at = fixed_time();
        }
    }
    (event, extra)
}

fn enrichment_json(event: &Event) -> String {
    serde_json::to_string(&event.enrichment).unwrap()
}

fn log(source: &str, action: Option<&str>, ip: Option<&str>, at: &str, message: &str) -> Event {
    let log = LogEvent {
        action: action.map(str::to_owned),
        ip: ip.map(|it| it.parse().unwrap()),
        timestamp: Some(at.parse().unwrap()),
        ..LogEvent::new(source, message)
    };
    Event::new("web1", "files.auth", Payload::Log(log))
}

#[test]
fn an_enriched_sshd_event_is_pinned() {
    let chain = chain();
    let parser = Format::Auto.parser(Clock::utc_at("2026-11-23T12:00:00Z".parse().unwrap()));
    let mut last = String::new();
    for second in 0..2 {
        let line = format!(
            "Nov 23 10:00:0{second} web1 sshd[4242]: Failed password for root from 203.0.113.9 \
             port 51234 ssh2"
        );
        let parsed = parser.parse_line(&line).unwrap();
        let mut event = Event::new("web1", "files.auth", Payload::Log(parsed));
        event.id = serde_json::from_str("\"019ab0a4-0000-7000-8000-000000000000\"").unwrap();
        event.timestamp = fixed_time();
        let (event, _) = enrich(&chain, event);
        last = serde_json::to_string(&event).unwrap();
        let back: Event = serde_json::from_str(&last).unwrap();
        assert_eq!(back, event, "the enriched event round-trips");
    }
    assert_eq!(
        last,
        concat!(
            r#"{"schema_version":1,"id":"019ab0a4-0000-7000-8000-000000000000","#,
            r#""timestamp":"2026-11-23T10:00:30Z","host":"web1","source":"files.auth","#,
            r#""severity":"info","kind":"log","payload":{"source":"sshd","#,
            r#""timestamp":"2026-11-23T10:00:01Z","action":"failed_password","#,
            r#""ip":"203.0.113.9","user":"root","port":51234,"service":"sshd","pid":4242,"#,
            r#""message":"Failed password for root from 203.0.113.9 port 51234 ssh2","#,
            r#""raw":"Nov 23 10:00:01 web1 sshd[4242]: Failed password for root from "#,
            r#"203.0.113.9 port 51234 ssh2","utc_offset_seconds":0,"host":"web1","#,
            r#""method":"password"},"#,
            r#""enrichment":{"fields":{"threat_score":8},"trace":{"#,
            r#""traced_at":"2026-11-23T10:00:30Z","tracers":[{"tracer":"ip","#,
            r#""at":"2026-11-23T10:00:30Z","found":{"class":"public","score":8}},"#,
            r#"{"tracer":"event","at":"2026-11-23T10:00:30Z","found":{"service":"sshd","#,
            r#""related":"fail2ban,firewall,pam","severity_score":45,"causality":{"#,
            r#""chain":"authentication_failure","cause":"wrong password","#,
            r#""failures_in_window":2}}}]}}}"#
        )
    );
}

#[test]
fn every_chain_and_the_block_list_flag_are_pinned() {
    let chain = chain();
    let mut out = Vec::new();
    let first = log("sshd", Some("invalid_user"), Some("2001:db8::7"), "2026-11-23T09:59:00Z", "x");
    out.push(enrichment_json(&enrich(&chain, first).0));
    let mut bans = 0;
    for n in 0..12 {
        let at = format!("2026-11-23T10:00:{n:02}Z");
        let (event, extra) =
            enrich(&chain, log("sshd", Some("failed_password"), Some("203.0.113.9"), &at, "x"));
        bans += extra.len();
        if n == 0 || n == 11 {
            out.push(enrichment_json(&event));
        }
    }
    assert_eq!(bans, 1, "one ban request when the address is block-listed");
    let ban = log("fail2ban", Some("ban"), Some("203.0.113.9"), "2026-11-23T10:00:20Z", "Ban");
    out.push(enrichment_json(&enrich(&chain, ban).0));
    let mut cron = log("syslog", None, None, "2026-11-23T10:00:21Z", "session opened");
    if let Payload::Log(it) = &mut cron.payload {
        it.service = Some("myjob".into());
        it.level = Some("warning".into());
    }
    out.push(enrichment_json(&enrich(&chain, cron).0));
    let oom = "Out of memory: Killed process 4242 (gunicorn) total-vm:2048000kB";
    out.push(enrichment_json(
        &enrich(&chain, log("kernel", None, None, "2026-11-23T10:00:22Z", oom)).0,
    ));
    let refused = "connect() failed (111: Connection refused) while connecting to upstream";
    let at = "2026-11-23T10:00:23Z";
    out.push(enrichment_json(&enrich(&chain, log("nginx_error", None, None, at, refused)).0));
    let late = "upstream timed out (110: Connection timed out)";
    let at = "2026-11-23T12:00:00Z";
    out.push(enrichment_json(&enrich(&chain, log("nginx_error", None, None, at, late)).0));
    let disk = "write() failed (28: No space left on device)";
    let at = "2026-11-23T12:00:01Z";
    out.push(enrichment_json(&enrich(&chain, log("nginx_error", None, None, at, disk)).0));
    let ok = log("sshd", Some("accepted"), Some("10.0.0.5"), "2026-11-23T12:00:02Z", "Accepted");
    out.push(enrichment_json(&enrich(&chain, ok).0));
    let expected = [
        r#"{"fields":{"threat_score":3},"trace":{"traced_at":"2026-11-23T10:00:30Z","tracers":[{"tracer":"ip","at":"2026-11-23T10:00:30Z","found":{"class":"public","score":3}},{"tracer":"event","at":"2026-11-23T10:00:30Z","found":{"service":"sshd","related":"fail2ban,firewall,pam","severity_score":50,"causality":{"chain":"authentication_failure","cause":"unknown user name","failures_in_window":1}}}]}}"#,
        r#"{"fields":{"threat_score":4},"trace":{"traced_at":"2026-11-23T10:00:30Z","tracers":[{"tracer":"ip","at":"2026-11-23T10:00:30Z","found":{"class":"public","score":4}},{"tracer":"event","at":"2026-11-23T10:00:30Z","found":{"service":"sshd","related":"fail2ban,firewall,pam","severity_score":45}}]}}"#,
        r#"{"fields":{"threat_score":70},"trace":{"traced_at":"2026-11-23T10:00:30Z","tracers":[{"tracer":"ip","at":"2026-11-23T10:00:30Z","found":{"class":"public","score":70,"blocklisted":true}},{"tracer":"event","at":"2026-11-23T10:00:30Z","found":{"service":"sshd","related":"fail2ban,firewall,pam","severity_score":45,"causality":{"chain":"authentication_failure","cause":"wrong password","failures_in_window":12}}}]}}"#,
        r#"{"fields":{"threat_score":90},"trace":{"traced_at":"2026-11-23T10:00:30Z","tracers":[{"tracer":"ip","at":"2026-11-23T10:00:30Z","found":{"class":"public","score":90,"blocklisted":true}},{"tracer":"event","at":"2026-11-23T10:00:30Z","found":{"service":"fail2ban","related":"sshd,nginx,firewall","severity_score":60,"causality":{"chain":"failed_logins_to_ban","failures":12,"first_failure":"2026-11-23T10:00:00Z","last_failure":"2026-11-23T10:00:11Z"}}}]}}"#,
        r#"{"trace":{"traced_at":"2026-11-23T10:00:30Z","tracers":[{"tracer":"event","at":"2026-11-23T10:00:30Z","found":{"service":"myjob","related":"","severity_score":30}}]}}"#,
        r#"{"trace":{"traced_at":"2026-11-23T10:00:30Z","tracers":[{"tracer":"event","at":"2026-11-23T10:00:30Z","found":{"service":"kernel","related":"systemd","severity_score":15,"causality":{"chain":"resource_exhaustion","kind":"memory","victim":"gunicorn"}}}]}}"#,
        r#"{"trace":{"traced_at":"2026-11-23T10:00:30Z","tracers":[{"tracer":"event","at":"2026-11-23T10:00:30Z","found":{"service":"nginx","related":"django,gunicorn,uwsgi,php-fpm,fail2ban","severity_score":15,"causality":{"chain":"connection_failure","failure":"refused","trigger":{"kind":"memory","service":"kernel","victim":"gunicorn","at":"2026-11-23T10:00:22Z"}}}}]}}"#,
        r#"{"trace":{"traced_at":"2026-11-23T10:00:30Z","tracers":[{"tracer":"event","at":"2026-11-23T10:00:30Z","found":{"service":"nginx","related":"django,gunicorn,uwsgi,php-fpm,fail2ban","severity_score":15,"causality":{"chain":"connection_failure","failure":"timeout","trigger":null}}}]}}"#,
        r#"{"trace":{"traced_at":"2026-11-23T10:00:30Z","tracers":[{"tracer":"event","at":"2026-11-23T10:00:30Z","found":{"service":"nginx","related":"django,gunicorn,uwsgi,php-fpm,fail2ban","severity_score":15,"causality":{"chain":"resource_exhaustion","kind":"disk","victim":null}}}]}}"#,
        r#"{"fields":{"threat_score":0},"trace":{"traced_at":"2026-11-23T10:00:30Z","tracers":[{"tracer":"ip","at":"2026-11-23T10:00:30Z","found":{"class":"private","score":0}},{"tracer":"event","at":"2026-11-23T10:00:30Z","found":{"service":"sshd","related":"fail2ban,firewall,pam","severity_score":30}}]}}"#,
    ];
    for (n, (got, want)) in out.iter().zip(expected.iter()).enumerate() {
        assert_eq!(got, want, "case {n}");
    }
    assert_eq!(out.len(), expected.len(), "{out:#?}");
}
