//! Triggers on real events and real analyses; the limits with tokio's clock paused.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use vigil_collect::ProcRoot;
use vigil_core::Enricher;
use vigil_event::{Event, LogEvent, Payload, ProcessEvent, ProcessInfo, ProcessPhase};

use super::*;

fn engine(
    triggers: &[(&str, TriggerConfig)],
    root: ProcRoot,
    limits: GlobalLimits,
) -> TriggerEngine {
    let configs: BTreeMap<String, TriggerConfig> =
        triggers.iter().map(|(name, it)| ((*name).to_owned(), it.clone())).collect();
    let analyzers: Vec<Arc<dyn Analyzer>> = vec![Arc::new(HostAnalyzer::new(root, None))];
    TriggerEngine::build(&configs, &analyzers, limits).unwrap()
}

fn severe_error() -> Event {
    let log = LogEvent { ip: Some("127.0.0.1".parse().unwrap()), ..LogEvent::new("app", "boom") };
    let mut event = Event::new("h", "files.app", Payload::Log(log));
    event.enrichment.fields.insert("error_severity".into(), 80.into());
    event
}

fn process(pid: u32, name: &str, deleted: bool) -> Event {
    let info = ProcessInfo {
        pid,
        name: Some(name.to_owned()),
        exe: Some(format!("/usr/bin/{name}")),
        exe_deleted: Some(deleted),
        ..ProcessInfo::default()
    };
    Event::new(
        "h",
        "process",
        Payload::Process(ProcessEvent { phase: ProcessPhase::Start, process: info }),
    )
}

/// The trigger records of an enriched event: (trigger, outcome) with outcome `result`,
/// `error` or the skip reason.
fn outcomes(event: &Event) -> Vec<(String, String)> {
    let Some(trace) = &event.enrichment.trace else { return Vec::new() };
    trace
        .tracers
        .iter()
        .filter(|it| it.tracer == "trigger")
        .map(|it| {
            let found = it.found.to_value();
            let outcome = if found.get("result").is_some() {
                "result".to_owned()
            } else if let Some(error) = found.get("error") {
                format!("error: {error}")
            } else {
                found["skipped"].as_str().unwrap_or("?").to_owned()
            };
            (found["trigger"].as_str().unwrap().to_owned(), outcome)
        })
        .collect()
}

fn run(engine: &TriggerEngine, mut event: Event) -> Vec<(String, String)> {
    assert!(engine.wants(&event));
    engine.enrich(&mut event, &mut Vec::new());
    outcomes(&event)
}

#[test]
fn hashes_the_executable_of_a_matching_process() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join("4242")).unwrap();
    std::fs::write(root.path().join("4242/exe"), b"abc").unwrap();
    let config = TriggerConfig {
        pattern: Some("xmrig|minerd".into()),
        priority: Priority::High,
        ..TriggerConfig::default()
    };
    let engine = engine(&[("miner", config)], ProcRoot::at(root.path()), GlobalLimits::default());
    let mut event = process(4242, "xmrig", false);
    engine.enrich(&mut event, &mut Vec::new());
    let record = &event.enrichment.trace.as_ref().unwrap().tracers[0];
    let found = record.found.to_value();
    assert_eq!(found["analysis"], "hash_executable");
    assert_eq!(found["priority"], "high");
    assert_eq!(
        found["result"]["sha256"],
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_eq!(found["result"]["size"], 3);
    // Another name does not match; a vanished process is an error in the trace, not a panic.
    let mut other = process(4242, "nginx", false);
    engine.enrich(&mut other, &mut Vec::new());
    assert!(outcomes(&other).is_empty());
    assert_eq!(
        run(&engine, process(999_999, "minerd", false))[0].1.split(':').next(),
        Some("error")
    );
}

#[test]
fn snapshots_the_tree_of_a_process_whose_executable_is_missing() {
    let config = TriggerConfig {
        condition: ConditionKind::ExecutableMissing,
        analysis: AnalysisKind::ProcessTree,
        ..TriggerConfig::default()
    };
    let engine = engine(&[("deleted", config)], ProcRoot::live(), GlobalLimits::default());
    let mut event = process(std::process::id(), "vigil", true);
    engine.enrich(&mut event, &mut Vec::new());
    let found = event.enrichment.trace.as_ref().unwrap().tracers[0].found.to_value();
    assert_eq!(found["result"]["process"]["pid"], std::process::id());
    assert!(!found["result"]["ancestors"].as_array().unwrap().is_empty(), "{found}");
    let mut present = process(1, "init", false);
    engine.enrich(&mut present, &mut Vec::new());
    assert!(outcomes(&present).is_empty(), "an executable that is present triggers nothing");
}

