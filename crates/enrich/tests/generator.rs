//! The IP tracer's scores against the ground truth of `shared/data/gen_authlog.py --summary`:
//! every fast brute-force attacker scores 70 or more (and is block-listed, with a ban request),
//! legitimate users score under 30, and every swept subnet is reported as a sweep.

use std::{
    io::{BufRead, BufReader},
    net::IpAddr,
    path::{Path, PathBuf},
    process::Command,
    sync::Arc,
};

use serde_json::Value;
use vigil_core::{Enricher, enrich_with};
use vigil_enrich::ip::{IpTracerConfig, canonical};
use vigil_event::{Event, Payload};
use vigil_parse::{Clock, Format, parse_ip};

fn shared_data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data")
}

/// Runs the generator into `dir`; returns the log and the summary.
fn generate(dir: &Path, lines: u32, seed: u32) -> (PathBuf, Value) {
    let log = dir.join("auth.log");
    let summary = dir.join("summary.json");
    #[allow(clippy::disallowed_methods)] // The generator is a Python script; no shell involved.
    let status = Command::new("python3")
        .arg(shared_data().join("gen_authlog.py"))
        .args(["--lines", &lines.to_string(), "--seed", &seed.to_string()])
        .arg("-o")
        .arg(&log)
        .arg("--summary")
        .arg(&summary)
        .status()
        .expect("python3 runs (scripts/test installs it)");
    assert!(status.success(), "gen_authlog.py failed");
    let summary = serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap();
    (log, summary)
}

fn ips(value: &Value) -> Vec<IpAddr> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|it| canonical(parse_ip(it.as_str().unwrap()).unwrap()))
        .collect()
}

#[test]
fn scores_match_the_generated_scenarios() {
    let dir = tempfile::tempdir().unwrap();
    let (log, summary) = generate(dir.path(), 100_000, 1);
    let tracer = Arc::new(IpTracerConfig::default().build_always().unwrap());
    let chain: Vec<Arc<dyn Enricher>> = vec![tracer.clone()];
    let parser = Format::Auto.parser(Clock::utc_at("2026-11-23T12:00:00Z".parse().unwrap()));
    let mut bans = Vec::new();
    let mut enriched = 0;
    let mut seen = std::collections::BTreeSet::new();
    for line in BufReader::new(std::fs::File::open(&log).unwrap()).lines() {
        let line = line.unwrap();
        let Some(parsed) = parser.parse_line(&line) else { continue };
        seen.extend(parsed.ip.map(canonical));
        let mut event = Event::new("test", "files.auth", Payload::Log(parsed));
        for extra in enrich_with(&chain, &mut event) {
            let Payload::Ban(ban) = extra.payload else { panic!("not a ban request") };
            bans.push(ban);
        }
        if let Some(trace) = &event.enrichment.trace {
            assert_eq!(trace.tracers_used().collect::<Vec<_>>(), ["ip"]);
            assert!(event.enrichment.fields.contains_key("threat_score"));
            enriched += 1;
        }
    }
    assert!(enriched > 50_000, "{enriched} events enriched");

    let fast = ips(&summary["attackers"]["bruteforce_fast"]);
    assert!(fast.len() >= 10, "{} fast attackers", fast.len());
    for ip in &fast {
        let report = tracer.report(*ip).expect("every attacker was seen");
        assert!(report.score >= 70, "fast attacker {ip}: {report:#?}");
        assert!(report.blocklisted, "{ip}");
        assert!(!report.score_reasons.is_empty());
        let ban = bans.iter().find(|it| it.ip == ip.to_string()).expect("a ban was requested");
        assert_eq!(ban.jail, "ip_tracer");
        assert_eq!(ban.stage, vigil_event::BanStage::Requested);
        assert!(ban.evidence.rule.contains(">= 70"), "{}", ban.evidence.rule);
        assert!(ban.evidence.data["score_reasons"].as_array().is_some_and(|it| !it.is_empty()));
    }
    let legit = ips(&summary["legit_ips"]);
    assert!(!legit.is_empty());
    for ip in &legit {
        let report = tracer.report(*ip).unwrap_or_else(|| tracer.empty_report(*ip));
        assert!(report.score < 30, "legitimate {ip}: {report:#?}");
        assert!(!report.blocklisted);
        assert!(bans.iter().all(|it| it.ip != ip.to_string()), "{ip} must not be banned");
    }
    let patterns = tracer.patterns(20);
    let sweeps: Vec<&str> = patterns.sweeps.iter().map(|it| it.subnet.as_str()).collect();
    let mut detected = 0;
    for prefix in summary["subnet_sweep_prefix"].as_array().unwrap() {
        // A sweep cut off by the end of the log may have reached too few addresses yet.
        let cidr: vigil_enrich::ip::Cidr = prefix.as_str().unwrap().parse().unwrap();
        let reached = seen.iter().filter(|ip| cidr.contains(**ip)).count();
        if reached >= 8 {
            assert!(sweeps.contains(&prefix.as_str().unwrap()), "{prefix} not in {sweeps:?}");
            detected += 1;
        }
    }
    assert!(detected >= 3, "{detected} sweeps detected");
    // Single-shot noise scanners are spread over the whole address space: no false sweep.
    assert!(sweeps.len() <= summary["subnet_sweep_prefix"].as_array().unwrap().len() + 2);
    // Every block-listed address is in the reputation export, and every request was unique.
    let export = tracer.reputation(70);
    assert_eq!(export.len() as u64, tracer.stats().blocklisted);
    assert_eq!(bans.len() as u64, tracer.stats().blocklisted);
}

