//! The collectors as [`EventSource`]s: each samples on its interval and publishes payloads.
//!
//! A sample is blocking file I/O, so it runs on tokio's blocking pool; the collector's state
//! (previous CPU counters, known processes) moves into the blocking task and back. Every wait
//! watches the shutdown token.

use std::{sync::Arc, time::Duration};

use tokio::sync::Mutex;
use vigil_core::{ComponentError, EventSource, SourceCapabilities, SourceContext, async_trait};
use vigil_event::Payload;

use vigil_event::{ProcessEvent, ProcessPhase};

use crate::{
    ConnectionCollector, LifecycleTracker, NetworkCollector, ProcRoot, ProcessCollector,
    SystemCollector,
};

/// Something that turns one sample into payloads.
pub(crate) trait Sampler: Send + 'static {
    fn sample(&mut self) -> Vec<Payload>;
}

impl Sampler for SystemCollector {
    fn sample(&mut self) -> Vec<Payload> {
        vec![Payload::SystemMetric(self.collect().metrics)]
    }
}

impl Sampler for NetworkCollector {
    fn sample(&mut self) -> Vec<Payload> {
        vec![Payload::NetworkMetric(self.collect())]
    }
}

impl Sampler for ProcessCollector {
    fn sample(&mut self) -> Vec<Payload> {
        self.collect()
            .into_iter()
            .map(|it| {
                Payload::Process(ProcessEvent { phase: ProcessPhase::Snapshot, process: it.info })
            })
            .collect()
    }
}

impl Sampler for ConnectionCollector {
    fn sample(&mut self) -> Vec<Payload> {
        self.collect().into_iter().map(Payload::Connection).collect()
    }
}

impl Sampler for LifecycleTracker {
    fn sample(&mut self) -> Vec<Payload> {
        self.poll()
    }
}

/// Runs `sampler` every `interval` until shutdown, sending what it yields.
pub(crate) async fn poll<S: Sampler>(
    sampler: &Mutex<Option<S>>,
    interval: Duration,
    ctx: &SourceContext,
) -> Result<(), ComponentError> {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = ctx.shutdown.cancelled() => return Ok(()),
            _ = ticker.tick() => {}
        }
        let Some(mut state) = sampler.lock().await.take() else {
            return Err(ComponentError::msg("the collector was lost by an earlier panic"));
        };
        let joined = tokio::task::spawn_blocking(move || {
            let payloads = state.sample();
            (state, payloads)
        });
        let (state, payloads) = tokio::select! {
            () = ctx.shutdown.cancelled() => return Ok(()),
            joined = joined => joined.map_err(|err| ComponentError::msg(format!("sample failed: {err}")))?,
        };
        *sampler.lock().await = Some(state);
        let events: Vec<_> = payloads.into_iter().map(|it| ctx.event(it)).collect();
        if !events.is_empty() {
            tokio::select! {
                () = ctx.shutdown.cancelled() => return Ok(()),
                sent = ctx.out.send_batch(events) => sent?,
            }
        }
    }
}

