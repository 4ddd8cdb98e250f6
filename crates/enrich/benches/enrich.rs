//! What enrichment costs on the agent's hot path: parsing 1,000,000 generated auth.log lines
//! into events alone, against parsing plus the IP and event tracers (the defaults for sshd
//! events); and the memory of the IP tracer's state fed 1,000,000 distinct addresses.
//!
//! `bench/enrich.sh` generates the log and runs this; by hand:
//! `cargo bench -p vigil-enrich --bench enrich -- LOG` and `… -- --memory`. Events go through
//! the tracers by batches of 512, as the runtime's enrichment stage applies them to the tailer's
//! batches; `VIGIL_BENCH_EACH=1` applies them event by event instead, `VIGIL_BENCH_CHAIN=ip`
//! or `=event` runs one tracer alone, and `=none` none (both passes parse alone: the baseline
//! for `perf stat` counts).

use std::{
    hint::black_box,
    io::{BufRead, BufReader},
    net::IpAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use vigil_core::{Enricher, enrich_batch_with, enrich_with};
use vigil_enrich::{event::EventTracerConfig, ip::IpTracerConfig};
use vigil_event::{Event, Payload};
use vigil_parse::{Clock, Format};

fn rss_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|it| it.starts_with(field))
        .and_then(|it| it.split_whitespace().nth(1))
        .and_then(|it| it.parse().ok())
        .unwrap_or(0)
}

fn memory() {
    let before = rss_kib("VmRSS:");
    let config = IpTracerConfig::default();
    let tracer = config.build_always().unwrap();
    let start: chrono::DateTime<chrono::Utc> = "2026-11-23T00:00:00Z".parse().unwrap();
    let began = Instant::now();
    for n in 0..1_000_000u32 {
        let ip = IpAddr::V4((0x0B00_0000 + (n.wrapping_mul(2_654_435_761) & 0x00FF_FFFF)).into());
        tracer.observe(
            ip,
            Some("failed_password"),
            start + chrono::Duration::milliseconds(n.into()),
            None,
        );
    }
    let elapsed = began.elapsed();
    let stats = tracer.stats();
    let after = rss_kib("VmRSS:");
    let peak = rss_kib("VmHWM:");
    println!(
        "ip tracer, 1,000,000 distinct addresses: {:.0} ns/address; addresses held {} (capacity {}), \
         evictions {}, subnets {} (evictions {}); RSS {before} KiB before, {after} KiB after \
         (+{} KiB), peak {peak} KiB",
        elapsed.as_nanos() as f64 / 1e6,
        stats.addresses,
        stats.capacity,
        stats.evictions,
        stats.subnets,
        stats.subnet_evictions,
        after.saturating_sub(before),
    );
}

fn lines(path: &str) -> Vec<String> {
    let file = std::fs::File::open(path).unwrap_or_else(|err| panic!("cannot read {path}: {err}"));
    BufReader::new(file).lines().map_while(Result::ok).collect()
}

/// Events per batch: what the tailer's source sends at most per `send_batch` (the runtime's
/// enrichment stage applies each tracer to a whole batch).
const BATCH: usize = 512;

/// Parses every line into an event (what the tailer's decoder and the source do), by batches of
/// [`BATCH`], then applies `chain` to each batch as the runtime's enrichment stage does (or, with
/// `VIGIL_BENCH_EACH=1`, event by event with `enrich_with`); returns the time and the number of
/// events.
fn pass(lines: &[String], chain: &[Arc<dyn Enricher>]) -> (Duration, Duration, usize) {
    let clock = Clock::utc_at("2026-11-23T00:00:00Z".parse().unwrap());
    let parser = Format::Auto.parser(clock);
    let host: Arc<str> = "bench".into();
    let source: Arc<str> = "files.auth".into();
    let each = std::env::var_os("VIGIL_BENCH_EACH").is_some();
    let began = Instant::now();
    let cpu = thread_cpu();
    let mut events = 0;
    let mut batch: Vec<Event> = Vec::with_capacity(BATCH);
    for chunk in lines.chunks(BATCH) {
        for line in chunk {
            let Some(log) = parser.parse_line(line) else { continue };
            let mut event = Event::new(host.clone(), source.clone(), Payload::Log(log));
            if each && !chain.is_empty() {
                black_box(enrich_with(chain, &mut event));
            }
            batch.push(event);
        }
        if !each && !chain.is_empty() {
            let mut refs: Vec<&mut Event> = batch.iter_mut().collect();
            black_box(enrich_batch_with(chain, &mut refs));
        }
        events += batch.len();
        black_box(&batch);
        batch.clear();
    }
    (began.elapsed(), thread_cpu().saturating_sub(cpu), events)
}

/// The CPU time of this thread: unlike the wall clock, it does not count the time other
/// processes of a loaded machine held the CPU.
fn thread_cpu() -> Duration {
    let it = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(it.tv_sec as u64, it.tv_nsec as u32)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|it| it != "--bench").collect();
    if args.iter().any(|it| it == "--memory") {
        memory();
        return;
    }
    let Some(path) = args.first() else {
        eprintln!("usage: cargo bench -p vigil-enrich --bench enrich -- LOG | --memory");
        std::process::exit(2);
    };
    let lines = lines(path);
    let mut base = Duration::MAX;
    let mut enriched = Duration::MAX;
    let mut base_cpu = Duration::MAX;
    let mut enriched_cpu = Duration::MAX;
    let mut count = 0;
    // Alternate the two passes and keep the best of each: the machine is shared and noisy.
    for _ in 0..5 {
        let (time, cpu, n) = pass(&lines, &[]);
        base = base.min(time);
        base_cpu = base_cpu.min(cpu);
        count = n;
        // Fresh tracers each round: the state grows as it would in the agent.
        let ip = IpTracerConfig::default().build_always().unwrap();
        let event = EventTracerConfig::default().build_always();
        let only = std::env::var("VIGIL_BENCH_CHAIN").unwrap_or_default();
        let mut chain: Vec<Arc<dyn Enricher>> = Vec::new();
        if only != "event" && only != "none" {
            chain.push(Arc::new(ip));
        }
        if only != "ip" && only != "none" {
            chain.push(Arc::new(event));
        }
        let (time, cpu, _) = pass(&lines, &chain);
        enriched = enriched.min(time);
        enriched_cpu = enriched_cpu.min(cpu);
    }
    let per = |it: Duration| it.as_nanos() as f64 / count as f64;
    println!(
        "{} lines, {count} events; parse alone {:.3} s ({:.0} ns/event); parse + ip + event tracers \
         {:.3} s ({:.0} ns/event); overhead {:.1} % (best of 5)",
        lines.len(),
        base.as_secs_f64(),
        per(base),
        enriched.as_secs_f64(),
        per(enriched),
        (enriched.as_secs_f64() / base.as_secs_f64() - 1.0) * 100.0
    );
    println!(
        "thread CPU time: parse alone {:.0} ns/event, parse + tracers {:.0} ns/event, tracers \
         {:.0} ns/event, overhead {:.1} % (best of 5)",
        per(base_cpu),
        per(enriched_cpu),
        per(enriched_cpu) - per(base_cpu),
        (enriched_cpu.as_secs_f64() / base_cpu.as_secs_f64() - 1.0) * 100.0
    );
}
