//! `vigil run`: builds the runtime from the validated configuration and runs it until a signal.
//!
//! This is the validated phase of configuration: each section's raw struct is turned into a
//! component (a disabled one into nothing) and registered in one explicit list per kind (house
//! style rule 4). Signals: the first SIGINT or SIGTERM starts a graceful shutdown bounded by
//! `runtime.shutdown_timeout`; a second one exits at once with status 130.

use std::{path::PathBuf, sync::Arc};

use anyhow::Context;
use vigil_collect::{
    ConnectionsSource, NetworkSource, ProcRoot, ProcessLifecycleSource, ProcessSource, SystemSource,
};
use vigil_core::{
    CancellationToken, ComponentError, Filter, Listener, async_trait,
    event::{Event, Payload},
};
use vigil_listen::JsonLinesConfig;
use vigil_parse::{Clock, Format};
use vigil_runtime::{FileStateStore, RunReport, Runtime, RuntimeBuilder, default_host};
use vigil_tail::{Decoder, LineContext, generic_decoder};

use crate::settings::Config;

/// Switches of `vigil run` that are not configuration keys.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Also write every dispatched event as a JSON line on standard output.
    pub print: bool,
}

/// The state directory the configuration selects.
pub fn state_dir(config: &Config) -> PathBuf {
    config.agent.state_dir.clone().unwrap_or_else(crate::paths::default_state_dir)
}

/// Builds the runtime described by `config`.
pub fn build(config: &Config, options: &RunOptions) -> anyhow::Result<Runtime> {
    let state_dir = state_dir(config);
    let store = FileStateStore::open(state_dir.join("state"))
        .with_context(|| format!("cannot use the state directory {}", state_dir.display()))?;
    let host = config.agent.host.clone().unwrap_or_else(default_host);
    let mut builder = Runtime::builder(config.runtime.to_runtime_config())
        .host(host)
        .state_store(Arc::new(store))
        .with_status_events(config.sources.agent.enabled);
    let mut acks = crate::stores::TailAcks::new(config);
    register_sources(&mut builder, config, &state_dir, &mut acks)?;
    register_detectors(&mut builder, config)?;
    register_listeners(&mut builder, config, options)?;
    register_bans(&mut builder, config, &state_dir)?;
    let tracers = crate::tracers::register(&mut builder, config)?;
    tracing::info!(tracers = ?tracers, "Enrichment configured");
    crate::stores::register(&mut builder, config, &state_dir, acks)?;
    tracing::info!(state_dir = %state_dir.display(), "Agent configured");
    Ok(builder.build())
}

fn register_sources(
    builder: &mut RuntimeBuilder,
    config: &Config,
    state_dir: &std::path::Path,
    acks: &mut crate::stores::TailAcks,
) -> anyhow::Result<()> {
    let sources = &config.sources;
    let root = ProcRoot::live;
    if sources.system.enabled {
        let source = SystemSource::with_disk_timeout(
            root(),
            sources.system.interval,
            sources.system.disk_timeout,
        );
        builder.register_source(Arc::new(source))?;
    }
    if sources.network.enabled {
        builder.register_source(Arc::new(NetworkSource::new(root(), sources.network.interval)))?;
    }
    if sources.process.enabled {
        builder.register_source(Arc::new(ProcessSource::new(root(), sources.process.interval)))?;
    }
    if sources.connections.enabled {
        let source = ConnectionsSource::new(root(), sources.connections.interval);
        builder.register_source(Arc::new(source))?;
    }
    if sources.process_lifecycle.enabled {
        let config = &sources.process_lifecycle;
        let source =
            ProcessLifecycleSource::new(root(), config.interval).with_connector(config.netlink);
        builder.register_source(Arc::new(source))?;
    }
    for (name, it) in &config.sources.files {
        let name = format!("files.{name}");
        let decoder = line_decoder(&it.parser).with_context(|| format!("source {name}"))?;
        // With a store, a line counts as delivered once every destination committed it;
        // without one, once the bus accepted it.
        let built = it
            .build(&name, state_dir, acks.mode_for(&name))
            .with_context(|| format!("source {name}"))?;
        if let Some(source) = built {
            // `multiline` joins a traceback's lines into one record (crate::multiline).
            builder.register_source(Arc::new(crate::multiline::wire(source, decoder, it)))?;
        }
    }
    register_journal(builder, config, state_dir)
}

