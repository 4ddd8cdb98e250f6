//! The tail source's async loop: poll the files on a blocking thread, turn lines into events
//! through the decoder, send them in batches, and commit what was acknowledged.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use vigil_core::{
    ComponentError, Event, EventSource, SourceCapabilities, SourceContext, Statistics, async_trait,
};
use vigil_event::{LineOrigin, LogEvent, Payload};

use crate::{
    AckMode, TailConfig, TailStats,
    ack::AckShared,
    checkpoint::CheckpointStore,
    events::{Counters, TailTelemetry, Telemetry},
    multiline::{JoinerFactory, Multiline},
    tailer::{Line, Tailer},
};

/// Most events per `send_batch`.
const BATCH: usize = 512;

/// How long a stopping source waits for externally acknowledged lines in flight (a store's
/// flush interval is one second by default); what is still unacknowledged then is read again
/// at the next start.
const SHUTDOWN_ACK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// How long an inotify wake-up waits for more changes before polling.
const WAKE_SETTLE: std::time::Duration = std::time::Duration::from_millis(5);

/// What a decoder knows about a line besides its text.
#[derive(Debug, Clone, Copy)]
pub struct LineContext<'a> {
    /// The source's name.
    pub source: &'a str,
    /// The watched path the line's file was found at.
    pub path: &'a Path,
    /// Where the line was read.
    pub origin: &'a LineOrigin,
    /// The line was longer than `max_line_bytes` and was cut.
    pub truncated: bool,
    /// The line was not valid UTF-8; the text has replacement characters.
    pub invalid_utf8: bool,
}

/// Turns one line into a payload, or `None` to skip it (a skipped line counts as
/// acknowledged). A log payload gets the line's origin filled in by the tailer.
pub type Decoder = Arc<dyn Fn(&LineContext<'_>, &str) -> Option<Payload> + Send + Sync>;

/// The default decoder: a generic log event whose message and raw text are the line and whose
/// `source` is the source's name.
pub fn generic_decoder() -> Decoder {
    Arc::new(|ctx: &LineContext<'_>, line: &str| {
        Some(Payload::Log(LogEvent {
            raw: Some(line.to_owned()),
            ..LogEvent::new(ctx.source, line)
        }))
    })
}

/// A cloneable view of a tail source's counters, usable after the source was handed over.
#[derive(Debug, Clone)]
pub struct TailStatsHandle(Arc<Counters>);

impl TailStatsHandle {
    /// The counters now.
    pub fn snapshot(&self) -> TailStats {
        self.0.snapshot()
    }
}

/// Follows files and sends each line as an event (see the crate docs).
pub struct TailSource {
    name: String,
    config: TailConfig,
    checkpoint_dir: PathBuf,
    ack: AckMode,
    shared: Arc<AckShared>,
    decoder: Decoder,
    counters: Arc<Counters>,
    sink: Option<Arc<dyn TailTelemetry>>,
    joiner: Option<JoinerFactory>,
}

impl TailSource {
    /// A source called `name` keeping its checkpoint in `checkpoint_dir`. Prefer
    /// [`TailConfig::build`], which validates the configuration first.
    pub fn new(name: &str, config: TailConfig, checkpoint_dir: PathBuf, ack: AckMode) -> Self {
        let shared = match &ack {
            AckMode::OnPublish => Arc::default(),
            AckMode::External(handle) => handle.shared.clone(),
        };
        TailSource {
            name: name.to_owned(),
            config,
            checkpoint_dir,
            ack,
            shared,
            decoder: generic_decoder(),
            counters: Arc::default(),
            sink: None,
            joiner: None,
        }
    }

    /// Uses `decoder` to turn lines into payloads (a parser).
    #[must_use]
    pub fn with_decoder(mut self, decoder: Decoder) -> Self {
        self.decoder = decoder;
        self
    }

    /// Joins consecutive lines that `joiner`'s rule says belong together into one record and
    /// one event (bounded by `multiline_max_lines`, `multiline_max_bytes` and
    /// `multiline_timeout`); the decoder then sees the record's lines joined by `\n`.
    #[must_use]
    pub fn with_joiner(mut self, joiner: JoinerFactory) -> Self {
        self.joiner = Some(joiner);
        self
    }

    /// Also reports telemetry to `sink`.
    #[must_use]
    pub fn with_telemetry(mut self, sink: Arc<dyn TailTelemetry>) -> Self {
        self.sink = Some(sink);
        self
    }

    /// The counters now.
    pub fn stats(&self) -> TailStats {
        self.counters.snapshot()
    }

    /// A handle on the counters that outlives handing the source to the runtime.
    pub fn stats_handle(&self) -> TailStatsHandle {
        TailStatsHandle(self.counters.clone())
    }

    fn telemetry(&self) -> Telemetry {
        Telemetry {
            source: self.name.as_str().into(),
            counters: self.counters.clone(),
            sink: self.sink.clone(),
        }
    }

    /// Turns lines into events; returns them with the origins to acknowledge once published.
    fn decode(&self, ctx: &SourceContext, lines: Vec<Line>) -> (Vec<Event>, Vec<LineOrigin>) {
        let mut events = Vec::with_capacity(lines.len());
        let mut origins = Vec::with_capacity(lines.len());
        let external = matches!(self.ack, AckMode::External(_));
        for line in lines {
            let origin =
                LineOrigin { stream: line.stream.to_string(), offset: line.offset, end: line.end };
            let line_ctx = LineContext {
                source: &self.name,
                path: &line.path,
                origin: &origin,
                truncated: line.truncated,
                invalid_utf8: line.invalid_utf8,
            };
            let payload = (self.decoder)(&line_ctx, &line.text);
            let waits_for_downstream = external && matches!(payload, Some(Payload::Log(_)));
            if let Some(mut payload) = payload {
                if let Payload::Log(log) = &mut payload {
                    log.origin = Some(origin.clone());
                }
                events.push(ctx.event(payload));
            }
            if !waits_for_downstream {
                origins.push(origin);
            }
        }
        (events, origins)
    }
}

