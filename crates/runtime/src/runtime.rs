//! The registry and the run loop: wires sources, detectors and listeners to the bus, runs them
//! supervised, and shuts them down in pipeline order.
//!
//! Shutdown drains the pipeline front to back within one deadline: sources are cancelled and
//! awaited; then the detectors' queues are closed, so each detector handles what is queued,
//! dispatches its last findings and saves its state; then the listeners' queues are closed, so
//! each listener handles what is queued and flushes. Whatever is still queued when the deadline
//! passes is counted in the [`RunReport`] as undelivered.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use tokio::{
    sync::{mpsc, oneshot},
    task::JoinSet,
    time::Instant,
};
use tokio_util::sync::CancellationToken;
use vigil_core::{
    Detector, DetectorContext, EventSource, Filter, Listener, MemoryStateStore, SourceContext,
    StateStore, Statistics,
};
use vigil_event::AgentStatus;

use crate::{
    Bus, Health, RuntimeConfig, Subscription,
    bus::SubscriptionCloser,
    detector_task::{DetectorTask, state_key},
    health::{ComponentHealth, ComponentRole, ComponentState},
    listener_task::ListenerTask,
    status::StatusSource,
    supervisor::{Backoff, supervise_source},
};

/// Why a component could not be registered.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuntimeError {
    /// More sources than `max_sources`.
    #[error("too many sources: at most {max} may be registered")]
    TooManySources {
        /// The configured limit.
        max: usize,
    },
    /// Two components share a name.
    #[error("a component named `{0}` is already registered")]
    DuplicateName(String),
}

/// Registers components, then builds a [`Runtime`].
pub struct RuntimeBuilder {
    config: RuntimeConfig,
    host: Arc<str>,
    state: Arc<dyn StateStore>,
    status_interval: Option<Duration>,
    sources: Vec<Arc<dyn EventSource>>,
    detectors: Vec<(Box<dyn Detector>, Filter)>,
    listeners: Vec<(Box<dyn Listener>, Filter)>,
    enrichers: Vec<Arc<dyn vigil_core::Enricher>>,
    listener_options: BTreeMap<String, ListenerOptions>,
}

/// Per-listener settings that override the runtime's `listener_batch_size` and
/// `flush_interval` (a store destination batches on its own schedule).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListenerOptions {
    /// Most events handed to the listener at once.
    pub batch_size: Option<usize>,
    /// How often the listener is flushed.
    pub flush_interval: Option<Duration>,
}

impl RuntimeBuilder {
    /// Adds a tracer to the enrichment stage: every source's events pass through the tracers,
    /// in registration order, before the bus shares them.
    pub fn register_enricher(&mut self, enricher: Arc<dyn vigil_core::Enricher>) -> &mut Self {
        self.enrichers.push(enricher);
        self
    }

    /// Sets the host name stamped on events (default: the machine's host name).
    #[must_use]
    pub fn host(mut self, host: impl Into<Arc<str>>) -> Self {
        self.host = host.into();
        self
    }

    /// Sets where detector state is persisted (default: in memory only).
    #[must_use]
    pub fn state_store(mut self, state: Arc<dyn StateStore>) -> Self {
        self.state = state;
        self
    }

    /// Publishes the agent's own status as `agent_status` events at start and at every health
    /// check (source name `agent`).
    #[must_use]
    pub fn with_status_events(mut self, on: bool) -> Self {
        self.status_interval = on.then_some(self.config.health_check_interval);
        self
    }

    /// Registers a source.
    pub fn register_source(
        &mut self,
        source: Arc<dyn EventSource>,
    ) -> Result<&mut Self, RuntimeError> {
        if self.sources.len() >= self.config.max_sources {
            return Err(RuntimeError::TooManySources { max: self.config.max_sources });
        }
        self.check_name(source.name())?;
        self.sources.push(source);
        Ok(self)
    }

    /// Registers a detector that receives the events matching `filter`
    /// (usually [`Filter::source_events`] narrowed further).
    pub fn register_detector(
        &mut self,
        detector: Box<dyn Detector>,
        filter: Filter,
    ) -> Result<&mut Self, RuntimeError> {
        self.check_name(detector.name())?;
        self.detectors.push((detector, filter));
        Ok(self)
    }

