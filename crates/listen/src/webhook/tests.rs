//! Behaviour tests of the webhook listener against a real HTTP server on 127.0.0.1.

use std::{
    collections::{BTreeMap, VecDeque},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use vigil_core::Listener;
use vigil_event::{Event, Finding, FindingLevel, LogEvent, Payload, Severity};

use super::{WebhookConfig, WebhookFormat, WebhookStats};
use crate::Template;

/// One request the server received.
#[derive(Debug, Clone)]
struct Received {
    method: String,
    path: String,
    /// Header names lowercased.
    headers: BTreeMap<String, String>,
    body: String,
}

/// A real HTTP server on an ephemeral loopback port that answers with scripted statuses (then
/// 200) and records every request.
struct TestServer {
    url: String,
    received: Arc<Mutex<Vec<Received>>>,
    /// While set, the server holds its answer to the request in hand.
    hold: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl TestServer {
    fn start(statuses: &[u16]) -> TestServer {
        let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
        let port = server.server_addr().to_ip().unwrap().port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let hold = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let mut statuses: VecDeque<u16> = statuses.iter().copied().collect();
        let thread = {
            let (received, hold, stop) = (received.clone(), hold.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let Ok(Some(mut request)) = server.recv_timeout(Duration::from_millis(50))
                    else {
                        continue;
                    };
                    let mut body = String::new();
                    request.as_reader().read_to_string(&mut body).unwrap();
                    let headers = request
                        .headers()
                        .iter()
                        .map(|it| (it.field.as_str().as_str().to_lowercase(), it.value.to_string()))
                        .collect();
                    received.lock().unwrap().push(Received {
                        method: request.method().to_string(),
                        path: request.url().to_owned(),
                        headers,
                        body,
                    });
                    while hold.load(Ordering::Relaxed) && !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    let status = statuses.pop_front().unwrap_or(200);
                    let _ = request
                        .respond(tiny_http::Response::from_string("").with_status_code(status));
                }
            })
        };
        TestServer {
            url: format!("http://127.0.0.1:{port}/hooks/T0/SECRETPATH"),
            received,
            hold,
            stop,
            thread: Some(thread),
        }
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn config(url: &str) -> WebhookConfig {
    WebhookConfig {
        url: url.to_owned(),
        timeout: Duration::from_secs(5),
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(40),
        max_attempts: 3,
        ..WebhookConfig::default()
    }
}

fn finding() -> Arc<Event> {
    let finding = Finding::new(
        FindingLevel::Error,
        "SSHLoginTriesExceeded",
        "sshd",
        "6 failed logins from 203.0.113.9",
    )
    .with_data("ip", "203.0.113.9");
    Arc::new(Event::new("web-1", "ssh", Payload::Finding(finding)))
}

/// Waits (bounded) until `done` holds.
fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[tokio::test]
async fn the_event_is_posted_as_json_with_the_configured_headers() {
    let server = TestServer::start(&[]);
    let mut config = config(&server.url);
    config.headers.insert("Authorization".into(), "Bearer HEADERSECRET".into());
    config.message = Some(Template::new("{{ name }} on {{ host }}").unwrap());
    let mut listener = config.build().unwrap().unwrap();
    let event = finding();
    listener.handle(std::slice::from_ref(&event)).await.unwrap();
    listener.flush().await.unwrap();

    let received = server.received();
    assert_eq!(received.len(), 1);
    let request = &received[0];
    assert_eq!((request.method.as_str(), request.path.as_str()), ("POST", "/hooks/T0/SECRETPATH"));
    assert_eq!(request.headers["authorization"], "Bearer HEADERSECRET");
    assert_eq!(request.headers["content-type"], "application/json");
    assert!(request.headers["user-agent"].starts_with("vigil/"));
    let mut body: serde_json::Value = serde_json::from_str(&request.body).unwrap();
    assert_eq!(body["message"], "SSHLoginTriesExceeded on web-1");
    body.as_object_mut().unwrap().remove("message");
    let back: Event = serde_json::from_value(body).unwrap();
    assert_eq!(back, *event);
    assert_eq!(listener.stats(), WebhookStats { sent: 1, ..WebhookStats::default() });
}

#[tokio::test]
async fn slack_gets_a_text_message_rendered_from_the_template() {
    let server = TestServer::start(&[]);
    let mut config = config(&server.url);
    config.format = WebhookFormat::Slack;
    config.message =
        Some(Template::new("*{{ severity }}* {{ event.payload.data.ip }}: {{ summary }}").unwrap());
    let mut listener = config.build().unwrap().unwrap();
    listener.handle(&[finding()]).await.unwrap();
    // Delivered before the second listener sends anything, so the order is known.
    listener.flush().await.unwrap();

    // The default message when no template is set.
    let mut config = self::config(&server.url);
    config.format = WebhookFormat::Slack;
    let mut default = config.build().unwrap().unwrap();
    let log = LogEvent::new("sshd", "Accepted publickey for deploy");
    default
        .handle(&[Arc::new(
            Event::new("web-1", "auth", Payload::Log(log)).with_severity(Severity::Notice),
        )])
        .await
        .unwrap();
    default.flush().await.unwrap();

    let bodies: Vec<serde_json::Value> =
        server.received().iter().map(|it| serde_json::from_str(&it.body).unwrap()).collect();
    assert_eq!(
        bodies,
        [
            serde_json::json!({
                "text": "*error* 203.0.113.9: SSHLoginTriesExceeded: 6 failed logins from 203.0.113.9"
            }),
            serde_json::json!({
                "text": "[notice] Accepted publickey for deploy (host web-1, source auth)"
            }),
        ]
    );
}

#[tokio::test]
async fn a_body_template_is_rendered_as_json() {
    let server = TestServer::start(&[]);
    let mut config = config(&server.url);
    config.body = Some(
        Template::new(r#"{"alert": {{ name }}, "ip": {{ event.payload.data.ip }}, "n": 1}"#)
            .unwrap(),
    );
    let mut listener = config.build().unwrap().unwrap();
    listener.handle(&[finding()]).await.unwrap();
    listener.flush().await.unwrap();
    let body: serde_json::Value = serde_json::from_str(&server.received()[0].body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"alert": "SSHLoginTriesExceeded", "ip": "203.0.113.9", "n": 1})
    );
}

#[tokio::test]
async fn a_server_error_is_retried_until_it_succeeds() {
    let server = TestServer::start(&[500, 503]);
    let mut listener = config(&server.url).build().unwrap().unwrap();
    listener.handle(&[finding()]).await.unwrap();
    listener.flush().await.unwrap();
    assert_eq!(server.received().len(), 3);
    assert!(server.received().iter().all(|it| it.body == server.received()[0].body));
    assert_eq!(listener.stats(), WebhookStats { sent: 1, retries: 2, failed: 0, dropped: 0 });
}

#[tokio::test]
async fn the_listener_gives_up_after_max_attempts_and_reports_it_once() {
    let server = TestServer::start(&[500, 500, 500, 500]);
    let mut config = config(&server.url);
    config.headers.insert("X-Token".into(), "HEADERSECRET".into());
    let mut listener = config.build().unwrap().unwrap();
    listener.handle(&[finding()]).await.unwrap();
    let err = listener.flush().await.unwrap_err().to_string();
    assert_eq!(server.received().len(), 3, "max_attempts = 3");
    assert_eq!(listener.stats(), WebhookStats { sent: 0, retries: 2, failed: 1, dropped: 0 });
    assert_eq!(err, "webhook: 1 events failed and 0 dropped in all; last error: http status 500");
    // Reported once; the next event goes through (the fourth 500, then 200).
    listener.handle(&[finding()]).await.unwrap();
    listener.flush().await.unwrap();
    assert_eq!(listener.stats().sent, 1);
}

#[tokio::test]
async fn a_client_error_is_not_retried() {
    let server = TestServer::start(&[404]);
    let mut listener = config(&server.url).build().unwrap().unwrap();
    listener.handle(&[finding()]).await.unwrap();
    let err = listener.flush().await.unwrap_err().to_string();
    assert!(err.ends_with("last error: http status 404"), "{err}");
    assert_eq!(server.received().len(), 1);
    assert_eq!(listener.stats().failed, 1);
}

#[tokio::test]
async fn an_unreachable_server_fails_without_leaking_the_url_path() {
    // Bind and close a port so that nothing listens on it.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}/services/SECRETPATH");
    let mut listener = config(&url).build().unwrap().unwrap();
    listener.handle(&[finding()]).await.unwrap();
    let err = listener.flush().await.unwrap_err().to_string();
    assert!(err.starts_with("webhook: 1 events failed"), "{err}");
    assert!(!err.contains("SECRETPATH"), "{err}");
    assert_eq!(listener.stats(), WebhookStats { sent: 0, retries: 2, failed: 1, dropped: 0 });
}

#[tokio::test]
async fn a_full_queue_drops_new_events_and_counts_them() {
    let server = TestServer::start(&[]);
    server.hold.store(true, Ordering::Relaxed);
    let mut config = config(&server.url);
    config.queue_size = 1;
    let mut listener = config.build().unwrap().unwrap();
    listener.handle(&[finding()]).await.unwrap();
    // The worker has taken the first event and waits for the held answer.
    wait_for("the first request", || server.received().len() == 1);
    // One more fits the queue; the third is dropped.
    let err = listener.handle(&[finding(), finding()]).await.unwrap_err().to_string();
    assert!(err.contains("0 events failed and 1 dropped"), "{err}");
    server.hold.store(false, Ordering::Relaxed);
    listener.flush().await.unwrap();
    assert_eq!(server.received().len(), 2);
    assert_eq!(listener.stats(), WebhookStats { sent: 2, retries: 0, failed: 0, dropped: 1 });
}

#[test]
fn the_listener_is_send_and_sync() {
    fn is_send_sync<T: Send + Sync>() {}
    is_send_sync::<super::WebhookListener>();
}