#[test]
fn one_million_distinct_addresses_stay_within_the_budget() {
    let config =
        IpTracerConfig { max_addresses: 50_000, max_subnets: 10_000, ..Default::default() };
    let tracer = config.build_always().unwrap();
    let start: chrono::DateTime<chrono::Utc> = "2026-11-23T00:00:00Z".parse().unwrap();
    for n in 0..1_000_000u32 {
        // 1,000,000 distinct public addresses (11.0.0.0 onwards), one failure each.
        let ip = IpAddr::V4((0x0B00_0000 + (n.wrapping_mul(2_654_435_761) & 0x00FF_FFFF)).into());
        let at = start + chrono::Duration::milliseconds(i64::from(n));
        tracer.observe(ip, Some("failed_password"), at, None);
    }
    let stats = tracer.stats();
    assert!(stats.addresses <= 50_000, "{stats:?}");
    assert!(stats.subnets <= 10_000, "{stats:?}");
    assert!(stats.evictions >= 950_000, "{stats:?}");
    assert!(stats.subnet_evictions > 0, "{stats:?}");
    // The most recent addresses are still known.
    let last = 0x0B00_0000 + (999_999u32.wrapping_mul(2_654_435_761) & 0x00FF_FFFF);
    assert!(tracer.report(IpAddr::V4(last.into())).is_some());
}

#[test]
fn the_host_itself_multicast_and_allow_listed_addresses_are_never_block_listed() {
    let config = IpTracerConfig { allowlist: vec!["198.51.100.0/24".into()], ..Default::default() };
    let tracer = config.build_always().unwrap();
    let at: chrono::DateTime<chrono::Utc> = "2026-11-23T00:00:00Z".parse().unwrap();
    for text in [
        "127.0.0.1",
        "::1",
        "::ffff:127.0.0.1",
        "224.0.0.1",
        "ff02::1",
        "255.255.255.255",
        "198.51.100.7",
        "203.0.113.9",
    ] {
        let ip: IpAddr = text.parse().unwrap();
        let mut last = None;
        for n in 0..50 {
            last = Some(tracer.observe(
                ip,
                Some("failed_password"),
                at + chrono::Duration::seconds(n),
                None,
            ));
        }
        let last = last.unwrap();
        assert!(last.score >= 70, "{text}: {last:?}");
        assert_eq!(last.blocklisted, text == "203.0.113.9", "{text}: {last:?}");
    }
    assert!(tracer.report("198.51.100.7".parse().unwrap()).unwrap().allowlisted);
    assert_eq!(tracer.stats().blocklisted, 1);
}