    /// Registers a listener that receives the dispatched events matching `filter`.
    pub fn register_listener(
        &mut self,
        listener: Box<dyn Listener>,
        filter: Filter,
    ) -> Result<&mut Self, RuntimeError> {
        self.check_name(listener.name())?;
        self.listeners.push((listener, filter));
        Ok(self)
    }

    /// Registers a listener like [`register_listener`](Self::register_listener), with its own
    /// batch size and flush interval.
    pub fn register_listener_with(
        &mut self,
        listener: Box<dyn Listener>,
        filter: Filter,
        options: ListenerOptions,
    ) -> Result<&mut Self, RuntimeError> {
        let name = listener.name().to_owned();
        self.register_listener(listener, filter)?;
        self.listener_options.insert(name, options);
        Ok(self)
    }

    fn check_name(&self, name: &str) -> Result<(), RuntimeError> {
        let taken = self.sources.iter().any(|it| it.name() == name)
            || self.detectors.iter().any(|(it, _)| it.name() == name)
            || self.listeners.iter().any(|(it, _)| it.name() == name);
        if taken { Err(RuntimeError::DuplicateName(name.to_owned())) } else { Ok(()) }
    }

    /// Subscribes every detector and listener to the bus and returns the runtime, ready to run.
    pub fn build(self) -> Runtime {
        let config = self.config;
        let bus = Bus::new(config.event_buffer_size, config.drop_policy);
        let health = Health::new();
        let mut sources = Vec::new();
        for source in self.sources {
            let component = ComponentHealth::for_source(source.clone());
            health.add(component.clone());
            sources.push((source, component));
        }
        if let Some(interval) = self.status_interval {
            let status = StatusSource { health: health.clone(), bus: bus.clone(), interval };
            let component =
                ComponentHealth::new(crate::status::STATUS_SOURCE, ComponentRole::Source, None);
            health.add(component.clone());
            sources.push((Arc::new(status), component));
        }
        let backoff = || Backoff::new(config.restart_backoff_initial, config.restart_backoff_max);
        let mut detectors = Vec::new();
        let mut stats_requests = BTreeMap::new();
        for (detector, filter) in self.detectors {
            let name = detector.name().to_owned();
            let subscription = bus.subscribe(&format!("detector.{name}"), filter);
            let component =
                ComponentHealth::new(&name, ComponentRole::Detector, Some(subscription.closer()));
            health.add(component.clone());
            let (tx, rx) = mpsc::channel(8);
            stats_requests.insert(name.clone(), tx);
            detectors.push(DetectorTask {
                ctx: DetectorContext::new(self.host.clone(), name.as_str()),
                detector,
                subscription,
                bus: bus.clone(),
                health: component,
                backoff: backoff(),
                state: self.state.clone(),
                save_interval: config.health_check_interval,
                batch_size: config.listener_batch_size,
                debug_logging: config.debug_logging,
                requests: rx,
            });
        }
        let mut listeners = Vec::new();
        for (listener, filter) in self.listeners {
            let name = listener.name().to_owned();
            let subscription = bus.subscribe(&format!("listener.{name}"), filter);
            let component =
                ComponentHealth::new(&name, ComponentRole::Listener, Some(subscription.closer()));
            health.add(component.clone());
            let options = self.listener_options.get(&name).copied().unwrap_or_default();
            listeners.push(ListenerTask {
                listener,
                subscription,
                health: component,
                backoff: backoff(),
                batch_size: options.batch_size.unwrap_or(config.listener_batch_size).max(1),
                flush_interval: options
                    .flush_interval
                    .filter(|it| !it.is_zero())
                    .unwrap_or(config.flush_interval),
            });
        }
        let handle = RuntimeHandle {
            bus: bus.clone(),
            health: health.clone(),
            stats_requests: Arc::new(stats_requests),
        };
        Runtime {
            enrichers: self.enrichers,
            config,
            host: self.host,
            state: self.state,
            bus,
            handle,
            sources,
            detectors,
            listeners,
        }
    }
}

