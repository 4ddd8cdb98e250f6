//! Bus throughput: one producer publishing to four subscribers with different filters.
//!
//! Events carry a 64-byte log message. The four filters select different shares of the stream:
//! every log event (all), one source (1/2), warning and above (1/4), and one action field value
//! (1/2), so each publish evaluates four filters and pushes into about 2.25 queues. Throughput is
//! reported per *published* event; multiply by 2.25 for deliveries. Run with
//! `cargo bench -p vigil-runtime --bench bus`.

use std::{sync::Arc, time::Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use vigil_core::Filter;
use vigil_event::{Event, EventKind, LogEvent, Payload, Severity};
use vigil_runtime::{Bus, DropPolicy};

const DISTINCT: usize = 65_536;

fn events() -> Vec<Arc<Event>> {
    (0..DISTINCT)
        .map(|n| {
            let message = format!("{n:064}");
            let log = LogEvent {
                action: Some(if n % 2 == 0 { "failed_password" } else { "accepted" }.into()),
                ..LogEvent::new("sshd", message)
            };
            let source = if n % 4 < 2 { "auth" } else { "web" };
            let severity = if n % 4 == 0 { Severity::Warning } else { Severity::Info };
            Arc::new(Event::new("bench-host", source, Payload::Log(log)).with_severity(severity))
        })
        .collect()
}

fn filters() -> [Filter; 4] {
    [
        Filter::any().kinds([EventKind::Log]),
        Filter::any().source("auth"),
        Filter::any().min_severity(Severity::Warning),
        Filter::any().field_eq("action", "failed_password"),
    ]
}

/// Publishes `n` events through a fresh bus and waits until every subscriber has them all.
fn run(
    rt: &tokio::runtime::Runtime,
    events: &[Arc<Event>],
    n: u64,
    policy: DropPolicy,
    batch: usize,
) -> u64 {
    rt.block_on(async {
        let bus = Bus::new(8192, policy);
        let mut consumers = Vec::new();
        for (idx, filter) in filters().into_iter().enumerate() {
            let mut sub = bus.subscribe(&format!("sub{idx}"), filter);
            consumers.push(tokio::spawn(async move {
                let mut buf = Vec::with_capacity(1024);
                let mut got = 0u64;
                while sub.recv_batch(&mut buf, 1024).await {
                    got += buf.len() as u64;
                    buf.clear();
                }
                got
            }));
        }
        let events = events.to_vec();
        let producer_bus = bus.clone();
        tokio::spawn(async move {
            let n = n as usize;
            if batch <= 1 {
                for idx in 0..n {
                    let event = events[idx % DISTINCT].clone();
                    producer_bus.publish_shared(event).await.expect("bus open");
                }
            } else {
                let mut idx = 0;
                while idx < n {
                    let end = (idx + batch).min(n);
                    let chunk = (idx..end).map(|i| events[i % DISTINCT].clone()).collect();
                    producer_bus.publish_batch(chunk).await.expect("bus open");
                    idx = end;
                }
            }
        })
        .await
        .expect("producer");
        bus.close();
        let mut delivered = 0;
        for consumer in consumers {
            delivered += consumer.await.expect("consumer");
        }
        delivered
    })
}

fn bench_bus(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
    let events = events();
    let mut group = c.benchmark_group("bus");
    group.throughput(Throughput::Elements(1));
    let cases = [
        ("block/one_by_one", DropPolicy::Block, 1),
        ("block/batch_256", DropPolicy::Block, 256),
        ("drop_oldest/one_by_one", DropPolicy::DropOldest, 1),
    ];
    for (name, policy, batch) in cases {
        group.bench_function(format!("publish_1_to_4_filtered/{name}"), |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                run(&rt, &events, iters, policy, batch);
                start.elapsed()
            });
        });
    }
    group.finish();

    // Long runs reported in plain numbers, for docs/BENCHMARKS.md; skipped when `cargo test`
    // runs the bench target as a smoke test.
    if !std::env::args().any(|it| it == "--bench") {
        return;
    }
    let n = 20_000_000;
    for batch in [1, 256] {
        let start = Instant::now();
        let delivered = run(&rt, &events, n, DropPolicy::Block, batch);
        let secs = start.elapsed().as_secs_f64();
        println!(
            "bus summary (batch {batch}): published {n} events in {secs:.3} s = {:.0} published/s; \
             {delivered} deliveries = {:.0} delivered/s (block policy, nothing dropped)",
            n as f64 / secs,
            delivered as f64 / secs
        );
    }
}

criterion_group!(benches, bench_bus);
criterion_main!(benches);
