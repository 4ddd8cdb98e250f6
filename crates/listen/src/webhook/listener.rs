//! The webhook listener: each event POSTed as JSON (generic or Slack's shape), with retries.
//!
//! `handle` renders each event's body at once and puts it in a bounded queue (`queue_size`); a
//! full queue drops the new event, counts it and reports it as the batch's error, so a slow or
//! dead endpoint never stalls the pipeline. One worker thread delivers the queue in order with a
//! blocking HTTP client (`ureq`, rustls, certificates verified): a connection error, a timeout,
//! `429` or a `5xx` answer is retried after `initial_backoff`, doubling up to `max_backoff`, until
//! `max_attempts`; another `4xx` (or `3xx`: redirects are not followed) is not retried. A delivery
//! given up is logged, counted in [`WebhookStats`] and returned as an error by the next `handle`
//! or `flush`, which is how it reaches the agent's health.
//!
//! `flush` waits until everything queued before it was delivered or given up. Errors and logs
//! never contain header values or the URL's path and query (where Slack keeps its secret).

use std::{
    collections::BTreeMap,
    fmt,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot};
use vigil_core::{ComponentError, Filter, Listener};
use vigil_event::Event;

use super::{WebhookConfig, WebhookFormat, config::redact_url};
use crate::{Template, template};

/// The Slack text used when no `message` template is configured.
const DEFAULT_SLACK_MESSAGE: &str =
    "[{{ severity }}] {{ summary }} (host {{ host }}, source {{ source }})";

/// Counters of one webhook listener since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WebhookStats {
    /// Events delivered (a `2xx` answer).
    pub sent: u64,
    /// Attempts repeated after a retryable failure.
    pub retries: u64,
    /// Events given up: attempts exhausted, a permanent failure or a body that did not render.
    pub failed: u64,
    /// Events dropped because the queue was full.
    pub dropped: u64,
}

/// POSTs each event it handles to a URL, from a bounded queue with retries.
pub struct WebhookListener {
    filter: Filter,
    format: WebhookFormat,
    message: Option<Template>,
    body: Option<Template>,
    queue: mpsc::Sender<Job>,
    shared: Arc<Shared>,
    /// `failed + dropped` when an error was last returned, so each failure is reported once.
    reported: u64,
}

impl fmt::Debug for WebhookListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookListener")
            .field("filter", &self.filter)
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

/// What the worker is asked to do, in order.
enum Job {
    Deliver(Vec<u8>),
    Flush(oneshot::Sender<()>),
}

/// State shared by the listener and its worker.
#[derive(Default)]
struct Shared {
    sent: AtomicU64,
    retries: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl Shared {
    fn stats(&self) -> WebhookStats {
        WebhookStats {
            sent: self.sent.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
        }
    }

    fn set_error(&self, error: String) {
        *self.last_error.lock().unwrap_or_else(PoisonError::into_inner) = Some(error);
    }
}

impl WebhookListener {
    /// The listener's name.
    pub const NAME: &'static str = "webhook";

    /// A listener configured by `config`, with its delivery thread started. The configuration is
    /// not checked again; see [`WebhookConfig::build`].
    pub(super) fn new(config: &WebhookConfig) -> Result<WebhookListener, ComponentError> {
        let (queue, jobs) = mpsc::channel(config.queue_size);
        let shared = Arc::new(Shared::default());
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(config.timeout))
            .http_status_as_error(false)
            .max_redirects(0)
            .max_redirects_will_error(false)
            .user_agent(concat!("vigil/", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        let worker = Worker {
            agent,
            url: config.url.clone(),
            headers: config.headers.clone(),
            max_attempts: config.max_attempts,
            initial_backoff: config.initial_backoff,
            max_backoff: config.max_backoff,
            shared: Arc::clone(&shared),
        };
        std::thread::Builder::new()
            .name("vigil-webhook".to_owned())
            .spawn(move || worker.run(jobs))
            .map_err(|err| {
                ComponentError::msg(format!("cannot start the webhook thread: {err}"))
            })?;
        let message = match (config.format, &config.message) {
            (WebhookFormat::Slack, None) => Some(Template::new(DEFAULT_SLACK_MESSAGE)?),
            (_, message) => message.clone(),
        };
        Ok(WebhookListener {
            filter: config.filter.clone(),
            format: config.format,
            message,
            body: config.body.clone(),
            queue,
            shared,
            reported: 0,
        })
    }

    /// The filter the runtime registers the listener with.
    pub fn filter(&self) -> &Filter {
        &self.filter
    }

    /// The listener's counters.
    pub fn stats(&self) -> WebhookStats {
        self.shared.stats()
    }

    /// The request body for `event`.
    fn body(&self, event: &Event) -> Result<Vec<u8>, ComponentError> {
        let value = if let Some(body) = &self.body {
            body.render_json(event)?
        } else {
            let message = self.message.as_ref().map(|it| it.render_or_summary(event, Self::NAME));
            match self.format {
                WebhookFormat::Slack => {
                    serde_json::json!({ "text": message.unwrap_or_else(|| template::summary(event)) })
                }
                WebhookFormat::Json => {
                    let mut value = serde_json::to_value(event).map_err(|err| {
                        ComponentError::msg(format!("cannot serialise event {}: {err}", event.id))
                    })?;
                    if let (Some(message), Some(object)) = (message, value.as_object_mut()) {
                        object.insert("message".to_owned(), message.into());
                    }
                    value
                }
            }
        };
        serde_json::to_vec(&value).map_err(|err| ComponentError::msg(err.to_string()))
    }

    /// An error when deliveries failed or events were dropped since the last one reported.
    fn report(&mut self) -> Result<(), ComponentError> {
        let stats = self.shared.stats();
        let total = stats.failed + stats.dropped;
        if total == self.reported {
            return Ok(());
        }
        self.reported = total;
        let last = self.shared.last_error.lock().unwrap_or_else(PoisonError::into_inner).clone();
        Err(ComponentError::msg(format!(
            "webhook: {} events failed and {} dropped in all; last error: {}",
            stats.failed,
            stats.dropped,
            last.as_deref().unwrap_or("queue full")
        )))
    }
}

#[async_trait]
impl Listener for WebhookListener {
    fn name(&self) -> &str {
        WebhookListener::NAME
    }

