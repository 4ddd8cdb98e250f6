//! End-to-end behaviour of the runtime with real components: isolation and restart, graceful
//! shutdown, bounded memory under a fast producer, state persistence, statistics.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use vigil_core::{
    ComponentError, Detector, DetectorContext, EventSource, Filter, Listener, SourceCapabilities,
    SourceContext, Statistics, async_trait,
    event::{Event, EventKind, Finding, FindingLevel, LogEvent, Payload, Value},
};
use vigil_runtime::{
    ComponentState, DropPolicy, FileStateStore, Runtime, RuntimeConfig, STATUS_SOURCE,
};

fn config() -> RuntimeConfig {
    RuntimeConfig::new()
        .with_event_buffer_size(64)
        .with_shutdown_timeout(Duration::from_secs(3))
        .with_restart_backoff(Duration::from_millis(10), Duration::from_millis(40))
        .with_flush_interval(Duration::from_millis(20))
}

/// Sends `count` numbered log events (or forever when `None`), `every` apart.
struct Counter {
    name: &'static str,
    count: Option<u64>,
    every: Duration,
}

#[async_trait]
impl EventSource for Counter {
    fn name(&self) -> &str {
        self.name
    }
    fn capabilities(&self) -> SourceCapabilities {
        SourceCapabilities::LOG
    }
    async fn start(&self, ctx: SourceContext) -> Result<(), ComponentError> {
        let mut n = 0;
        while self.count.is_none_or(|max| n < max) {
            ctx.send(Payload::Log(LogEvent::new(self.name, n.to_string()))).await?;
            n += 1;
            if !self.every.is_zero() {
                tokio::select! {
                    () = tokio::time::sleep(self.every) => {}
                    () = ctx.shutdown.cancelled() => return Ok(()),
                }
            }
        }
        ctx.shutdown.cancelled().await;
        Ok(())
    }
}

/// Sends one event, then panics; counts its starts.
struct Crasher {
    starts: Arc<AtomicU64>,
}

#[async_trait]
impl EventSource for Crasher {
    fn name(&self) -> &str {
        "crasher"
    }
    fn capabilities(&self) -> SourceCapabilities {
        SourceCapabilities::LOG
    }
    async fn start(&self, ctx: SourceContext) -> Result<(), ComponentError> {
        self.starts.fetch_add(1, Ordering::SeqCst);
        ctx.send(Payload::Log(LogEvent::new("crasher", "about to fail"))).await?;
        panic!("crasher always panics");
    }
}

/// Collects what it receives; optionally slow or stuck; records flushes.
#[derive(Clone, Default)]
struct Collector {
    seen: Arc<Mutex<Vec<Arc<Event>>>>,
    flushed: Arc<AtomicBool>,
    delay: Duration,
    stuck: bool,
}