#[async_trait]
impl EventSource for TailSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn capabilities(&self) -> SourceCapabilities {
        SourceCapabilities::LOG | SourceCapabilities::FILESYSTEM
    }

    fn statistics(&self) -> Option<Statistics> {
        let it = self.stats();
        let counters = [
            ("lines_read", it.lines_read),
            ("bytes_read", it.bytes_read),
            ("lines_truncated", it.lines_truncated),
            ("lines_invalid_utf8", it.lines_invalid_utf8),
            ("rotations", it.rotations),
            ("bytes_lost", it.bytes_lost),
            ("errors", it.errors),
            ("files_watched", it.files_watched),
        ];
        Some(counters.into_iter().map(|(k, v)| (k.to_owned(), v.into())).collect())
    }

    async fn validate(&self) -> Result<(), ComponentError> {
        if self.config.paths.is_empty() {
            return Err(ComponentError::Config("no paths to follow".to_owned()));
        }
        std::fs::create_dir_all(&self.checkpoint_dir)
            .map_err(|err| ComponentError::io(&self.checkpoint_dir, err))
    }

    async fn start(&self, ctx: SourceContext) -> Result<(), ComponentError> {
        // A new run starts from the checkpoint; whatever was in flight is read again.
        self.shared.clear();
        let store = CheckpointStore::new(&self.checkpoint_dir, &self.name);
        let (config, shared, tel) = (self.config.clone(), self.shared.clone(), self.telemetry());
        let multiline = self.joiner.clone().map(|factory| Multiline {
            factory,
            max_lines: self.config.multiline_max_lines.max(1),
            max_bytes: self.config.multiline_max_bytes.max(1),
            timeout: self.config.multiline_timeout,
        });
        let mut tailer =
            blocking(move || Tailer::open(config, store, shared, tel, multiline)).await?;
        let max_in_flight = self.config.max_in_flight_lines;
        let wake = Arc::new(tokio::sync::Notify::new());
        let watcher = if self.config.inotify {
            crate::watch::watch(&self.name, &self.config.paths, wake.clone())
        } else {
            None
        };
        // Globs are expanded once per poll interval, also while a busy file keeps the loop
        // from sleeping.
        let mut last_discovery: Option<tokio::time::Instant> = None;
        loop {
            let budget = max_in_flight.saturating_sub(self.shared.in_flight());
            let discover =
                last_discovery.is_none_or(|it| it.elapsed() >= self.config.poll_interval);
            if discover {
                last_discovery = Some(tokio::time::Instant::now());
            }
            let (t, lines) = blocking(move || {
                let mut out = Vec::new();
                tailer.poll(&mut out, budget, discover);
                (tailer, out)
            })
            .await?;
            tailer = t;
            let more = !lines.is_empty();
            let (events, origins) = self.decode(&ctx, lines);
            let mut batches = events.into_iter().peekable();
            while batches.peek().is_some() {
                let batch: Vec<Event> = batches.by_ref().take(BATCH).collect();
                tokio::select! {
                    sent = ctx.out.send_batch(batch) => sent?,
                    () = ctx.shutdown.cancelled() => break,
                }
            }
            if !ctx.shutdown.is_cancelled() {
                for origin in &origins {
                    self.shared.ack(&origin.stream, origin.offset, origin.end);
                }
            }
            tailer = blocking(move || {
                tailer.commit();
                tailer
            })
            .await?;
            if ctx.shutdown.is_cancelled() {
                break;
            }
            if more {
                tokio::task::yield_now().await;
                continue;
            }
            tokio::select! {
                () = tokio::time::sleep(self.config.poll_interval) => {}
                () = self.shared.advanced(), if budget == 0 => {}
                () = wake.notified(), if watcher.is_some() => {
                    // Let a burst of writes settle into one poll.
                    tokio::select! {
                        () = tokio::time::sleep(WAKE_SETTLE) => {}
                        () = ctx.shutdown.cancelled() => break,
                    }
                }
                () = ctx.shutdown.cancelled() => break,
            }
        }
        // A store acknowledges on its own flush schedule: give the lines in flight a moment
        // to be committed, so the checkpoint written now is as far as the store got.
        if matches!(self.ack, AckMode::External(_)) {
            let deadline = tokio::time::Instant::now() + SHUTDOWN_ACK_WAIT;
            while self.shared.in_flight() > 0 {
                tokio::select! {
                    () = self.shared.advanced() => {}
                    () = tokio::time::sleep_until(deadline) => break,
                }
            }
        }
        // Acknowledgements that arrived meanwhile still count.
        blocking(move || tailer.commit()).await?;
        let stats = self.stats();
        tracing::info!(
            source = %self.name,
            lines_read = stats.lines_read,
            bytes_read = stats.bytes_read,
            lines_truncated = stats.lines_truncated,
            lines_invalid_utf8 = stats.lines_invalid_utf8,
            rotations = stats.rotations,
            files_watched = stats.files_watched,
            "Stopped following files"
        );
        Ok(())
    }
}

/// Runs blocking file work off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ComponentError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|err| ComponentError::msg(format!("tail worker failed: {err}")))
}
