//! Configuration of the webhook listener: the raw, serde-facing half of its two-phase config.
//!
//! A `[listeners.webhook.<name>]` table deserialises into [`WebhookConfig`];
//! [`WebhookConfig::build`] checks it and returns the running [`WebhookListener`]. The field docs
//! here become the generated example config. Header values and the URL's path and query (Slack
//! puts its secret there) are never printed: `Debug` and every error redact them.
//!
//! ```toml
//! [listeners.webhook.slack]
//! url = "https://hooks.slack.com/services/T000/B000/XXXX"
//! format = "slack"
//! message = "[{{ severity }}] {{ summary }} on {{ host }}"
//! filter = { kinds = ["finding"] }
//! ```

use std::{collections::BTreeMap, fmt, time::Duration};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use vigil_core::{ComponentError, Filter};
use vigil_event::EventKind;

use super::WebhookListener;
use crate::Template;

/// The shape of the request body.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WebhookFormat {
    /// The event envelope as JSON (with a `message` field when a `message` template is set), or
    /// the `body` template rendered as JSON.
    #[default]
    Json,
    /// A Slack incoming webhook: `{"text": "<message>"}`.
    Slack,
}

/// Configuration of the webhook listener, which POSTs each event it receives as JSON to a URL,
/// retrying failed deliveries with exponential backoff.
#[derive(Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookConfig {
    /// Whether the listener runs.
    pub enabled: bool,
    /// Where to POST: an `http://` or `https://` URL. Certificates are always verified. Its path
    /// and query are treated as secret and never logged.
    #[schemars(example = &"https://hooks.example.com/vigil")]
    pub url: String,
    /// The body's shape: `json` (the event) or `slack` (`{"text": message}`).
    pub format: WebhookFormat,
    /// Template of the message (minijinja; context in `docs/specs/template.md`). For `slack`
    /// it is the text (default: severity, summary, host and source); for `json` it is added to
    /// the event as `message`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(example = &"[{{ severity }}] {{ summary }} on {{ host }}")]
    pub message: Option<Template>,
    /// For `json` only: a template of the whole body, rendered with every printed value written
    /// as JSON (`{"ip": {{ event.payload.ip }}}`); the result must be valid JSON.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<Template>,
    /// Extra request headers (`Authorization = "Bearer …"`); values are never logged.
    pub headers: BTreeMap<String, String>,
    /// Longest time one request may take, connection included.
    #[serde(with = "vigil_core::duration")]
    #[schemars(with = "String")]
    pub timeout: Duration,
    /// Attempts per event before it is given up (counted and reported as an error); at least 1.
    pub max_attempts: u32,
    /// Wait before the first retry; each further retry waits twice as long.
    #[serde(with = "vigil_core::duration")]
    #[schemars(with = "String")]
    pub initial_backoff: Duration,
    /// Longest wait between two attempts.
    #[serde(with = "vigil_core::duration")]
    #[schemars(with = "String")]
    pub max_backoff: Duration,
    /// Events waiting for delivery, at most; when full, new events are dropped, counted and
    /// reported as an error.
    pub queue_size: usize,
    /// Which events to send; by default findings and bans.
    pub filter: Filter,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            enabled: true,
            url: String::new(),
            format: WebhookFormat::Json,
            message: None,
            body: None,
            headers: BTreeMap::new(),
            timeout: Duration::from_secs(10),
            max_attempts: 5,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            queue_size: 1000,
            filter: Filter::any().kinds([EventKind::Finding, EventKind::Ban]),
        }
    }
}

impl fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<&str> = self.headers.keys().map(String::as_str).collect();
        f.debug_struct("WebhookConfig")
            .field("enabled", &self.enabled)
            .field("url", &redact_url(&self.url))
            .field("format", &self.format)
            .field("message", &self.message)
            .field("body", &self.body)
            .field("headers", &headers)
            .field("timeout", &self.timeout)
            .field("max_attempts", &self.max_attempts)
            .field("initial_backoff", &self.initial_backoff)
            .field("max_backoff", &self.max_backoff)
            .field("queue_size", &self.queue_size)
            .field("filter", &self.filter)
            .finish()
    }
}

impl WebhookConfig {
    /// The listener this configuration describes, or `None` when it is disabled. Fails when the
    /// configuration cannot work (no URL, another scheme, a `body` template for Slack, a header
    /// that is not valid HTTP, zero attempts or queue size).
    pub fn build(&self) -> Result<Option<WebhookListener>, ComponentError> {
        if !self.enabled {
            return Ok(None);
        }
        self.check()?;
        WebhookListener::new(self).map(Some)
    }