    async fn handle(&mut self, events: &[Arc<Event>]) -> Result<(), ComponentError> {
        for event in events {
            let body = match self.body(event) {
                Ok(it) => it,
                Err(err) => {
                    self.shared.failed.fetch_add(1, Ordering::Relaxed);
                    self.shared.set_error(err.to_string());
                    continue;
                }
            };
            match self.queue.try_send(Job::Deliver(body)) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    self.shared.dropped.fetch_add(1, Ordering::Relaxed);
                    self.shared.set_error("queue full".to_owned());
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    return Err(ComponentError::msg("webhook: the delivery thread stopped"));
                }
            }
        }
        self.report()
    }

    async fn flush(&mut self) -> Result<(), ComponentError> {
        let (done, delivered) = oneshot::channel();
        if self.queue.send(Job::Flush(done)).await.is_err() || delivered.await.is_err() {
            return Err(ComponentError::msg("webhook: the delivery thread stopped"));
        }
        self.report()
    }
}

/// The delivery thread: takes jobs in order and POSTs each body with retries.
struct Worker {
    agent: ureq::Agent,
    url: String,
    headers: BTreeMap<String, String>,
    max_attempts: u32,
    initial_backoff: Duration,
    max_backoff: Duration,
    shared: Arc<Shared>,
}

/// How one attempt ended.
enum Attempt {
    Delivered,
    Retry(String),
    GiveUp(String),
}

impl Worker {
    fn run(self, mut jobs: mpsc::Receiver<Job>) {
        while let Some(job) = jobs.blocking_recv() {
            match job {
                Job::Deliver(body) => self.deliver(&body),
                Job::Flush(done) => {
                    let _ = done.send(());
                }
            }
        }
    }

    fn deliver(&self, body: &[u8]) {
        let mut wait = self.initial_backoff;
        let mut attempt = 1;
        let error = loop {
            match self.attempt(body) {
                Attempt::Delivered => {
                    self.shared.sent.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Attempt::GiveUp(error) => break error,
                Attempt::Retry(error) if attempt >= self.max_attempts => break error,
                Attempt::Retry(error) => {
                    tracing::debug!(attempt, error = %error, wait = ?wait, "Webhook delivery failed; retrying");
                    self.shared.retries.fetch_add(1, Ordering::Relaxed);
                    std::thread::sleep(wait);
                    wait = wait.saturating_mul(2).min(self.max_backoff);
                    attempt += 1;
                }
            }
        };
        tracing::warn!(
            url = %redact_url(&self.url),
            attempts = attempt,
            error = %error,
            "Webhook delivery failed; giving up on the event"
        );
        self.shared.failed.fetch_add(1, Ordering::Relaxed);
        self.shared.set_error(error);
    }

    fn attempt(&self, body: &[u8]) -> Attempt {
        let mut request = self.agent.post(&self.url).header("Content-Type", "application/json");
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        match request.send(body) {
            Ok(response) => {
                let status = response.status().as_u16();
                match status {
                    200..=299 => Attempt::Delivered,
                    429 | 500..=599 => Attempt::Retry(format!("http status {status}")),
                    _ => Attempt::GiveUp(format!("http status {status}")),
                }
            }
            Err(err) => Attempt::Retry(self.scrub(&err.to_string())),
        }
    }

    /// `text` without the URL or any header value.
    fn scrub(&self, text: &str) -> String {
        let mut text = text.replace(&self.url, &redact_url(&self.url));
        // The path and query alone (after `scheme://authority`), where a token usually lives.
        let after_scheme = self.url.split_once("://").map_or("", |it| it.1);
        if let Some(start) = after_scheme.find(['/', '?', '#']) {
            let tail = &after_scheme[start..];
            if tail.len() > 1 {
                text = text.replace(tail, "/…");
            }
        }
        for value in self.headers.values().filter(|it| !it.is_empty()) {
            text = text.replace(value.as_str(), "<redacted>");
        }
        text
    }
}
