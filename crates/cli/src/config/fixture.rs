//! A realistic configuration type for this module's tests, shaped like Vigil's own: nested
//! sections, durations, a `NonZeroUsize`, optional keys, an enum, a secret, an optional section
//! and a map of named instances with a default instance.
//!
//! It exists only so the loader and the renderer are tested against the kinds of fields the real
//! `Config` uses, without depending on it.

use std::{collections::BTreeMap, num::NonZeroUsize, time::Duration};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Configuration of a test agent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Sample {
    /// Name of this host in events; the system's hostname when unset.
    #[schemars(example = &"web-1")]
    pub(crate) hostname: Option<String>,
    /// The event bus and the supervision of components.
    pub(crate) runtime: RuntimeConfig,
    /// Listeners, by kind and then by name.
    pub(crate) listeners: ListenersConfig,
    /// The upstream API events are enriched from.
    pub(crate) api: ApiConfig,
    /// An HTTP proxy for outgoing requests; none when the section is absent.
    pub(crate) proxy: Option<ProxyConfig>,
}

/// Event bus and supervision settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RuntimeConfig {
    /// How many events the bus holds before publishers wait. A larger buffer absorbs longer bursts
    /// (a log rotation, a port scan) at the cost of memory: each queued event takes about a
    /// kilobyte, so the default bounds the queue near four megabytes.
    ///
    /// Must be at least 1.
    pub(crate) event_buffer_size: NonZeroUsize,
    /// How often each component reports its health.
    #[serde(with = "crate::config::duration::humantime")]
    #[schemars(with = "String")]
    pub(crate) health_interval: Duration,
    /// How long shutdown waits for components to drain before abandoning them; forever when unset.
    #[serde(with = "crate::config::duration::humantime", skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>", example = &"10s")]
    pub(crate) shutdown_timeout: Option<Duration>,
    /// The least severe messages the agent logs.
    pub(crate) log_level: Level,
}

impl Default for RuntimeConfig {
    fn default() -> RuntimeConfig {
        RuntimeConfig {
            event_buffer_size: NonZeroUsize::new(4096).unwrap_or(NonZeroUsize::MIN),
            health_interval: Duration::from_secs(30),
            shutdown_timeout: None,
            log_level: Level::Info,
        }
    }
}

/// How much the agent logs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Level {
    /// Everything, including each event's path through the bus.
    Debug,
    /// Start, stop and findings.
    Info,
    /// Only what needs attention.
    Warning,
}

/// Listeners, by kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct ListenersConfig {
    /// Listeners that write each event as one JSON line, by name.
    pub(crate) json_lines: BTreeMap<String, JsonLinesConfig>,
}

impl Default for ListenersConfig {
    fn default() -> ListenersConfig {
        let stdout = JsonLinesConfig { path: "-".to_owned(), ..JsonLinesConfig::default() };
        ListenersConfig { json_lines: BTreeMap::from([("stdout".to_owned(), stdout)]) }
    }
}

/// A listener that writes each event it receives as one line of JSON.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct JsonLinesConfig {
    /// The file to append to; `-` is standard output.
    pub(crate) path: String,
    /// Which events this listener receives.
    pub(crate) filter: FilterConfig,
    /// Fields added to every line, by name.
    pub(crate) extra_fields: BTreeMap<String, String>,
}

/// A subscription filter.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct FilterConfig {
    /// Event kinds to accept; empty accepts all.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) kinds: Vec<String>,
    /// The least severe events to accept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) min_level: Option<Level>,
}

/// Access to the upstream API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct ApiConfig {
    /// The API's base URL.
    pub(crate) url: String,
    /// The bearer token; requests go unauthenticated when unset.
    pub(crate) token: Option<String>,
    /// The API's TCP port.
    pub(crate) port: u16,
}

impl Default for ApiConfig {
    fn default() -> ApiConfig {
        ApiConfig { url: "https://api.example.invalid".to_owned(), token: None, port: 443 }
    }
}

/// An HTTP proxy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct ProxyConfig {
    /// The proxy's URL, like `http://proxy.internal:3128`.
    pub(crate) url: String,
    /// How long connecting to the proxy may take.
    #[serde(with = "crate::config::duration::humantime")]
    #[schemars(with = "String", example = &"5s")]
    pub(crate) connect_timeout: Duration,
}
