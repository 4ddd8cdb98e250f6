//! The runtime's settings, built seed-003 style: `RuntimeConfig::new().with_…(…)`.
//!
//! This is the validated, in-memory form. The CLI reads the `[runtime]` section of the TOML file
//! into its own raw struct and builds this from it (house style: raw config, then validated
//! objects), so the runtime itself knows nothing about files or serde.

use std::time::Duration;

use crate::DropPolicy;

/// Settings of a [`Runtime`](crate::Runtime).
#[derive(Debug, Clone, PartialEq)]
pub struct RuntimeConfig {
    /// Most sources that may be registered.
    pub max_sources: usize,
    /// Capacity of each subscription queue, in events.
    pub event_buffer_size: usize,
    /// What a full queue does: wait (backpressure) or drop the oldest event.
    pub drop_policy: DropPolicy,
    /// How long a graceful shutdown may take before what is left is abandoned.
    pub shutdown_timeout: Duration,
    /// How often health is checked, logged, published and detector state saved.
    pub health_check_interval: Duration,
    /// Log every dispatched event and every health check at debug level.
    pub debug_logging: bool,
    /// First delay before restarting a failed component; doubles on each failure.
    pub restart_backoff_initial: Duration,
    /// Longest delay between restarts.
    pub restart_backoff_max: Duration,
    /// Most events handed to a listener in one call.
    pub listener_batch_size: usize,
    /// How often listeners are asked to flush what they buffered.
    pub flush_interval: Duration,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            max_sources: 64,
            event_buffer_size: 4096,
            drop_policy: DropPolicy::Block,
            shutdown_timeout: Duration::from_secs(5),
            health_check_interval: Duration::from_secs(30),
            debug_logging: false,
            restart_backoff_initial: Duration::from_millis(500),
            restart_backoff_max: Duration::from_secs(60),
            listener_batch_size: 512,
            flush_interval: Duration::from_secs(1),
        }
    }
}

impl RuntimeConfig {
    /// The defaults.
    pub fn new() -> RuntimeConfig {
        RuntimeConfig::default()
    }

    /// Sets the most sources that may be registered.
    #[must_use]
    pub fn with_max_event_sources(mut self, n: usize) -> Self {
        self.max_sources = n;
        self
    }

    /// Sets the capacity of each subscription queue.
    #[must_use]
    pub fn with_event_buffer_size(mut self, n: usize) -> Self {
        self.event_buffer_size = n.max(1);
        self
    }

    /// Sets what a full queue does.
    #[must_use]
    pub fn with_drop_policy(mut self, policy: DropPolicy) -> Self {
        self.drop_policy = policy;
        self
    }

    /// Sets the graceful shutdown deadline.
    #[must_use]
    pub fn with_shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// Sets the health check interval.
    #[must_use]
    pub fn with_health_check_interval(mut self, interval: Duration) -> Self {
        self.health_check_interval = interval.max(Duration::from_millis(10));
        self
    }

    /// Turns debug logging of the pipeline on or off.
    #[must_use]
    pub fn with_debug_logging(mut self, on: bool) -> Self {
        self.debug_logging = on;
        self
    }

    /// Sets the restart backoff: the first delay and the longest one.
    #[must_use]
    pub fn with_restart_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.restart_backoff_initial = initial;
        self.restart_backoff_max = max.max(initial);
        self
    }

    /// Sets the most events handed to a listener at once.
    #[must_use]
    pub fn with_listener_batch_size(mut self, n: usize) -> Self {
        self.listener_batch_size = n.max(1);
        self
    }

    /// Sets how often listeners flush.
    #[must_use]
    pub fn with_flush_interval(mut self, interval: Duration) -> Self {
        self.flush_interval = interval.max(Duration::from_millis(10));
        self
    }
}
