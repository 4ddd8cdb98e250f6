//! The IP and event tracers applied by batches (`Enricher::enrich_batch`, what the runtime's
//! enrichment stage does with a source's batch) find exactly what they find event by event
//! (`enrich_with`): the same fields, trace records, ban requests after the same events, and the
//! same state afterwards, with the address table small enough that eviction runs.

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::Command,
    sync::Arc,
};

use serde_json::Value;
use vigil_core::{Enricher, enrich_batch_with, enrich_with};
use vigil_enrich::{
    event::{EventTracer, EventTracerConfig},
    ip::{IpTracer, IpTracerConfig},
};
use vigil_event::{Event, Payload};
use vigil_parse::{Clock, Format};

/// Generated auth.log lines (`shared/data/gen_authlog.py`).
fn generated(dir: &Path, lines: u32, seed: u32) -> Vec<String> {
    let log = dir.join("auth.log");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/gen_authlog.py");
    #[allow(clippy::disallowed_methods)] // The generator is a Python script; no shell involved.
    let status = Command::new("python3")
        .arg(script)
        .args(["--lines", &lines.to_string(), "--seed", &seed.to_string()])
        .arg("-o")
        .arg(&log)
        .status()
        .expect("python3 runs (scripts/test installs it)");
    assert!(status.success(), "gen_authlog.py failed");
    BufReader::new(std::fs::File::open(&log).unwrap()).lines().map(Result::unwrap).collect()
}

fn tracers() -> (Arc<IpTracer>, Arc<EventTracer>) {
    // Fewer addresses than the log holds, so the table evicts; a low threshold, so addresses
    // are block-listed and ban requests are made.
    let ip = IpTracerConfig {
        max_addresses: 1_000,
        max_subnets: 300,
        blocklist_threshold: 40,
        ..Default::default()
    };
    let event = EventTracerConfig { max_addresses: 500, max_keys: 50, ..Default::default() };
    (Arc::new(ip.build_always().unwrap()), Arc::new(event.build_always()))
}

/// What the tracers added to an event, without the times of the trace.
fn added(event: &Event) -> Value {
    let trace = event.enrichment.trace.as_ref().map(|it| {
        it.tracers.iter().map(|it| (it.tracer.to_string(), it.found.to_value())).collect::<Vec<_>>()
    });
    serde_json::json!({
        "fields": event.enrichment.fields,
        "trace": trace,
    })
}

#[test]
fn batches_find_what_single_events_find() {
    let dir = tempfile::tempdir().unwrap();
    let lines = generated(dir.path(), 40_000, 3);
    let parser = Format::Auto.parser(Clock::utc_at("2026-11-23T12:00:00Z".parse().unwrap()));
    let events: Vec<Event> = lines
        .iter()
        .filter_map(|line| parser.parse_line(line))
        .map(|log| Event::new("test", "files.auth", Payload::Log(log)))
        .collect();

    let (one_ip, one_event) = tracers();
    let single: Vec<Arc<dyn Enricher>> = vec![one_ip.clone(), one_event.clone()];
    let mut one_by_one = Vec::new();
    let mut one_extra = Vec::new();
    for (at, event) in events.iter().enumerate() {
        let mut event = event.clone();
        for extra in enrich_with(&single, &mut event) {
            one_extra.push((at, serde_json::to_value(&extra.payload).unwrap()));
        }
        one_by_one.push(added(&event));
    }

    let (batch_ip, batch_event) = tracers();
    let batched: Vec<Arc<dyn Enricher>> = vec![batch_ip.clone(), batch_event.clone()];
    let mut by_batch = Vec::new();
    let mut batch_extra = Vec::new();
    for (n, chunk) in events.chunks(512).enumerate() {
        let mut chunk = chunk.to_vec();
        let mut refs: Vec<&mut Event> = chunk.iter_mut().collect();
        for (at, extra) in enrich_batch_with(&batched, &mut refs) {
            batch_extra.push((n * 512 + at, serde_json::to_value(&extra.payload).unwrap()));
        }
        by_batch.extend(chunk.iter().map(added));
    }

    assert!(events.len() > 30_000, "{} events", events.len());
    assert!(one_by_one.iter().filter(|it| !it["trace"].is_null()).count() > 30_000);
    for (at, (one, batch)) in one_by_one.iter().zip(&by_batch).enumerate() {
        assert_eq!(one, batch, "event {at}");
    }
    assert!(!one_extra.is_empty(), "ban requests were made");
    assert_eq!(one_extra, batch_extra);
    let stats = one_ip.stats();
    assert!(stats.evictions > 0 && stats.subnet_evictions > 0, "{stats:?}");
    assert_eq!(stats, batch_ip.stats());
    assert_eq!(one_ip.reputation(0), batch_ip.reputation(0));
    assert_eq!(one_ip.patterns(20), batch_ip.patterns(20));
    assert_eq!(one_event.aggregates_json(20), batch_event.aggregates_json(20));
    // The clock was read once per tracer and batch (the event tracer reads it for the events
    // without an address, which the IP tracer left without a trace).
    let mut chunk = events[..512].to_vec();
    let mut refs: Vec<&mut Event> = chunk.iter_mut().collect();
    enrich_batch_with(&batched, &mut refs);
    let times: std::collections::BTreeSet<_> =
        chunk.iter().filter_map(|it| it.enrichment.trace.as_ref()).map(|it| it.traced_at).collect();
    assert!(!times.is_empty() && times.len() <= 2, "{times:?}");
}