macro_rules! polling_source {
    ($(#[$doc:meta])* $name:ident, $collector:ty, $source_name:literal, $caps:expr, $make:expr) => {
        $(#[$doc])*
        pub struct $name {
            root: ProcRoot,
            interval: Duration,
            make: Arc<dyn Fn(ProcRoot) -> $collector + Send + Sync>,
            state: Arc<Mutex<Option<$collector>>>,
        }

        impl $name {
            /// The source reading `root`, sampling every `interval`.
            pub fn new(root: ProcRoot, interval: Duration) -> $name {
                $name::with_collector(root, interval, Arc::new($make))
            }

            /// The source with its own way of making the collector (at start, and again after
            /// a panic lost the previous one).
            fn with_collector(
                root: ProcRoot,
                interval: Duration,
                make: Arc<dyn Fn(ProcRoot) -> $collector + Send + Sync>,
            ) -> $name {
                let state = Arc::new(Mutex::new(Some(make(root.clone()))));
                $name { root, interval: interval.max(Duration::from_millis(10)), make, state }
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("root", &self.root.path())
                    .field("interval", &self.interval)
                    .finish()
            }
        }

        #[async_trait]
        impl EventSource for $name {
            fn name(&self) -> &str {
                $source_name
            }

            fn capabilities(&self) -> SourceCapabilities {
                $caps
            }

            async fn validate(&self) -> Result<(), ComponentError> {
                crate::check_root(&self.root)
            }

            async fn start(&self, ctx: SourceContext) -> Result<(), ComponentError> {
                {
                    // A panic inside a sample loses the collector; start over with a fresh one.
                    let mut state = self.state.lock().await;
                    if state.is_none() {
                        *state = Some((self.make)(self.root.clone()));
                    }
                }
                poll(&self.state, self.interval, &ctx).await
            }
        }
    };
}

polling_source!(
    /// The `system` source: a `system_metric` event per interval (CPU, memory, swap, load,
    /// filesystems, disk I/O).
    SystemSource,
    SystemCollector,
    "system",
    SourceCapabilities::PERFORMANCE | SourceCapabilities::FILESYSTEM | SourceCapabilities::SYSTEM_WIDE,
    SystemCollector::new
);

polling_source!(
    /// The `network` source: a `network_metric` event per interval (interfaces, TCP states,
    /// listening ports).
    NetworkSource,
    NetworkCollector,
    "network",
    SourceCapabilities::NETWORK | SourceCapabilities::PERFORMANCE | SourceCapabilities::SYSTEM_WIDE,
    NetworkCollector::new
);

polling_source!(
    /// The `process` source: a `process` event (phase `snapshot`) per process per interval.
    ProcessSource,
    ProcessCollector,
    "process",
    SourceCapabilities::PROCESS | SourceCapabilities::PERFORMANCE | SourceCapabilities::SYSTEM_WIDE,
    ProcessCollector::new
);

polling_source!(
    /// The `connections` source: a `connection` event per TCP or UDP socket per interval, with
    /// its owning process where visible.
    ConnectionsSource,
    ConnectionCollector,
    "connections",
    SourceCapabilities::NETWORK | SourceCapabilities::PROCESS | SourceCapabilities::SYSTEM_WIDE,
    ConnectionCollector::new
);

/// The `process_lifecycle` source: a `process` event for each process start and exit, and a
/// warning finding for each process with a deleted executable, an executable in a world-writable
/// directory, or a name that is not its executable's. It polls the process table every
/// interval; with the connector enabled (and root), it also follows the kernel's process events
/// as they happen, which catches processes shorter than a poll.
pub struct ProcessLifecycleSource {
    root: ProcRoot,
    interval: Duration,
    connector: bool,
    state: Arc<Mutex<Option<LifecycleTracker>>>,
}

impl std::fmt::Debug for ProcessLifecycleSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessLifecycleSource")
            .field("root", &self.root.path())
            .field("interval", &self.interval)
            .field("connector", &self.connector)
            .finish()
    }
}

impl ProcessLifecycleSource {
    /// The polling source reading `root` every `interval`.
    pub fn new(root: ProcRoot, interval: Duration) -> ProcessLifecycleSource {
        ProcessLifecycleSource {
            state: Arc::new(Mutex::new(Some(LifecycleTracker::new(root.clone())))),
            root,
            interval: interval.max(Duration::from_millis(10)),
            connector: false,
        }
    }

    /// Also follow the kernel's process events connector (needs root; without it the source
    /// logs a warning and polls).
    #[must_use]
    pub fn with_connector(mut self, enabled: bool) -> ProcessLifecycleSource {
        self.connector = enabled;
        self
    }

    /// Runs the connector loop on a blocking thread until shutdown; `Err` with the tracker back
    /// when the connector cannot be used.
    async fn follow(
        &self,
        tracker: LifecycleTracker,
        ctx: &SourceContext,
    ) -> Result<(), (LifecycleTracker, std::io::Error)> {
        let mut connector = match crate::ProcConnector::subscribe() {
            Ok(it) => it,
            Err(err) => return Err((tracker, err)),
        };
        let interval = self.interval;
        let ctx = ctx.clone();
        let handle = tokio::runtime::Handle::current();
        let state = self.state.clone();
        let joined = tokio::task::spawn_blocking(move || {
            let mut tracker = tracker;
            let publish = |payloads: Vec<Payload>| -> bool {
                if payloads.is_empty() {
                    return true;
                }
                let events: Vec<_> = payloads.into_iter().map(|it| ctx.event(it)).collect();
                handle.block_on(async {
                    tokio::select! {
                        () = ctx.shutdown.cancelled() => false,
                        sent = ctx.out.send_batch(events) => sent.is_ok(),
                    }
                })
            };
            let mut last_poll = std::time::Instant::now();
            let mut ok = publish(tracker.poll());
            while ok && !ctx.shutdown.is_cancelled() {
                let events = connector.next(Duration::from_millis(200)).unwrap_or_else(|err| {
                    tracing::warn!(error = %err, "Process events were lost; the poll catches up");
                    Vec::new()
                });
                ok = publish(tracker.on_events(&events, std::time::Instant::now()));
                if ok && last_poll.elapsed() >= interval {
                    last_poll = std::time::Instant::now();
                    ok = publish(tracker.poll());
                }
            }
            tracker
        });
        let tracker = joined.await.map_err(|err| {
            (LifecycleTracker::new(self.root.clone()), std::io::Error::other(err.to_string()))
        })?;
        *state.lock().await = Some(tracker);
        Ok(())
    }
}