impl Collector {
    fn messages_from(&self, source: &str) -> Vec<String> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|it| &*it.source == source)
            .filter_map(|it| match &it.payload {
                Payload::Log(log) => Some(log.message.clone()),
                _ => None,
            })
            .collect()
    }
    fn len(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

#[async_trait]
impl Listener for Collector {
    fn name(&self) -> &str {
        "collector"
    }
    async fn handle(&mut self, events: &[Arc<Event>]) -> Result<(), ComponentError> {
        if self.stuck {
            std::future::pending::<()>().await;
        }
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        self.seen.lock().unwrap().extend(events.iter().cloned());
        Ok(())
    }
    async fn flush(&mut self) -> Result<(), ComponentError> {
        self.flushed.store(true, Ordering::SeqCst);
        Ok(())
    }
}

/// Counts log events per run and in total (persisted); panics on the message "boom"; dispatches
/// a finding for every 10th event.
#[derive(Default)]
struct Tally {
    total: u64,
}

impl Detector for Tally {
    fn name(&self) -> &str {
        "tally"
    }
    fn handle(&mut self, event: &Event, ctx: &mut DetectorContext) -> Result<(), ComponentError> {
        if let Payload::Log(log) = &event.payload
            && log.message == "boom"
        {
            panic!("tally cannot handle boom");
        }
        self.total += 1;
        if self.total.is_multiple_of(10) {
            ctx.finding(Finding::new(FindingLevel::Notice, "Tenth", "tally", "ten more events"));
        }
        Ok(())
    }
    fn statistics(&self) -> Statistics {
        [("total".to_owned(), Value::from(self.total))].into_iter().collect()
    }
    fn save_state(&self) -> Option<Value> {
        Some(Value::from(self.total))
    }
    fn restore_state(&mut self, state: Value) -> Result<(), ComponentError> {
        self.total = state.as_u64().ok_or_else(|| ComponentError::msg("state is not a number"))?;
        Ok(())
    }
}

async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..500 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting until {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_source_is_restarted_and_the_others_keep_flowing() {
    let starts = Arc::new(AtomicU64::new(0));
    let collector = Collector::default();
    let mut builder = Runtime::builder(config());
    builder.register_source(Arc::new(Crasher { starts: starts.clone() })).unwrap();
    builder
        .register_source(Arc::new(Counter {
            name: "steady",
            count: None,
            every: Duration::from_millis(5),
        }))
        .unwrap();
    builder.register_listener(Box::new(collector.clone()), Filter::any()).unwrap();
    let runtime = builder.build();
    let handle = runtime.handle();
    let shutdown = vigil_core::CancellationToken::new();
    let run = tokio::spawn(runtime.run(shutdown.clone()));

    wait_until("the crasher restarted three times", || starts.load(Ordering::SeqCst) >= 4).await;
    let steady_before = collector.messages_from("steady").len();
    wait_until("steady events keep arriving", || {
        collector.messages_from("steady").len() > steady_before + 5
    })
    .await;
    let crasher = handle.health().component("crasher").unwrap();
    assert!(crasher.restarts() >= 3);
    assert!(crasher.last_error().unwrap().contains("crasher always panics"));
    let steady = handle.health().component("steady").unwrap();
    assert_eq!(steady.state(), ComponentState::Running);
    assert!(steady.events() > 5, "a source's health counts what it sent");
    assert!(collector.messages_from("crasher").len() >= 3, "each start's event was delivered");

    shutdown.cancel();
    let report = run.await.unwrap();
    assert!(!report.timed_out);
    let steady = collector.messages_from("steady");
    let expected: Vec<String> = (0..steady.len()).map(|n| n.to_string()).collect();
    assert_eq!(steady, expected, "no steady event was lost or reordered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_delivers_in_flight_events_within_the_timeout() {
    let collector = Collector { delay: Duration::from_millis(2), ..Collector::default() };
    let mut builder = Runtime::builder(config());
    builder
        .register_source(Arc::new(Counter {
            name: "burst",
            count: Some(2_000),
            every: Duration::ZERO,
        }))
        .unwrap();
    builder.register_detector(Box::new(Tally::default()), Filter::source_events()).unwrap();
    builder.register_listener(Box::new(collector.clone()), Filter::any()).unwrap();
    let runtime = builder.build();
    let bus = runtime.bus().clone();
    let shutdown = vigil_core::CancellationToken::new();
    let run = tokio::spawn(runtime.run(shutdown.clone()));
    wait_until("the burst is published", || bus.published() >= 2_000).await;
    // Events are still queued for the slow listener when the shutdown starts.
    let started = std::time::Instant::now();
    shutdown.cancel();
    let report = run.await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(3), "shutdown took {:?}", started.elapsed());
    assert!(!report.timed_out);
    assert_eq!(report.undelivered, 0);
    assert_eq!(report.dropped, 0);
    assert_eq!(collector.messages_from("burst").len(), 2_000, "every in-flight log event arrived");
    let findings =
        collector.seen.lock().unwrap().iter().filter(|it| it.kind() == EventKind::Finding).count();
    assert_eq!(
        findings, 200,
        "the detector's last findings were dispatched before listeners closed"
    );
    assert!(collector.flushed.load(Ordering::SeqCst), "listeners are flushed at the end");
    assert_eq!(report.detector_statistics["tally"]["total"], 2_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_listener_cannot_hold_shutdown_past_the_timeout() {
    let collector = Collector { stuck: true, ..Collector::default() };
    let mut builder = Runtime::builder(config().with_shutdown_timeout(Duration::from_millis(300)));
    builder
        .register_source(Arc::new(Counter {
            name: "burst",
            count: Some(10),
            every: Duration::ZERO,
        }))
        .unwrap();
    builder.register_listener(Box::new(collector), Filter::any()).unwrap();
    let runtime = builder.build();
    let bus = runtime.bus().clone();
    let shutdown = vigil_core::CancellationToken::new();
    let run = tokio::spawn(runtime.run(shutdown.clone()));
    wait_until("the burst is published", || bus.published() >= 10).await;
    let started = std::time::Instant::now();
    shutdown.cancel();
    let report = run.await.unwrap();
    assert!(report.timed_out);
    assert!(started.elapsed() < Duration::from_secs(2), "shutdown took {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fast_producer_and_a_slow_consumer_keep_memory_bounded() {
    let collector = Collector { delay: Duration::from_millis(20), ..Collector::default() };
    let cfg = config().with_drop_policy(DropPolicy::DropOldest).with_listener_batch_size(8);
    let mut builder = Runtime::builder(cfg);
    builder
        .register_source(Arc::new(Counter { name: "flood", count: None, every: Duration::ZERO }))
        .unwrap();
    builder.register_listener(Box::new(collector.clone()), Filter::any()).unwrap();
    let runtime = builder.build();
    let bus = runtime.bus().clone();
    let handle = runtime.handle();
    let shutdown = vigil_core::CancellationToken::new();
    let run = tokio::spawn(runtime.run(shutdown.clone()));
    let mut max_len = 0;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(4)).await;
        for stats in bus.queue_stats() {
            assert!(stats.len <= stats.capacity, "{stats:?}");
            max_len = max_len.max(stats.len);
        }
    }
    assert!(bus.published() > 10_000, "the producer ran flat out: {}", bus.published());
    assert_eq!(max_len, 64, "the queue filled to its bound and no further");
    let dropped =
        handle.status().components.iter().find(|it| it.name == "collector").unwrap().dropped;
    assert!(dropped > 0, "drops are counted per component");
    assert!(collector.len() < 10_000, "the slow consumer saw only a bounded share");
    shutdown.cancel();
    run.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detector_state_survives_a_restart_and_a_panic_is_isolated() {
    let dir = tempfile::tempdir().unwrap();
    for (round, expected_total) in [(0, 49), (1, 98)] {
        let store = Arc::new(FileStateStore::open(dir.path()).unwrap());
        let collector = Collector::default();
        let mut builder = Runtime::builder(config()).state_store(store);
        // 50 events, one of which ("boom") makes the detector panic.
        struct Fifty;
        #[async_trait]
        impl EventSource for Fifty {
            fn name(&self) -> &str {
                "fifty"
            }
            fn capabilities(&self) -> SourceCapabilities {
                SourceCapabilities::LOG
            }
            async fn start(&self, ctx: SourceContext) -> Result<(), ComponentError> {
                for n in 0..50 {
                    let msg = if n == 25 { "boom".to_owned() } else { n.to_string() };
                    ctx.send(Payload::Log(LogEvent::new("fifty", msg))).await?;
                }
                ctx.shutdown.cancelled().await;
                Ok(())
            }
        }
        builder.register_source(Arc::new(Fifty)).unwrap();
        builder.register_detector(Box::new(Tally::default()), Filter::source_events()).unwrap();
        builder.register_listener(Box::new(collector.clone()), Filter::any()).unwrap();
        let runtime = builder.build();
        let handle = runtime.handle();
        let shutdown = vigil_core::CancellationToken::new();
        let run = tokio::spawn(runtime.run(shutdown.clone()));
        wait_until("the detector handled every event", || {
            handle.health().component("tally").is_some_and(|it| it.events() >= 50)
        })
        .await;
        let live = handle.detector_statistics().await;
        assert_eq!(live["tally"]["total"], expected_total, "round {round}");
        let tally = handle.health().component("tally").unwrap();
        assert_eq!(tally.restarts(), 1);
        assert!(tally.last_error().unwrap().contains("tally cannot handle boom"));
        shutdown.cancel();
        let report = run.await.unwrap();
        assert_eq!(report.detector_statistics["tally"]["total"], expected_total);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_that_fails_validation_stays_disabled_and_status_events_flow() {
    struct Unreadable;
    #[async_trait]
    impl EventSource for Unreadable {
        fn name(&self) -> &str {
            "unreadable"
        }
        fn capabilities(&self) -> SourceCapabilities {
            SourceCapabilities::LOG | SourceCapabilities::FILESYSTEM
        }
        async fn validate(&self) -> Result<(), ComponentError> {
            Err(ComponentError::io(
                "/nonexistent/auth.log",
                std::io::Error::from(std::io::ErrorKind::NotFound),
            ))
        }
        async fn start(&self, _ctx: SourceContext) -> Result<(), ComponentError> {
            unreachable!("a source that failed validation is never started")
        }
    }
    let collector = Collector::default();
    let mut builder =
        Runtime::builder(config().with_health_check_interval(Duration::from_millis(50)))
            .with_status_events(true);
    builder.register_source(Arc::new(Unreadable)).unwrap();
    builder
        .register_listener(
            Box::new(collector.clone()),
            Filter::any().kinds([EventKind::AgentStatus]),
        )
        .unwrap();
    assert!(builder.register_listener(Box::new(Collector::default()), Filter::any()).is_err());
    let runtime = builder.build();
    let handle = runtime.handle();
    let shutdown = vigil_core::CancellationToken::new();
    let run = tokio::spawn(runtime.run(shutdown.clone()));
    wait_until("two status events arrived", || collector.len() >= 2).await;
    let unreadable = handle.health().component("unreadable").unwrap();
    assert_eq!(unreadable.state(), ComponentState::Failed);
    assert!(unreadable.last_error().unwrap().contains("/nonexistent/auth.log"));
    let first = collector.seen.lock().unwrap()[0].clone();
    assert_eq!(&*first.source, STATUS_SOURCE);
    let Payload::AgentStatus(status) = &first.payload else { panic!("not a status event") };
    assert!(status.components.iter().any(|it| it.name == "unreadable" && it.state == "failed"));
    shutdown.cancel();
    run.await.unwrap();
}

#[test]
fn registering_more_sources_than_allowed_is_refused() {
    let mut builder = Runtime::builder(RuntimeConfig::new().with_max_event_sources(1));
    builder
        .register_source(Arc::new(Counter { name: "a", count: Some(1), every: Duration::ZERO }))
        .unwrap();
    let err = builder
        .register_source(Arc::new(Counter { name: "b", count: Some(1), every: Duration::ZERO }))
        .err()
        .unwrap();
    assert_eq!(err.to_string(), "too many sources: at most 1 may be registered");
}

#[test]
fn public_handles_can_cross_threads() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<vigil_runtime::Bus>();
    send_sync::<vigil_runtime::RuntimeHandle>();
    send_sync::<vigil_runtime::SubscriptionCloser>();
    send_sync::<vigil_runtime::Health>();
    send_sync::<FileStateStore>();
    send::<vigil_runtime::Subscription>();
    send::<Runtime>();
    send::<vigil_runtime::RuntimeBuilder>();
    send_sync::<vigil_core::EventSender>();
    send_sync::<Filter>();
    send_sync::<Event>();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_listener_resumes_and_the_other_listeners_are_untouched() {
    /// Panics on its first batch, then collects.
    struct Fragile {
        panicked: bool,
        seen: Arc<AtomicU64>,
    }
    #[async_trait]
    impl Listener for Fragile {
        fn name(&self) -> &str {
            "fragile"
        }
        async fn handle(&mut self, events: &[Arc<Event>]) -> Result<(), ComponentError> {
            if !self.panicked {
                self.panicked = true;
                panic!("fragile listener breaks once");
            }
            self.seen.fetch_add(events.len() as u64, Ordering::SeqCst);
            Ok(())
        }
    }
    let seen = Arc::new(AtomicU64::new(0));
    let collector = Collector::default();
    let mut builder = Runtime::builder(config());
    builder
        .register_source(Arc::new(Counter {
            name: "steady",
            count: Some(100),
            every: Duration::from_millis(2),
        }))
        .unwrap();
    builder
        .register_listener(Box::new(Fragile { panicked: false, seen: seen.clone() }), Filter::any())
        .unwrap();
    builder.register_listener(Box::new(collector.clone()), Filter::any()).unwrap();
    let runtime = builder.build();
    let handle = runtime.handle();
    let shutdown = vigil_core::CancellationToken::new();
    let run = tokio::spawn(runtime.run(shutdown.clone()));
    wait_until("the collector has every event", || collector.len() == 100).await;
    wait_until("the fragile listener resumed", || seen.load(Ordering::SeqCst) > 0).await;
    let fragile = handle.health().component("fragile").unwrap();
    assert_eq!(fragile.restarts(), 1);
    assert!(fragile.last_error().unwrap().contains("fragile listener breaks once"));
    assert_eq!(handle.health().component("collector").unwrap().restarts(), 0);
    shutdown.cancel();
    run.await.unwrap();
    let lost_in_panic = 100 - seen.load(Ordering::SeqCst);
    assert!(lost_in_panic >= 1, "the batch that panicked is not redelivered");
    assert_eq!(collector.messages_from("steady").len(), 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sources_own_counters_appear_in_health() {
    /// Counts its sends and reports them as statistics.
    struct Counting(Arc<AtomicU64>);
    #[async_trait]
    impl EventSource for Counting {
        fn name(&self) -> &str {
            "counting"
        }
        fn capabilities(&self) -> SourceCapabilities {
            SourceCapabilities::LOG
        }
        async fn start(&self, ctx: SourceContext) -> Result<(), ComponentError> {
            for n in 0..3 {
                ctx.send(Payload::Log(LogEvent::new("counting", n.to_string()))).await?;
                self.0.fetch_add(1, Ordering::SeqCst);
            }
            ctx.shutdown.cancelled().await;
            Ok(())
        }
        fn statistics(&self) -> Option<Statistics> {
            Some([("lines_read".to_owned(), Value::from(self.0.load(Ordering::SeqCst)))].into())
        }
    }
    let sent = Arc::new(AtomicU64::new(0));
    let mut builder = Runtime::builder(config());
    builder.register_source(Arc::new(Counting(sent.clone()))).unwrap();
    let runtime = builder.build();
    let handle = runtime.handle();
    let shutdown = vigil_core::CancellationToken::new();
    let run = tokio::spawn(runtime.run(shutdown.clone()));
    wait_until("the source sent everything", || sent.load(Ordering::SeqCst) == 3).await;
    let status = handle.status();
    let counting = status.components.iter().find(|it| it.name == "counting").unwrap();
    assert_eq!(counting.statistics["lines_read"], 3);
    assert_eq!(counting.events, 3);
    shutdown.cancel();
    run.await.unwrap();
}

/// Records the size of every batch and counts flushes; its first `failing` flushes fail.
#[derive(Clone, Default)]
struct BatchRecorder {
    sizes: Arc<Mutex<Vec<usize>>>,
    flushes: Arc<AtomicU64>,
    failing: u64,
}

#[async_trait]
impl Listener for BatchRecorder {
    fn name(&self) -> &str {
        "batches"
    }
    async fn handle(&mut self, events: &[Arc<Event>]) -> Result<(), ComponentError> {
        self.sizes.lock().unwrap().push(events.len());
        Ok(())
    }
    async fn flush(&mut self) -> Result<(), ComponentError> {
        let n = self.flushes.fetch_add(1, Ordering::SeqCst);
        if n < self.failing { Err(ComponentError::msg("destination down")) } else { Ok(()) }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_gets_its_own_batch_size_and_a_failed_flush_is_retried() {
    let recorder = BatchRecorder { failing: 3, ..BatchRecorder::default() };
    let mut builder = Runtime::builder(config().with_listener_batch_size(512));
    builder
        .register_source(Arc::new(Counter {
            name: "burst",
            count: Some(500),
            every: Duration::ZERO,
        }))
        .unwrap();
    builder
        .register_listener_with(
            Box::new(recorder.clone()),
            Filter::any().kinds([EventKind::Log]),
            vigil_runtime::ListenerOptions {
                batch_size: Some(7),
                flush_interval: Some(Duration::from_millis(10)),
            },
        )
        .unwrap();
    let runtime = builder.build();
    let shutdown = vigil_core::CancellationToken::new();
    let run = tokio::spawn(runtime.run(shutdown.clone()));
    let sizes = recorder.sizes.clone();
    wait_until("every event arrived", || sizes.lock().unwrap().iter().sum::<usize>() == 500).await;
    // No event arrives after the last batch, yet the failed flushes are tried again until one
    // succeeds.
    let flushes = recorder.flushes.clone();
    wait_until("a flush succeeds after three failures", || flushes.load(Ordering::SeqCst) >= 4)
        .await;
    shutdown.cancel();
    run.await.unwrap();
    let sizes = recorder.sizes.lock().unwrap();
    assert!(sizes.iter().all(|it| *it <= 7), "batches follow the listener's size: {sizes:?}");
}