#[tokio::test(start_paused = true)]
async fn the_rate_limit_refills_with_time() {
    let config = TriggerConfig {
        condition: ConditionKind::ErrorSeverityAbove,
        bound: Some(50),
        analysis: AnalysisKind::TraceIp,
        max_per_minute: 3,
        ..TriggerConfig::default()
    };
    let engine = engine(&[("errors", config)], ProcRoot::live(), GlobalLimits::default());
    let got: Vec<String> = (0..5).map(|_| run(&engine, severe_error())[0].1.clone()).collect();
    assert_eq!(got, ["result", "result", "result", "rate_limited", "rate_limited"]);
    tokio::time::advance(Duration::from_secs(20)).await;
    assert_eq!(run(&engine, severe_error())[0].1, "result", "one token back after 20 s");
    assert_eq!(run(&engine, severe_error())[0].1, "rate_limited");
    tokio::time::advance(Duration::from_secs(600)).await;
    let got: Vec<String> = (0..4).map(|_| run(&engine, severe_error())[0].1.clone()).collect();
    assert_eq!(got, ["result", "result", "result", "rate_limited"], "the bucket holds at most 3");
    let stats = engine.stats()["errors"];
    assert_eq!((stats.matched, stats.ran, stats.rate_limited), (11, 7, 4));
    // Below the bound nothing matches.
    let mut calm = severe_error();
    calm.enrichment.fields.insert("error_severity".into(), 50.into());
    assert!(run(&engine, calm).is_empty());
}

#[tokio::test(start_paused = true)]
async fn the_concurrency_limit_skips_while_analyses_run() {
    let config = TriggerConfig {
        condition: ConditionKind::ErrorSeverityAbove,
        bound: Some(50),
        analysis: AnalysisKind::TraceIp,
        max_concurrent: 1,
        ..TriggerConfig::default()
    };
    let limits = GlobalLimits { max_per_minute: 100, max_concurrent: 2 };
    let engine = engine(&[("errors", config)], ProcRoot::live(), limits);
    let held = engine.try_admit("errors").unwrap();
    assert_eq!(run(&engine, severe_error())[0].1, "busy");
    assert!(matches!(engine.try_admit("errors"), Err(Refusal::Busy)));
    drop(held);
    assert_eq!(run(&engine, severe_error())[0].1, "result");
    assert_eq!(engine.stats()["errors"].busy, 1);
}

#[tokio::test(start_paused = true)]
async fn priorities_share_the_global_budget() {
    let base = TriggerConfig {
        condition: ConditionKind::ErrorSeverityAbove,
        bound: Some(50),
        analysis: AnalysisKind::TraceIp,
        max_per_minute: 1000,
        ..TriggerConfig::default()
    };
    let low = TriggerConfig { priority: Priority::Low, ..base.clone() };
    let critical = TriggerConfig { priority: Priority::Critical, ..base };
    let limits = GlobalLimits { max_per_minute: 10, max_concurrent: 4 };
    let engine = engine(&[("a_low", low), ("b_critical", critical)], ProcRoot::live(), limits);
    let first = run(&engine, severe_error());
    assert_eq!(first[0].0, "b_critical", "the critical trigger runs first");
    for _ in 0..9 {
        run(&engine, severe_error());
    }
    let stats = engine.stats();
    // Low runs only while more than half of the 10 tokens are left: twice. Critical takes the
    // rest of the budget.
    assert_eq!(stats["a_low"].ran, 2, "{stats:?}");
    assert_eq!(stats["b_critical"].ran, 8, "{stats:?}");
    assert_eq!(stats["a_low"].rate_limited, 8);
}

#[test]
fn invalid_triggers_are_configuration_errors() {
    let analyzers: Vec<Arc<dyn Analyzer>> =
        vec![Arc::new(HostAnalyzer::new(ProcRoot::live(), None))];
    for (config, want) in [
        (TriggerConfig::default(), "pattern"),
        (TriggerConfig { pattern: Some("(".into()), ..Default::default() }, "invalid pattern"),
        (TriggerConfig { condition: ConditionKind::IpScoreAbove, ..Default::default() }, "bound"),
        (
            TriggerConfig { pattern: Some("x".into()), max_per_minute: 0, ..Default::default() },
            "at least 1",
        ),
    ] {
        let configs = BTreeMap::from([("t".to_owned(), config)]);
        let err = TriggerEngine::build(&configs, &analyzers, GlobalLimits::default()).unwrap_err();
        assert!(err.to_string().contains(want), "{err}");
        assert!(err.to_string().starts_with("triggers.t: "), "{err}");
    }
    let configs = BTreeMap::from([(
        "t".to_owned(),
        TriggerConfig { pattern: Some("x".into()), ..Default::default() },
    )]);
    let err = TriggerEngine::build(&configs, &[], GlobalLimits::default()).unwrap_err();
    assert!(err.to_string().contains("no component can run the analysis hash_executable"));
}