/// The tailer's decoder for the configured `parser`: a built-in parser of vigil-parse, or the
/// line as it is (`none`). A line the parser does not recognise is kept as a plain log event, so
/// nothing read is dropped.
fn line_decoder(parser: &str) -> anyhow::Result<Decoder> {
    let Some(parse) = message_parser(parser)? else { return Ok(generic_decoder()) };
    let fallback = generic_decoder();
    Ok(Arc::new(move |ctx: &LineContext<'_>, line: &str| match parse(line) {
        Some(event) => Some(Payload::Log(event)),
        None => fallback(ctx, line),
    }))
}

/// A line or message parser shared by the file and journal decoders.
type MessageParser = Arc<dyn Fn(&str) -> Option<vigil_core::event::LogEvent> + Send + Sync>;

/// The built-in parser the configured `parser` names, or `None` for `none`.
fn message_parser(parser: &str) -> anyhow::Result<Option<MessageParser>> {
    if parser == "none" {
        return Ok(None);
    }
    let format: Format = parser.parse().map_err(|err| {
        let names: Vec<&str> = Format::ALL.iter().map(|it| it.as_str()).collect();
        anyhow::anyhow!("{err}: parser is one of {}, none", names.join(", "))
    })?;
    /// A parser completes year-less timestamps relative to the time it was made, so it is
    /// rebuilt every minute: a long-running agent keeps the year right across New Year.
    struct Current {
        parser: Box<dyn vigil_parse::Parser>,
        made: std::time::Instant,
    }
    const REFRESH: std::time::Duration = std::time::Duration::from_secs(60);
    let fresh = move || Current {
        parser: format.parser(Clock::default()),
        made: std::time::Instant::now(),
    };
    let current = std::sync::Mutex::new(fresh());
    Ok(Some(Arc::new(move |line: &str| {
        let mut current = current.lock().unwrap_or_else(|it| it.into_inner());
        if current.made.elapsed() > REFRESH {
            *current = fresh();
        }
        current.parser.parse_line(line)
    })))
}

/// Registers the `[sources.journal.<name>]` instances: each entry's message goes through the
/// same parsers as file lines (a bare sshd message, so `sshd` by default).
#[cfg(feature = "journald")]
fn register_journal(
    builder: &mut RuntimeBuilder,
    config: &Config,
    state_dir: &std::path::Path,
) -> anyhow::Result<()> {
    use vigil_journal::{EntryContext, JournalConfig, StartAt};
    for (name, it) in &config.sources.journal {
        if !it.enabled {
            continue;
        }
        let name = format!("journal.{name}");
        let parse = message_parser(it.parser()).with_context(|| format!("source {name}"))?;
        let fallback = vigil_journal::generic_decoder();
        let decoder: vigil_journal::Decoder =
            Arc::new(move |ctx: &EntryContext<'_>, message: &str| {
                match parse.as_ref().and_then(|parse| parse(message)) {
                    Some(event) => Some(Payload::Log(event)),
                    None => fallback(ctx, message),
                }
            });
        let journal = JournalConfig {
            enabled: true,
            directory: it.directory.clone(),
            units: it.units.clone(),
            identifiers: it.identifiers.clone(),
            start_at: match it.start_at {
                vigil_tail::StartAt::End => StartAt::End,
                vigil_tail::StartAt::Beginning => StartAt::Beginning,
            },
            batch_size: it.batch_size,
            parser: it.parser.clone(),
            checkpoint_dir: it.checkpoint_dir.clone(),
        };
        // No durable sink yet: an entry counts as delivered once the bus accepted it.
        let source = journal
            .build(&name, state_dir.join("checkpoints"), vigil_journal::AckMode::OnPublish)
            .with_context(|| format!("source {name}"))?;
        builder.register_source(Arc::new(source.with_decoder(decoder)))?;
    }
    Ok(())
}

/// Without the `journald` feature an enabled journal source cannot run: say how to get one.
#[cfg(not(feature = "journald"))]
fn register_journal(
    _builder: &mut RuntimeBuilder,
    config: &Config,
    _state_dir: &std::path::Path,
) -> anyhow::Result<()> {
    if let Some(name) = config.sources.journal.iter().find(|(_, it)| it.enabled).map(|it| it.0) {
        anyhow::bail!(
            "source journal.{name}: this vigil was built without the journald feature: cargo build --features journald"
        );
    }
    Ok(())
}

