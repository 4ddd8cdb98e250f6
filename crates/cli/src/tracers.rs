//! Wires the enrichment stage of `vigil run`: the `[tracers.*]` sections and the
//! `[triggers.<name>]` table become enrichers, registered in pipeline order (ip, event, error,
//! network, process, then the trigger engine, which reads the tracers' fields).

use std::sync::Arc;

use anyhow::Context;
use vigil_collect::ProcRoot;
use vigil_core::Enricher;
use vigil_enrich::{
    TracersConfig,
    error::ErrorTracer,
    event::EventTracer,
    ip::IpTracer,
    trigger::{Analyzer, HostAnalyzer, TriggerEngine},
};
use vigil_runtime::RuntimeBuilder;

use crate::settings::Config;

/// Registers every enabled tracer and trigger with `builder`; returns the tracers' names.
pub fn register(
    builder: &mut RuntimeBuilder,
    config: &Config,
) -> anyhow::Result<Vec<&'static str>> {
    let tracers = &config.tracers;
    let LogTracers { ip, event, error, chain, mut names } = log_tracers(tracers)?;
    for tracer in chain {
        builder.register_enricher(tracer);
    }
    // Their statistics are saved like a detector's, for `vigil report`.
    if let Some(stats) = crate::tracer_stats::TracerStats::new(event, error) {
        let filter = crate::tracer_stats::TracerStats::filter();
        builder.register_detector(Box::new(stats), filter)?;
    }
    if let Some(network) = tracers.network.build(ProcRoot::live()) {
        builder.register_enricher(Arc::new(network));
        names.push("network");
    }
    if let Some(process) = tracers.process.build(ProcRoot::live()) {
        builder.register_enricher(Arc::new(process));
        names.push("process");
    }
    let analyzers: Vec<Arc<dyn Analyzer>> =
        vec![Arc::new(HostAnalyzer::new(ProcRoot::live(), ip.clone()))];
    let limits = tracers.triggers;
    if limits.max_per_minute == 0 || limits.max_concurrent == 0 {
        anyhow::bail!("tracers.triggers: max_per_minute and max_concurrent must be at least 1");
    }
    let engine = TriggerEngine::build(&config.triggers, &analyzers, limits)?;
    if !engine.is_empty() {
        builder.register_enricher(Arc::new(engine));
        names.push("trigger");
    }
    Ok(names)
}

/// The tracers that read only the events themselves, in pipeline order (ip, event, error): the
/// first part of `vigil run`'s enrichment stage, and all of `vigil replay`'s (the network and
/// process tracers and the triggers read the live host, which says nothing about a historic
/// file).
pub struct LogTracers {
    /// The IP tracer, when enabled (the trigger engine's `trace_ip` reads it).
    pub ip: Option<Arc<IpTracer>>,
    /// The event tracer, when enabled (its aggregates are saved for `vigil report`).
    pub event: Option<Arc<EventTracer>>,
    /// The error tracer, when enabled (its signatures are saved for `vigil report`).
    pub error: Option<Arc<ErrorTracer>>,
    /// The enabled tracers, in order.
    pub chain: Vec<Arc<dyn Enricher>>,
    /// Their names, in order.
    pub names: Vec<&'static str>,
}

/// Builds the log tracers `tracers` enables.
pub fn log_tracers(tracers: &TracersConfig) -> anyhow::Result<LogTracers> {
    let mut out =
        LogTracers { ip: None, event: None, error: None, chain: Vec::new(), names: Vec::new() };
    out.ip = tracers.ip.build().context("tracers.ip")?.map(Arc::new);
    if let Some(ip) = &out.ip {
        out.chain.push(ip.clone());
        out.names.push("ip");
    }
    out.event = tracers.event.build().map(Arc::new);
    if let Some(event) = &out.event {
        out.chain.push(event.clone());
        out.names.push("event");
    }
    out.error = tracers.error.build().map(Arc::new);
    if let Some(error) = &out.error {
        out.chain.push(error.clone());
        out.names.push("error");
    }
    Ok(out)
}
