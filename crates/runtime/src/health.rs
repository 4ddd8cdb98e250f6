//! Health of every component, as the supervisor sees it.
//!
//! Each supervised task owns an `Arc<ComponentHealth>` and records its state, restarts, handled
//! events and last error there; [`Health::status`] turns the lot into the `AgentStatus` DTO that
//! the status source publishes and the CLI prints.

use std::{
    fmt,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Instant,
};

use vigil_core::EventSource;
use vigil_event::{AgentStatus, ComponentStatus};

use crate::{Bus, bus::SubscriptionCloser};

/// What part a component plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ComponentRole {
    /// Produces events.
    Source,
    /// Correlates events.
    Detector,
    /// Acts on dispatched events.
    Listener,
}

impl fmt::Display for ComponentRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ComponentRole::Source => "source",
            ComponentRole::Detector => "detector",
            ComponentRole::Listener => "listener",
        })
    }
}

/// Where a component is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ComponentState {
    /// Registered, not yet running.
    Starting,
    /// Running normally.
    Running,
    /// Failed or panicked; waiting out its backoff before running again.
    Restarting,
    /// Could not start (its validation failed); it will not run.
    Failed,
    /// Finished or shut down.
    Stopped,
}

impl fmt::Display for ComponentState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ComponentState::Starting => "starting",
            ComponentState::Running => "running",
            ComponentState::Restarting => "restarting",
            ComponentState::Failed => "failed",
            ComponentState::Stopped => "stopped",
        })
    }
}

/// Live health of one component.
pub struct ComponentHealth {
    name: String,
    role: ComponentRole,
    state: Mutex<(ComponentState, Option<String>)>,
    restarts: AtomicU64,
    events: AtomicU64,
    queue: Option<SubscriptionCloser>,
    source: Option<Arc<dyn EventSource>>,
}

impl ComponentHealth {
    pub(crate) fn new(
        name: &str,
        role: ComponentRole,
        queue: Option<SubscriptionCloser>,
    ) -> Arc<ComponentHealth> {
        Arc::new(ComponentHealth {
            name: name.to_owned(),
            role,
            state: Mutex::new((ComponentState::Starting, None)),
            restarts: AtomicU64::new(0),
            events: AtomicU64::new(0),
            queue,
            source: None,
        })
    }

    pub(crate) fn for_source(source: Arc<dyn EventSource>) -> Arc<ComponentHealth> {
        Arc::new(ComponentHealth {
            name: source.name().to_owned(),
            role: ComponentRole::Source,
            state: Mutex::new((ComponentState::Starting, None)),
            restarts: AtomicU64::new(0),
            events: AtomicU64::new(0),
            queue: None,
            source: Some(source),
        })
    }

    /// The component's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The component's role.
    pub fn role(&self) -> ComponentRole {
        self.role
    }

    /// Current state.
    pub fn state(&self) -> ComponentState {
        self.lock().0
    }

    /// The last error or panic message.
    pub fn last_error(&self) -> Option<String> {
        self.lock().1.clone()
    }

    /// Times the component was restarted.
    pub fn restarts(&self) -> u64 {
        self.restarts.load(Ordering::Relaxed)
    }

    /// Events handled or produced.
    pub fn events(&self) -> u64 {
        self.events.load(Ordering::Relaxed)
    }

    pub(crate) fn set_state(&self, state: ComponentState) {
        self.lock().0 = state;
    }

    pub(crate) fn record_error(&self, message: String) {
        self.lock().1 = Some(message);
    }

    pub(crate) fn record_restart(&self, message: String) {
        self.restarts.fetch_add(1, Ordering::Relaxed);
        *self.lock() = (ComponentState::Restarting, Some(message));
    }

    pub(crate) fn add_events(&self, n: u64) {
        self.events.fetch_add(n, Ordering::Relaxed);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (ComponentState, Option<String>)> {
        self.state.lock().unwrap_or_else(|it| it.into_inner())
    }
}

/// Health of the whole runtime.
pub struct Health {
    started: Instant,
    components: Mutex<Vec<Arc<ComponentHealth>>>,
}

impl Health {
    pub(crate) fn new() -> Arc<Health> {
        Arc::new(Health { started: Instant::now(), components: Mutex::new(Vec::new()) })
    }

    pub(crate) fn add(&self, component: Arc<ComponentHealth>) {
        self.components.lock().unwrap_or_else(|it| it.into_inner()).push(component);
    }

    /// Every component's health.
    pub fn components(&self) -> Vec<Arc<ComponentHealth>> {
        self.components.lock().unwrap_or_else(|it| it.into_inner()).clone()
    }

    /// The component called `name`.
    pub fn component(&self, name: &str) -> Option<Arc<ComponentHealth>> {
        self.components().into_iter().find(|it| it.name == name)
    }

    /// A snapshot for publishing or printing.
    pub fn status(&self, bus: &Bus) -> AgentStatus {
        AgentStatus {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            uptime_seconds: self.started.elapsed().as_secs(),
            events_published: bus.published(),
            events_dropped: bus.dropped(),
            resident_bytes: resident_bytes(),
            components: self
                .components()
                .iter()
                .map(|it| ComponentStatus {
                    name: it.name.clone(),
                    role: it.role.to_string(),
                    state: it.state().to_string(),
                    restarts: it.restarts(),
                    events: it.events(),
                    dropped: it.queue.as_ref().map_or(0, |q| q.dropped()),
                    last_error: it.last_error(),
                    statistics: it
                        .source
                        .as_ref()
                        .and_then(|source| source.statistics())
                        .unwrap_or_default(),
                })
                .collect(),
        }
    }
}

/// Resident memory of this process, from /proc/self/status (None where unreadable).
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|it| it.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