fn register_detectors(builder: &mut RuntimeBuilder, config: &Config) -> anyhow::Result<()> {
    let detectors = &config.detectors;
    if let Some(report) = detectors.report.build() {
        builder.register_detector(Box::new(report), detectors.report.filter.clone())?;
    }
    crate::agent_detect::register(builder, config)?;
    Ok(())
}

fn register_listeners(
    builder: &mut RuntimeBuilder,
    config: &Config,
    options: &RunOptions,
) -> anyhow::Result<()> {
    let listeners = &config.listeners;
    for (name, it) in &listeners.json_lines {
        let built = it.build().with_context(|| format!("listener json_lines.{name}"))?;
        if let Some(listener) = built {
            let named = Named::new(format!("json_lines.{name}"), Box::new(listener));
            builder.register_listener(Box::new(named), it.filter.clone())?;
        }
    }
    for (name, it) in &listeners.log {
        if let Some(listener) = it.build() {
            let named = Named::new(format!("log.{name}"), Box::new(listener));
            builder.register_listener(Box::new(named), it.filter.clone())?;
        }
    }
    for (name, it) in &listeners.csv {
        let built = it.build().with_context(|| format!("listener csv.{name}"))?;
        if let Some(listener) = built {
            let named = Named::new(format!("csv.{name}"), Box::new(listener));
            builder.register_listener(Box::new(named), it.filter.clone())?;
        }
    }
    for (name, it) in &listeners.webhook {
        let built = it.build().with_context(|| format!("listener webhook.{name}"))?;
        if let Some(listener) = built {
            let named = Named::new(format!("webhook.{name}"), Box::new(listener));
            builder.register_listener(Box::new(named), it.filter.clone())?;
        }
    }
    for (name, it) in &listeners.exec {
        let built = it.build().with_context(|| format!("listener exec.{name}"))?;
        if let Some(listener) = built {
            let named = Named::new(format!("exec.{name}"), Box::new(listener));
            builder.register_listener(Box::new(named), it.filter.clone())?;
        }
    }
    if options.print {
        let print = JsonLinesConfig::default().build()?.context("the print listener")?;
        builder.register_listener(
            Box::new(Named::new("print".into(), Box::new(print))),
            Filter::any(),
        )?;
    }
    Ok(())
}

/// Registers the ban manager (`[bans]`): it receives the jails' ban requests only, and holds
/// the state directory's agent lock so `vigil unban` knows it is listening.
fn register_bans(
    builder: &mut RuntimeBuilder,
    config: &Config,
    state_dir: &std::path::Path,
) -> anyhow::Result<()> {
    let Some(detector) = crate::commands::bans::build_detector(config, state_dir)? else {
        return Ok(());
    };
    builder.register_detector(Box::new(detector), vigil_respond::BanDetector::filter())?;
    Ok(())
}

/// Runs `runtime` until SIGINT or SIGTERM, then shuts it down gracefully.
pub async fn run(runtime: Runtime) -> anyhow::Result<RunReport> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let shutdown = CancellationToken::new();
    let watcher = shutdown.clone();
    tokio::spawn(async move {
        let name = tokio::select! {
            _ = interrupt.recv() => "SIGINT",
            _ = terminate.recv() => "SIGTERM",
        };
        tracing::info!(
            signal = name,
            "Received signal; shutting down (send it again to exit at once)"
        );
        watcher.cancel();
        tokio::select! {
            _ = interrupt.recv() => {},
            _ = terminate.recv() => {},
        }
        tracing::warn!("Second signal; exiting at once");
        std::process::exit(130);
    });
    Ok(runtime.run(shutdown).await)
}

/// A listener under an instance name, so two instances of one kind can be registered.
struct Named {
    name: String,
    inner: Box<dyn Listener>,
}

impl Named {
    fn new(name: String, inner: Box<dyn Listener>) -> Named {
        Named { name, inner }
    }
}

#[async_trait]
impl Listener for Named {
    fn name(&self) -> &str {
        &self.name
    }

    async fn handle(&mut self, events: &[Arc<Event>]) -> Result<(), ComponentError> {
        self.inner.handle(events).await
    }

    async fn flush(&mut self) -> Result<(), ComponentError> {
        self.inner.flush().await
    }
}