#[async_trait]
impl EventSource for ProcessLifecycleSource {
    fn name(&self) -> &str {
        "process_lifecycle"
    }

    fn capabilities(&self) -> SourceCapabilities {
        let caps = SourceCapabilities::PROCESS | SourceCapabilities::SYSTEM_WIDE;
        if self.connector {
            caps | SourceCapabilities::REALTIME | SourceCapabilities::KERNEL_LEVEL
        } else {
            caps
        }
    }

    async fn validate(&self) -> Result<(), ComponentError> {
        crate::check_root(&self.root)
    }

    async fn start(&self, ctx: SourceContext) -> Result<(), ComponentError> {
        let tracker = self.state.lock().await.take();
        let tracker = tracker.unwrap_or_else(|| LifecycleTracker::new(self.root.clone()));
        let tracker = if self.connector && self.root.is_live() {
            match self.follow(tracker, &ctx).await {
                Ok(()) => return Ok(()),
                Err((tracker, err)) => {
                    tracing::warn!(
                        error = %err,
                        "Cannot follow the kernel's process events (root is needed); polling"
                    );
                    tracker
                }
            }
        } else {
            tracker
        };
        *self.state.lock().await = Some(tracker);
        poll(&self.state, self.interval, &ctx).await
    }
}

impl SystemSource {
    /// The source with its own `statvfs` deadline (see [`SystemCollector::with_statfs`]).
    pub fn with_disk_timeout(root: ProcRoot, interval: Duration, disk_timeout: Duration) -> Self {
        let make = move |root: ProcRoot| {
            SystemCollector::with_statfs(root, Arc::new(crate::statvfs), disk_timeout)
        };
        SystemSource::with_collector(root, interval, Arc::new(make))
    }
}

#[cfg(test)]
mod tests {
    use vigil_event::EventKind;

    use super::*;
    use crate::fixture;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn system_and_network_sources_publish_on_their_interval_and_stop_on_shutdown() {
        let system = SystemSource::new(fixture("debian12-6.18"), Duration::from_millis(20));
        let network = NetworkSource::new(fixture("debian12-6.18"), Duration::from_millis(20));
        assert!(system.capabilities().contains(SourceCapabilities::PERFORMANCE));
        assert!(network.capabilities().contains(SourceCapabilities::NETWORK));
        for (source, kind) in [
            (Box::new(system) as Box<dyn EventSource>, EventKind::SystemMetric),
            (Box::new(network), EventKind::NetworkMetric),
        ] {
            source.validate().await.unwrap();
            let (ctx, mut rx) = SourceContext::for_test(source.name(), 16);
            let shutdown = ctx.shutdown.clone();
            let running = tokio::spawn(async move { source.start(ctx).await });
            for _ in 0..3 {
                let event = rx.recv().await.unwrap();
                assert_eq!(event.kind(), kind);
            }
            shutdown.cancel();
            running.await.unwrap().unwrap();
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_process_source_publishes_a_snapshot_per_process() {
        let source = ProcessSource::new(fixture("debian12-6.18"), Duration::from_millis(20));
        assert!(source.capabilities().contains(SourceCapabilities::PROCESS));
        let (ctx, mut rx) = SourceContext::for_test("process", 64);
        let shutdown = ctx.shutdown.clone();
        let running = tokio::spawn(async move { source.start(ctx).await });
        let mut pids = Vec::new();
        for _ in 0..7 {
            let event = rx.recv().await.unwrap();
            let Payload::Process(p) = &event.payload else { panic!("{event:?}") };
            assert_eq!(p.phase, ProcessPhase::Snapshot);
            pids.push(p.process.pid);
        }
        assert_eq!(pids, [1, 2, 2889, 2897, 2899, 2900, 99998]);
        shutdown.cancel();
        running.await.unwrap().unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_connections_source_publishes_each_socket() {
        let source = ConnectionsSource::new(fixture("handmade-2.6.32"), Duration::from_millis(20));
        let (ctx, mut rx) = SourceContext::for_test("connections", 64);
        let shutdown = ctx.shutdown.clone();
        let running = tokio::spawn(async move { source.start(ctx).await });
        for _ in 0..5 {
            let event = rx.recv().await.unwrap();
            assert_eq!(event.kind(), EventKind::Connection);
        }
        shutdown.cancel();
        running.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn a_missing_root_fails_validation() {
        let source = SystemSource::new(ProcRoot::at("/nonexistent/proc"), Duration::from_secs(1));
        assert!(source.validate().await.is_err());
    }
}