/// A cloneable view of a running runtime: health, statistics, the bus.
#[derive(Clone)]
pub struct RuntimeHandle {
    bus: Bus,
    health: Arc<Health>,
    stats_requests: Arc<BTreeMap<String, mpsc::Sender<oneshot::Sender<Statistics>>>>,
}

impl RuntimeHandle {
    /// The bus.
    pub fn bus(&self) -> &Bus {
        &self.bus
    }

    /// Live health of every component.
    pub fn health(&self) -> &Arc<Health> {
        &self.health
    }

    /// A health snapshot.
    pub fn status(&self) -> AgentStatus {
        self.health.status(&self.bus)
    }

    /// Asks every running detector for its statistics now.
    pub async fn detector_statistics(&self) -> BTreeMap<String, Statistics> {
        let mut out = BTreeMap::new();
        for (name, tx) in self.stats_requests.iter() {
            let (reply, answer) = oneshot::channel();
            if tx.send(reply).await.is_ok()
                && let Ok(stats) = answer.await
            {
                out.insert(name.clone(), stats);
            }
        }
        out
    }
}

/// What a run did, returned when it has shut down.
#[derive(Debug, Clone, Default)]
pub struct RunReport {
    /// Events published on the bus.
    pub published: u64,
    /// Events dropped by full queues.
    pub dropped: u64,
    /// Events still queued when the shutdown deadline passed.
    pub undelivered: u64,
    /// Whether the shutdown deadline passed before the pipeline drained.
    pub timed_out: bool,
    /// Each detector's final statistics.
    pub detector_statistics: BTreeMap<String, Statistics>,
}

/// A built runtime: call [`run`](Runtime::run).
pub struct Runtime {
    config: RuntimeConfig,
    host: Arc<str>,
    state: Arc<dyn StateStore>,
    bus: Bus,
    handle: RuntimeHandle,
    sources: Vec<(Arc<dyn EventSource>, Arc<ComponentHealth>)>,
    detectors: Vec<DetectorTask>,
    listeners: Vec<ListenerTask>,
    enrichers: Vec<Arc<dyn vigil_core::Enricher>>,
}

impl Runtime {
    /// A builder with `config`.
    pub fn builder(config: RuntimeConfig) -> RuntimeBuilder {
        RuntimeBuilder {
            config,
            host: default_host().into(),
            state: Arc::new(MemoryStateStore::default()),
            status_interval: None,
            sources: Vec::new(),
            detectors: Vec::new(),
            listeners: Vec::new(),
            enrichers: Vec::new(),
            listener_options: BTreeMap::new(),
        }
    }

    /// A handle for health and statistics while running.
    pub fn handle(&self) -> RuntimeHandle {
        self.handle.clone()
    }

    /// The bus, e.g. to publish from outside or to subscribe before running.
    pub fn bus(&self) -> &Bus {
        &self.bus
    }

    /// Subscribes to events before the runtime starts, so nothing is missed.
    pub fn subscribe(&self, name: &str, filter: Filter) -> Subscription {
        self.bus.subscribe(name, filter)
    }

