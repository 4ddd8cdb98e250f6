//! [`StoreListener`]: the async adapter between the runtime and a blocking [`Sink`] — it
//! batches, retries with backoff, bounds its buffer and acknowledges lines after commit.

use std::{
    collections::VecDeque,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use vigil_core::{ComponentError, Listener, async_trait};
use vigil_event::Event;

use super::{AckSlot, BatchSettings};
use crate::{Sink, StoreError};

/// First pause after a failed write; it doubles on each failure up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// Longest pause between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How often retention work is started.
const DEFAULT_MAINTENANCE_INTERVAL: Duration = Duration::from_secs(60);

/// Counters of one store listener, readable from any thread.
#[derive(Debug, Default)]
pub struct StoreStats {
    /// Events written and committed.
    pub written: AtomicU64,
    /// Batches written.
    pub batches: AtomicU64,
    /// Failed write attempts.
    pub failures: AtomicU64,
    /// Events waiting in the buffer now.
    pub buffered: AtomicU64,
}

/// A listener that stores every event it receives through a [`Sink`].
///
/// Events are buffered and written `batch_size` at a time (and whatever is left on every
/// flush, which the runtime calls every `flush_interval`). A failed write is retried with
/// exponential backoff (100 ms doubling to 30 s); meanwhile events keep being buffered up to
/// `max_buffered_events`, beyond which `handle` waits for the destination — the runtime's queue
/// then fills, and sources are held back (or, with `drop_oldest`, the queue drops and counts).
/// Once a batch is committed, its tailed lines are acknowledged through the [`AckSlot`], so a
/// source's checkpoint never passes a line that is not stored.
pub struct StoreListener {
    name: String,
    sink: Arc<Mutex<Box<dyn Sink>>>,
    settings: BatchSettings,
    buffer: VecDeque<Arc<Event>>,
    ack: Option<AckSlot>,
    backoff: Duration,
    next_try: Option<Instant>,
    maintenance_interval: Duration,
    next_maintenance: Instant,
    maintenance_pending: bool,
    stats: Arc<StoreStats>,
}

impl std::fmt::Debug for StoreListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreListener").field("name", &self.name).finish_non_exhaustive()
    }
}

impl StoreListener {
    /// A listener called `name` writing through `sink`.
    pub fn new(name: impl Into<String>, sink: Box<dyn Sink>, settings: BatchSettings) -> Self {
        StoreListener {
            name: name.into(),
            sink: Arc::new(Mutex::new(sink)),
            settings,
            buffer: VecDeque::new(),
            ack: None,
            backoff: FIRST_BACKOFF,
            next_try: None,
            maintenance_interval: DEFAULT_MAINTENANCE_INTERVAL,
            next_maintenance: Instant::now(),
            maintenance_pending: true,
            stats: Arc::default(),
        }
    }

    /// Acknowledges committed lines through `slot`.
    #[must_use]
    pub fn with_ack(mut self, slot: AckSlot) -> Self {
        self.ack = Some(slot);
        self
    }

    /// Runs the sink's housekeeping (retention) this often.
    #[must_use]
    pub fn with_maintenance_interval(mut self, interval: Duration) -> Self {
        self.maintenance_interval = interval;
        self
    }

    /// The batching settings.
    pub fn settings(&self) -> &BatchSettings {
        &self.settings
    }

    /// A handle on the counters.
    pub fn stats(&self) -> Arc<StoreStats> {
        self.stats.clone()
    }