    pub(super) fn check(&self) -> Result<(), ComponentError> {
        let fail = |text: String| Err(ComponentError::Config(format!("webhook: {text}")));
        if self.url.is_empty() {
            return fail("`url` is required".to_owned());
        }
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            return fail(format!("`url` {} is not http:// or https://", redact_url(&self.url)));
        }
        if self.format == WebhookFormat::Slack && self.body.is_some() {
            return fail("`body` applies to format = \"json\"; use `message` for Slack".to_owned());
        }
        if self.max_attempts == 0 || self.queue_size == 0 {
            return fail("`max_attempts` and `queue_size` must be at least 1".to_owned());
        }
        for name in self.headers.keys() {
            let valid = !name.is_empty()
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b));
            if !valid {
                return fail(format!("header name {name:?} is not a valid HTTP header name"));
            }
        }
        if self.headers.values().any(|it| it.bytes().any(|b| b.is_ascii_control())) {
            return fail("a header value contains control characters".to_owned());
        }
        Ok(())
    }
}

/// `url` without its path, query or user information: `https://hooks.slack.com/…`.
pub(crate) fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "<redacted>".to_owned();
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit('@').next().unwrap_or_default();
    let tail = if rest.len() > authority.len() { "/…" } else { "" };
    format!("{scheme}://{host}{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_send_findings_and_bans_and_unknown_keys_are_rejected() {
        let config: WebhookConfig = toml::from_str("url = \"https://example.com/x\"").unwrap();
        assert_eq!(
            config,
            WebhookConfig { url: "https://example.com/x".into(), ..Default::default() }
        );
        assert_eq!(config.timeout, Duration::from_secs(10));

        let text = "url = \"http://127.0.0.1:9/h\"\nformat = \"slack\"\ntimeout = \"2s\"\n\
                    message = \"{{ summary }}\"\nheaders = { Authorization = \"Bearer t\" }";
        let config: WebhookConfig = toml::from_str(text).unwrap();
        assert_eq!(config.format, WebhookFormat::Slack);
        assert_eq!(config.timeout, Duration::from_secs(2));
        assert_eq!(config.message.as_ref().unwrap().source(), "{{ summary }}");

        let err = toml::from_str::<WebhookConfig>("uri = \"x\"").unwrap_err();
        assert!(err.to_string().contains("unknown field `uri`"), "{err}");
        let err = toml::from_str::<WebhookConfig>("message = \"{{ oops\"").unwrap_err();
        assert!(err.to_string().contains("template syntax error"), "{err}");
    }

    #[test]
    fn configurations_that_cannot_work_are_refused() {
        let refused = |config: WebhookConfig| config.build().unwrap_err().to_string();
        assert!(refused(WebhookConfig::default()).contains("`url` is required"));
        let err =
            refused(WebhookConfig { url: "ftp://u:secret@h/tok".into(), ..Default::default() });
        assert!(
            err.contains("ftp://h/…") && !err.contains("secret") && !err.contains("tok"),
            "{err}"
        );
        let slack_body = WebhookConfig {
            url: "https://h/x".into(),
            format: WebhookFormat::Slack,
            body: Some(Template::new("{}").unwrap()),
            ..Default::default()
        };
        assert!(refused(slack_body).contains("`body` applies to"));
        let zero =
            WebhookConfig { url: "https://h/x".into(), max_attempts: 0, ..Default::default() };
        assert!(refused(zero).contains("at least 1"));
        let header = WebhookConfig {
            url: "https://h/x".into(),
            headers: [("Bad Name".to_owned(), "v".to_owned())].into_iter().collect(),
            ..Default::default()
        };
        assert!(refused(header).contains("header name"));
        assert!(WebhookConfig { enabled: false, ..Default::default() }.build().unwrap().is_none());
    }

    #[test]
    fn debug_output_and_urls_are_redacted() {
        let config = WebhookConfig {
            url: "https://hooks.slack.com/services/T0/B0/SECRETTOKEN?x=1".into(),
            headers: [("Authorization".to_owned(), "Bearer HEADERSECRET".to_owned())]
                .into_iter()
                .collect(),
            ..Default::default()
        };
        let text = format!("{config:?}");
        assert!(text.contains("https://hooks.slack.com/…") && text.contains("Authorization"));
        assert!(!text.contains("SECRETTOKEN") && !text.contains("HEADERSECRET"), "{text}");
        assert_eq!(redact_url("http://127.0.0.1:8080"), "http://127.0.0.1:8080");
        assert_eq!(redact_url("no scheme"), "<redacted>");
    }
}