    /// Runs everything until `shutdown` is cancelled, then shuts down gracefully within the
    /// configured timeout.
    pub async fn run(self, shutdown: CancellationToken) -> RunReport {
        let Runtime { config, host, state, bus, handle, sources, detectors, listeners, enrichers } =
            self;

        let mut listener_tasks = JoinSet::new();
        let mut listener_queues: Vec<SubscriptionCloser> = Vec::new();
        for task in listeners {
            listener_queues.push(task.subscription.closer());
            listener_tasks.spawn(task.run());
        }

        let mut detector_tasks = JoinSet::new();
        let mut detector_queues: Vec<SubscriptionCloser> = Vec::new();
        for mut task in detectors {
            let name = task.health.name().to_owned();
            match state.load(&state_key(&name)) {
                Ok(Some(saved)) => {
                    if let Err(err) = task.detector.restore_state(saved) {
                        tracing::warn!(detector = %name, error = %err, "Ignoring unreadable detector state");
                        task.health.record_error(err.to_string());
                    }
                }
                Ok(None) => {}
                Err(err) => {
                    tracing::warn!(detector = %name, error = %err, "Could not load detector state");
                    task.health.record_error(err.to_string());
                }
            }
            detector_queues.push(task.subscription.closer());
            detector_tasks.spawn(async move { (name, task.run().await) });
        }

        let source_token = shutdown.child_token();
        let mut source_tasks = JoinSet::new();
        for (source, component) in sources {
            if let Err(err) = source.validate().await {
                tracing::error!(source = %source.name(), error = %err, "Source cannot run; it stays disabled");
                component.record_error(err.to_string());
                component.set_state(ComponentState::Failed);
                continue;
            }
            let ctx = SourceContext {
                name: source.name().into(),
                host: host.clone(),
                out: bus.enriched_sender_for(component.clone(), &enrichers),
                shutdown: source_token.child_token(),
            };
            let backoff = Backoff::new(config.restart_backoff_initial, config.restart_backoff_max);
            source_tasks.spawn(supervise_source(source, ctx, component, backoff));
        }
        tracing::info!(
            sources = source_tasks.len(),
            detectors = detector_tasks.len(),
            listeners = listener_tasks.len(),
            "Agent running"
        );

        let mut health_tick = tokio::time::interval(config.health_check_interval);
        health_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        health_tick.reset();
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = health_tick.tick() => log_health(&handle.status(), config.debug_logging),
            }
        }

        tracing::info!(timeout_ms = config.shutdown_timeout.as_millis() as u64, "Shutting down");
        let deadline = Instant::now() + config.shutdown_timeout;
        let mut report = RunReport::default();
        source_token.cancel();
        let mut in_time = drain(&mut source_tasks, deadline, |_| {}).await;
        for queue in &detector_queues {
            queue.close();
        }
        in_time &= drain(&mut detector_tasks, deadline, |(name, stats)| {
            report.detector_statistics.insert(name, stats);
        })
        .await;
        for queue in &listener_queues {
            queue.close();
        }
        in_time &= drain(&mut listener_tasks, deadline, |()| {}).await;
        bus.close();

        report.timed_out = !in_time;
        report.undelivered =
            detector_queues.iter().chain(&listener_queues).map(|q| q.len() as u64).sum();
        report.published = bus.published();
        report.dropped = bus.dropped();
        if report.timed_out {
            tracing::warn!(
                undelivered = report.undelivered,
                "Shutdown timeout passed; abandoning what is left"
            );
        } else {
            tracing::info!(published = report.published, dropped = report.dropped, "Agent stopped");
        }
        report
    }
}

/// Awaits every task of `set` until `deadline`; aborts the rest. Returns whether all finished.
async fn drain<T: 'static>(
    set: &mut JoinSet<T>,
    deadline: Instant,
    mut each: impl FnMut(T),
) -> bool {
    loop {
        match tokio::time::timeout_at(deadline, set.join_next()).await {
            Ok(None) => return true,
            Ok(Some(Ok(it))) => each(it),
            Ok(Some(Err(err))) => tracing::error!(error = %err, "Component task ended abnormally"),
            Err(_) => {
                set.abort_all();
                return false;
            }
        }
    }
}

fn log_health(status: &AgentStatus, debug: bool) {
    for component in &status.components {
        if component.state == "restarting" || component.state == "failed" {
            tracing::warn!(
                component = %component.name,
                role = %component.role,
                state = %component.state,
                restarts = component.restarts,
                error = component.last_error.as_deref().unwrap_or(""),
                "Component unhealthy"
            );
        }
    }
    if debug {
        tracing::debug!(
            published = status.events_published,
            dropped = status.events_dropped,
            resident_bytes = status.resident_bytes.unwrap_or(0),
            "Health check"
        );
    }
}

/// The machine's host name, or `localhost` when it cannot be read.
pub fn default_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|it| it.trim().to_owned())
        .filter(|it| !it.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}