    /// Writes up to `n` buffered events. `Ok(false)`: not attempted, the destination is in
    /// backoff.
    async fn write(&mut self, n: usize) -> Result<bool, StoreError> {
        if let Some(at) = self.next_try
            && Instant::now() < at
        {
            return Ok(false);
        }
        let n = n.min(self.buffer.len());
        if n == 0 {
            return Ok(true);
        }
        let chunk: Vec<Arc<Event>> = self.buffer.iter().take(n).cloned().collect();
        let sink = self.sink.clone();
        let result = tokio::task::spawn_blocking(move || {
            let mut sink = sink.lock().unwrap_or_else(|it| it.into_inner());
            let result =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sink.write_batch(&chunk)));
            (chunk, result)
        })
        .await;
        let (chunk, result) = match result {
            Ok((chunk, Ok(result))) => (chunk, result),
            Ok((_, Err(_))) => {
                return self.failed(StoreError::Config("the destination panicked".to_owned()));
            }
            Err(err) => {
                return self.failed(StoreError::Config(format!("write task failed: {err}")));
            }
        };
        match result {
            Ok(()) => {
                self.buffer.drain(..n);
                if let Some(ack) = &self.ack {
                    ack.committed(&chunk);
                }
                if self.next_try.take().is_some() {
                    tracing::info!(store = %self.name, "Store writes again");
                }
                self.backoff = FIRST_BACKOFF;
                self.stats.written.fetch_add(n as u64, Ordering::Relaxed);
                self.stats.batches.fetch_add(1, Ordering::Relaxed);
                self.stats.buffered.store(self.buffer.len() as u64, Ordering::Relaxed);
                Ok(true)
            }
            Err(err) => self.failed(err),
        }
    }

    fn failed(&mut self, err: StoreError) -> Result<bool, StoreError> {
        self.stats.failures.fetch_add(1, Ordering::Relaxed);
        self.stats.buffered.store(self.buffer.len() as u64, Ordering::Relaxed);
        tracing::warn!(
            store = %self.name,
            error = %err,
            buffered = self.buffer.len(),
            retry_in_ms = self.backoff.as_millis() as u64,
            "Store write failed; keeping the events and retrying"
        );
        self.next_try = Some(Instant::now() + self.backoff);
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        Err(err)
    }

    /// One bounded piece of the sink's housekeeping, when it is due.
    async fn maintain(&mut self) {
        let now = Instant::now();
        if !self.maintenance_pending && now < self.next_maintenance {
            return;
        }
        if !self.maintenance_pending {
            self.maintenance_pending = true;
        }
        self.next_maintenance = now + self.maintenance_interval;
        let sink = self.sink.clone();
        let result = tokio::task::spawn_blocking(move || {
            let mut sink = sink.lock().unwrap_or_else(|it| it.into_inner());
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sink.maintain()))
        })
        .await;
        match result {
            Ok(Ok(Ok(more))) => self.maintenance_pending = more,
            Ok(Ok(Err(err))) => {
                self.maintenance_pending = false;
                tracing::warn!(store = %self.name, error = %err, "Store housekeeping failed");
            }
            _ => self.maintenance_pending = false,
        }
    }
}

#[async_trait]
impl Listener for StoreListener {
    fn name(&self) -> &str {
        &self.name
    }

    async fn handle(&mut self, events: &[Arc<Event>]) -> Result<(), ComponentError> {
        self.buffer.extend(events.iter().cloned());
        self.stats.buffered.store(self.buffer.len() as u64, Ordering::Relaxed);
        let mut error = None;
        while self.buffer.len() >= self.settings.batch_size {
            match self.write(self.settings.batch_size).await {
                Ok(true) => {}
                Ok(false) => break,
                Err(err) => {
                    error = Some(err);
                    break;
                }
            }
        }
        // The bound: wait for the destination rather than grow.
        while self.buffer.len() > self.settings.max_buffered_events {
            if let Some(at) = self.next_try {
                tokio::time::sleep_until(at.into()).await;
            }
            if let Err(err) = self.write(self.settings.batch_size).await {
                error = Some(err);
            }
        }
        if error.is_none() && self.next_try.is_none() {
            self.maintain().await;
        }
        error.map_or(Ok(()), |err| Err(err.into()))
    }

    async fn flush(&mut self) -> Result<(), ComponentError> {
        while !self.buffer.is_empty() {
            // In backoff, wait for the next attempt rather than report the same failure at every
            // flush tick; new events wait in the runtime's queue meanwhile.
            if let Some(at) = self.next_try {
                tokio::time::sleep_until(at.into()).await;
            }
            if let Err(err) = self.write(self.settings.batch_size).await {
                return Err(ComponentError::msg(format!(
                    "{err}; {} events waiting for the destination",
                    self.buffer.len()
                )));
            }
        }
        if self.maintenance_pending || Instant::now() >= self.next_maintenance {
            self.maintain().await;
        }
        Ok(())
    }
}
