//! Sustained ingestion of parsed sshd events into SQLite, through the library API that the
//! agent's store listener and `vigil replay --store` use (`SqliteStore::write`).
//!
//! 100,000 auth.log lines (failed passwords, invalid users, accepted logins from varied
//! addresses) are parsed once with vigil-parse's sshd parser into log events with an origin
//! (stream + offset, as the tailer sets it); each iteration writes them in batches of 10,000
//! into a fresh database file (one transaction per batch, WAL, `synchronous = full` and
//! `normal`). Throughput is events per second. Run with
//! `cargo bench -p vigil-store --bench ingest`.

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use vigil_event::{Event, LineOrigin, Payload};
use vigil_parse::{Clock, Format};
use vigil_store::sqlite::{SqliteOptions, SqliteStore, Synchronous};

const LINES: usize = 100_000;
const BATCH: usize = 10_000;

fn lines() -> Vec<String> {
    let users = ["root", "admin", "ubuntu", "oracle", "git", "postgres", "test", "deploy"];
    (0..LINES)
        .map(|n| {
            let ip = format!("{}.{}.{}.{}", 11 + n % 200, (n / 7) % 256, (n / 13) % 256, n % 251);
            let user = users[n % users.len()];
            let (h, m, s) = ((n / 3600) % 24, (n / 60) % 60, n % 60);
            let pid = 1000 + n % 30_000;
            let port = 1024 + n % 60_000;
            match n % 4 {
                0 | 1 => format!(
                    "Nov 23 {h:02}:{m:02}:{s:02} web-1 sshd[{pid}]: Failed password for {user} from {ip} port {port} ssh2"
                ),
                2 => format!(
                    "Nov 23 {h:02}:{m:02}:{s:02} web-1 sshd[{pid}]: Invalid user {user}x from {ip} port {port}"
                ),
                _ => format!(
                    "Nov 23 {h:02}:{m:02}:{s:02} web-1 sshd[{pid}]: Accepted publickey for {user} from {ip} port {port} ssh2: RSA SHA256:abc"
                ),
            }
        })
        .collect()
}

fn events() -> Vec<Event> {
    let parser = Format::Sshd.parser(Clock::default());
    let mut offset = 0u64;
    lines()
        .iter()
        .map(|line| {
            let mut log = parser.parse_line(line).expect("a generated sshd line parses");
            let end = offset + line.len() as u64 + 1;
            log.origin =
                Some(LineOrigin { stream: "file:2049:131:9f2c4e1ab07d55e3".into(), offset, end });
            log.raw = Some(line.clone());
            offset = end;
            Event::new("web-1", "files.auth", Payload::Log(log))
        })
        .collect()
}

/// CPU time of this thread: with `VIGIL_BENCH_CPU=1` the bench reports rows per CPU-second,
/// which other processes on a shared machine disturb much less than wall-clock time.
fn thread_cpu() -> Duration {
    let it = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(it.tv_sec as u64, it.tv_nsec as u32)
}

fn ingest(c: &mut Criterion) {
    let events = events();
    let mut group = c.benchmark_group("sqlite_ingest");
    group.throughput(Throughput::Elements(LINES as u64));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    for synchronous in [Synchronous::Full, Synchronous::Normal] {
        let name = format!("parsed_sshd_batch_{BATCH}_{synchronous:?}").to_lowercase();
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let dir = tempfile::tempdir().expect("a temporary directory");
                    let options = SqliteOptions { synchronous, ..SqliteOptions::default() };
                    let mut store =
                        SqliteStore::open_with(dir.path().join("vigil.db"), options).expect("open");
                    let start = Instant::now();
                    let cpu = thread_cpu();
                    for batch in events.chunks(BATCH) {
                        store.write(batch).expect("write");
                    }
                    total += if std::env::var_os("VIGIL_BENCH_CPU").is_some() {
                        thread_cpu() - cpu
                    } else {
                        start.elapsed()
                    };
                }
                total
            });
        });
    }
    group.finish();
}

criterion_group!(benches, ingest);
criterion_main!(benches);
