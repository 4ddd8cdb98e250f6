//! Wires the enrichment stage of `vigil run`: the `[tracers.*]` sections and the
//! `[triggers.<name>]` table become enrichers, registered in pipeline order (ip, event, error,
//! network, process, then the trigger engine, which reads the tracers' fields).

use std::sync::Arc;

use anyhow::Context;
use vigil_collect::ProcRoot;
use vigil_enrich::trigger::{Analyzer, HostAnalyzer, TriggerEngine};
use vigil_runtime::RuntimeBuilder;

use crate::settings::Config;

/// Registers every enabled tracer and trigger with `builder`; returns the tracers' names.
pub fn register(
    builder: &mut RuntimeBuilder,
    config: &Config,
) -> anyhow::Result<Vec<&'static str>> {
    let tracers = &config.tracers;
    let mut names = Vec::new();
    let ip = tracers.ip.build().context("tracers.ip")?.map(Arc::new);
    if let Some(ip) = &ip {
        builder.register_enricher(ip.clone());
        names.push("ip");
    }
    let event = tracers.event.build().map(Arc::new);
    if let Some(event) = &event {
        builder.register_enricher(event.clone());
        names.push("event");
    }
    let error = tracers.error.build().map(Arc::new);
    if let Some(error) = &error {
        builder.register_enricher(error.clone());
        names.push("error");
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
