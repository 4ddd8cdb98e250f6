//! Behaviour tests of the log listener: the records it emits, their levels and their fields.

use std::{
    io,
    sync::{Arc, Mutex},
};

use tracing_subscriber::fmt::MakeWriter;
use vigil_core::Listener;
use vigil_event::{
    AuditSchema, Event, Finding, FindingLevel, LogEvent, Payload, Severity, SystemMetrics, Value,
};

use super::{LogListener, LogListenerConfig};

/// A `tracing` writer that collects output in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// What the listener logs for `events`, one line per record, without timestamps.
async fn logged(events: Vec<Event>) -> String {
    logged_with(LogListenerConfig::default(), events).await
}

/// What a listener configured by `config` logs for `events`.
async fn logged_with(config: LogListenerConfig, events: Vec<Event>) -> String {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(captured.clone())
        .with_ansi(false)
        .without_time()
        .with_max_level(tracing::Level::DEBUG)
        .finish();
    // The test runtime is single-threaded, so the thread's default subscriber sees every record.
    let _guard = tracing::subscriber::set_default(subscriber);
    let mut listener = config.build().unwrap();
    let events: Vec<Arc<Event>> = events.into_iter().map(Arc::new).collect();
    listener.handle(&events).await.unwrap();
    listener.flush().await.unwrap();
    captured.text()
}

#[tokio::test]
async fn a_finding_is_logged_as_one_line_with_its_fields() {
    let finding = Finding::new(
        FindingLevel::Error,
        "SSHLoginTriesExceeded",
        "sshd",
        "6 failed logins from 203.0.113.9",
    );
    let event = Event::new("web-1", "ssh_logins", Payload::Finding(finding));
    let id = event.id;
    let text = logged(vec![event]).await;
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(
        text.starts_with(
            "ERROR vigil::events: Finding SSHLoginTriesExceeded from sshd: \
             6 failed logins from 203.0.113.9 kind=\"finding\" source=\"ssh_logins\" \
             host=\"web-1\" severity=\"error\""
        ),
        "{text}"
    );
    assert!(text.contains(&format!("event_id={id}")), "{text}");
    assert!(text.trim_end().ends_with("name=\"SSHLoginTriesExceeded\""), "{text}");
}

#[tokio::test]
async fn levels_follow_severity() {
    let log = |severity| {
        let line = LogEvent { action: Some("x".into()), ..LogEvent::new("app", "m") };
        Event::new("h", "app_log", Payload::Log(line)).with_severity(severity)
    };
    let text = logged(Severity::ALL.into_iter().map(log).collect()).await;
    let levels: Vec<&str> = text.lines().filter_map(|it| it.split_whitespace().next()).collect();
    assert_eq!(levels, ["DEBUG", "INFO", "INFO", "WARN", "ERROR", "ERROR"], "{text}");
    assert!(text.contains("INFO vigil::events: Log from app: m [x] kind=\"log\""), "{text}");
    assert!(!text.contains("name="), "only findings carry a name: {text}");
}

#[tokio::test]
async fn other_kinds_get_a_compact_summary_and_text_cannot_forge_lines() {
    let schema = AuditSchema { name: "logins", fields: &["user", "count"] };
    let audit = schema.record([("user", Value::from("root")), ("count", 3.into())]).unwrap();
    let metrics =
        SystemMetrics { cpu_percent: Some(12.5), load: Some([0.5; 3]), ..Default::default() };
    let forged = LogEvent::new("app", "boom\nERROR vigil::events: Finding Fake from sshd: x");
    let text = logged(vec![
        Event::new("h", "sshd", Payload::Audit(audit)),
        Event::new("h", "system", Payload::SystemMetric(metrics)),
        Event::new("h", "app_log", Payload::Log(forged)).with_severity(Severity::Warning),
    ])
    .await;
    let lines: Vec<&str> = text.lines().map(str::trim_start).collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[0].starts_with("INFO vigil::events: Audit from sshd: logins user=root count=3"));
    assert!(lines[1].starts_with("INFO vigil::events: System metrics from system: cpu 12.5%"));
    assert!(lines[2].starts_with("WARN vigil::events: Log from app: boom ERROR vigil::events:"));
}

#[tokio::test]
async fn a_message_template_replaces_the_description_on_one_line() {
    let finding = Finding::new(FindingLevel::Warning, "SSHLoginTriesExceeded", "sshd", "6 tries")
        .with_data("ip", "203.0.113.9");
    let config = LogListenerConfig {
        message: Some(
            crate::Template::new("{{ name }}\nfrom {{ event.payload.data.ip }}{{ event.nope }}")
                .unwrap(),
        ),
        ..LogListenerConfig::default()
    };
    let text =
        logged_with(config, vec![Event::new("web-1", "ssh", Payload::Finding(finding))]).await;
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(
        text.trim_start().starts_with(
            "WARN vigil::events: SSHLoginTriesExceeded from 203.0.113.9 kind=\"finding\""
        ),
        "{text}"
    );
}

#[test]
fn the_listener_is_send_and_sync() {
    fn is_send_sync<T: Send + Sync>() {}
    is_send_sync::<LogListener>();
}
