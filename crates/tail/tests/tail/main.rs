//! The tailer on real files in temporary directories: every kind of rotation, restarts from the
//! checkpoint, rotated files read first, long and invalid lines, globs, and a model-based test
//! that checks every written line is delivered exactly once, in order, whatever happens.

use std::{
    collections::HashMap,
    fs::{self, OpenOptions},
    io::Write,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use vigil_core::{EventSource, SourceContext, event::Payload};
use vigil_tail::{AckHandle, AckMode, StartAt, TailConfig, TailSource, TailStatsHandle};

mod model;
mod multiline;

/// One delivered line: its origin and text.
#[derive(Debug, Clone, PartialEq)]
struct Got {
    stream: String,
    offset: u64,
    end: u64,
    text: String,
}

/// A tail source running on its own, with a consumer that records and acknowledges every line.
struct Running {
    shutdown: vigil_core::CancellationToken,
    task: tokio::task::JoinHandle<()>,
    consumer: tokio::task::JoinHandle<()>,
    stats: TailStatsHandle,
}

impl Running {
    async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.unwrap();
        self.consumer.await.unwrap();
    }
}

/// What every run of a test has delivered so far.
#[derive(Clone, Default)]
struct Delivered(Arc<Mutex<Vec<Got>>>);

impl Delivered {
    fn all(&self) -> Vec<Got> {
        self.0.lock().unwrap().clone()
    }

    fn texts(&self) -> Vec<String> {
        self.all().into_iter().map(|it| it.text).collect()
    }

    /// Delivered lines with repeats of one origin (re-reads after a restart) removed; panics if
    /// one origin was delivered with two texts.
    fn unique(&self) -> Vec<Got> {
        let mut seen: HashMap<(String, u64), String> = HashMap::new();
        let mut out = Vec::new();
        for it in self.all() {
            match seen.get(&(it.stream.clone(), it.offset)) {
                Some(text) => assert_eq!(text, &it.text, "one origin, two texts"),
                None => {
                    seen.insert((it.stream.clone(), it.offset), it.text.clone());
                    out.push(it);
                }
            }
        }
        out
    }
}

fn config(dir: &Path, paths: &[&str]) -> TailConfig {
    TailConfig {
        paths: paths.iter().map(|it| dir.join(it).to_string_lossy().into_owned()).collect(),
        poll_interval: Duration::from_millis(10),
        start_at: StartAt::Beginning,
        checkpoint_dir: Some(dir.join("checkpoints")),
        ..TailConfig::default()
    }
}

/// Starts a source from `config` (from its checkpoint, if any) acknowledging every line it
/// receives through an external handle.
async fn start(config: &TailConfig, delivered: &Delivered) -> Running {
    let ack = AckHandle::new();
    let source = config
        .build("files.test", Path::new("/nonexistent"), AckMode::External(ack.clone()))
        .unwrap()
        .unwrap();
    start_source(source, ack, delivered).await
}

async fn start_source(source: TailSource, ack: AckHandle, delivered: &Delivered) -> Running {
    source.validate().await.unwrap();
    let stats = source.stats_handle();
    let (ctx, mut rx) = SourceContext::for_test("files.test", 64);
    let shutdown = ctx.shutdown.clone();
    let task = tokio::spawn(async move { source.start(ctx).await.unwrap() });
    let sink = delivered.clone();
    let consumer = tokio::spawn(async move {
        while let Some(event) = rx.recv().await {
            let Payload::Log(log) = &event.payload else { panic!("not a log event: {event:?}") };
            let origin = log.origin.clone().expect("the tailer fills the origin");
            assert_eq!(log.raw.as_deref(), Some(log.message.as_str()));
            // Acknowledged before it counts as delivered, so a test that saw a line and stops
            // the source knows the acknowledgement was given.
            assert!(ack.ack_event(&event), "a line just sent is in flight");
            sink.0.lock().unwrap().push(Got {
                stream: origin.stream.clone(),
                offset: origin.offset,
                end: origin.end,
                text: log.message.clone(),
            });
        }
    });
    Running { shutdown, task, consumer, stats }
}

/// Waits (bounded) until `done` holds.
async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < Duration::from_secs(20), "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn wait_for_lines(delivered: &Delivered, expected: &[&str]) {
    wait_until(&format!("{expected:?}"), || delivered.unique().len() >= expected.len()).await;
    let got: Vec<String> = delivered.unique().into_iter().map(|it| it.text).collect();
    assert_eq!(got, expected);
}

fn append(path: &Path, bytes: &[u8]) {
    let mut file = OpenOptions::new().create(true).append(true).open(path).unwrap();
    file.write_all(bytes).unwrap();
}

fn rotated(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn copy_truncate(path: &Path) {
    fs::copy(path, rotated(path, ".1")).unwrap();
    OpenOptions::new().write(true).open(path).unwrap().set_len(0).unwrap();
}

fn gzip(path: &Path, to: &Path) {
    let bytes = fs::read(path).unwrap();
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(&bytes).unwrap();
    fs::write(to, enc.finish().unwrap()).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_by_rename_copytruncate_and_recreate_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append(&log, b"one\n");
    let delivered = Delivered::default();
    let run = start(&config(dir.path(), &["app.log"]), &delivered).await;
    wait_for_lines(&delivered, &["one"]).await;

    // Rename: the old file's unterminated last line is delivered as it is once the file is
    // finished, before the lines of the new file.
    append(&log, b"two\nthree");
    fs::rename(&log, rotated(&log, ".1")).unwrap();
    append(&log, b"four\n");
    wait_for_lines(&delivered, &["one", "two", "three", "four"]).await;

    // Copy and truncate before the tailer read the last lines: they come from the copy.
    append(&log, b"five\nsix\n");
    copy_truncate(&log);
    append(&log, b"seven\n");
    wait_for_lines(&delivered, &["one", "two", "three", "four", "five", "six", "seven"]).await;

    // Delete and recreate.
    append(&log, b"eight\n");
    fs::remove_file(&log).unwrap();
    append(&log, b"nine\n");
    wait_for_lines(
        &delivered,
        &["one", "two", "three", "four", "five", "six", "seven", "eight", "nine"],
    )
    .await;
    let stats = run.stats.snapshot();
    assert!(stats.rotations >= 3, "{stats:?}");
    assert_eq!(stats.lines_read, 9, "{stats:?}");
    run.stop().await;
    assert_eq!(delivered.all().len(), 9, "nothing delivered twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_restart_lines_in_the_rotated_file_are_read_first() {
    for compressed in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("auth.log");
        append(&log, b"before 1\n");
        let delivered = Delivered::default();
        let cfg = config(dir.path(), &["auth.log"]);
        let run = start(&cfg, &delivered).await;
        wait_for_lines(&delivered, &["before 1"]).await;
        run.stop().await;

        // While the agent is down: more lines, a rotation, lines in the new file.
        append(&log, b"down 1\ndown 2\n");
        fs::rename(&log, rotated(&log, ".1")).unwrap();
        if compressed {
            gzip(&rotated(&log, ".1"), &rotated(&log, ".1.gz"));
            fs::remove_file(rotated(&log, ".1")).unwrap();
        }
        append(&log, b"after 1\n");

        let run = start(&cfg, &delivered).await;
        wait_for_lines(&delivered, &["before 1", "down 1", "down 2", "after 1"]).await;
        run.stop().await;
        assert_eq!(delivered.all().len(), 4, "compressed={compressed}: nothing twice");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copytruncate_while_down_is_recovered_from_the_copy() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append(&log, b"a\n");
    let delivered = Delivered::default();
    let cfg = config(dir.path(), &["app.log"]);
    let run = start(&cfg, &delivered).await;
    wait_for_lines(&delivered, &["a"]).await;
    run.stop().await;
    append(&log, b"b\n");
    copy_truncate(&log);
    append(&log, b"c\n");
    let run = start(&cfg, &delivered).await;
    wait_for_lines(&delivered, &["a", "b", "c"]).await;
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reused_inode_with_new_content_is_read_from_its_start() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append(&log, b"old content line\n");
    let delivered = Delivered::default();
    let cfg = config(dir.path(), &["app.log"]);
    let run = start(&cfg, &delivered).await;
    wait_for_lines(&delivered, &["old content line"]).await;
    run.stop().await;
    // Same device and inode, other bytes, longer than the checkpoint: only the fingerprint can
    // tell it is another file.
    fs::write(&log, b"NEW 1\nNEW 2 is a longer line\n").unwrap();
    let run = start(&cfg, &delivered).await;
    wait_for_lines(&delivered, &["old content line", "NEW 1", "NEW 2 is a longer line"]).await;
    let streams: Vec<String> = delivered.all().into_iter().map(|it| it.stream).collect();
    assert_ne!(streams[0], streams[1], "another file instance, another stream");
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_lines_wait_long_lines_are_cut_and_bad_utf8_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    fs::write(&log, b"").unwrap();
    let delivered = Delivered::default();
    let cfg = TailConfig { max_line_bytes: 8, ..config(dir.path(), &["app.log"]) };
    let run = start(&cfg, &delivered).await;
    append(&log, b"abc");
    wait_until("the partial line to be read", || run.stats.snapshot().bytes_read == 3).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(delivered.all().is_empty(), "a partial line waits for its newline");
    append(&log, b"def\n0123456789abcdef\nok\xff\n");
    wait_for_lines(&delivered, &["abcdef", "01234567", "ok\u{fffd}"]).await;
    let got = delivered.all();
    assert_eq!((got[1].offset, got[1].end), (7, 24), "the origin spans the whole line");
    let stats = run.stats.snapshot();
    assert_eq!(
        (stats.lines_read, stats.lines_truncated, stats.lines_invalid_utf8, stats.bytes_read),
        (3, 1, 1, 28)
    );
    assert_eq!(stats.files_watched, 1);
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn globs_pick_up_new_files_and_start_at_end_skips_old_lines() {
    let dir = tempfile::tempdir().unwrap();
    append(&dir.path().join("a.log"), b"old a\n");
    append(&dir.path().join("skip.log"), b"excluded\n");
    let delivered = Delivered::default();
    let cfg = TailConfig {
        start_at: StartAt::End,
        exclude: vec![dir.path().join("skip*").to_string_lossy().into_owned()],
        ..config(dir.path(), &["*.log"])
    };
    let run = start(&cfg, &delivered).await;
    wait_until("a.log to be watched", || run.stats.snapshot().files_watched == 1).await;
    append(&dir.path().join("a.log"), b"new a\n");
    wait_for_lines(&delivered, &["new a"]).await;
    // A file created while running is read from its start.
    append(&dir.path().join("b.log"), b"first b\n");
    append(&dir.path().join("skip.log"), b"still excluded\n");
    wait_for_lines(&delivered, &["new a", "first b"]).await;
    run.stop().await;

    // After a restart, a file created while down is read from its start too.
    append(&dir.path().join("c.log"), b"first c\n");
    let run = start(&cfg, &delivered).await;
    wait_for_lines(&delivered, &["new a", "first b", "first c"]).await;
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_checkpoint_advances_only_with_acknowledgements() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append(&log, b"1\n2\n3\n");
    let cfg = config(dir.path(), &["app.log"]);
    // A downstream that never acknowledges: every run reads everything again.
    let ack = AckHandle::new();
    let source = cfg.build("files.test", dir.path(), AckMode::External(ack)).unwrap().unwrap();
    source.validate().await.unwrap();
    let (ctx, mut rx) = SourceContext::for_test("files.test", 64);
    let shutdown = ctx.shutdown.clone();
    let task = tokio::spawn(async move { source.start(ctx).await });
    for _ in 0..3 {
        rx.recv().await.unwrap();
    }
    shutdown.cancel();
    task.await.unwrap().unwrap();
    let checkpoint = fs::read_to_string(dir.path().join("checkpoints/files.test.json")).unwrap();
    assert!(checkpoint.contains("\"offset\": 0"), "{checkpoint}");

    // A torn temporary file from a crash does not confuse the next run.
    fs::write(dir.path().join("checkpoints/files.test.json.tmp"), b"{\"vers").unwrap();
    let delivered = Delivered::default();
    let run = start(&cfg, &delivered).await;
    wait_for_lines(&delivered, &["1", "2", "3"]).await;
    run.stop().await;
    let checkpoint = fs::read_to_string(dir.path().join("checkpoints/files.test.json")).unwrap();
    assert!(checkpoint.contains("\"offset\": 6"), "{checkpoint}");
    let delivered_again = Delivered::default();
    let run = start(&cfg, &delivered_again).await;
    append(&log, b"4\n");
    wait_for_lines(&delivered_again, &["4"]).await;
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_publish_acknowledges_what_the_bus_accepted_and_in_flight_lines_are_capped() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let body: String = (0..100).map(|it| format!("line {it}\n")).collect();
    append(&log, body.as_bytes());
    // External acknowledgement, never given, with a cap of 10 lines in flight.
    let cfg = TailConfig { max_in_flight_lines: 10, ..config(dir.path(), &["app.log"]) };
    let source =
        cfg.build("files.test", dir.path(), AckMode::External(AckHandle::new())).unwrap().unwrap();
    let stats = source.stats_handle();
    let (ctx, mut rx) = SourceContext::for_test("files.test", 1000);
    let shutdown = ctx.shutdown.clone();
    let task = tokio::spawn(async move { source.start(ctx).await });
    wait_until("some lines", || stats.snapshot().lines_read > 0).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut n = 0;
    while rx.try_recv().is_ok() {
        n += 1;
    }
    assert_eq!(n, 10, "reading pauses at the cap");
    shutdown.cancel();
    task.await.unwrap().unwrap();

    // On publish: the checkpoint reaches the end without any acknowledgement.
    let source = TailConfig { max_in_flight_lines: 10, ..cfg.clone() }
        .build("files.pub", dir.path(), AckMode::OnPublish)
        .unwrap()
        .unwrap();
    let (ctx, mut rx) = SourceContext::for_test("files.pub", 1000);
    let shutdown = ctx.shutdown.clone();
    let task = tokio::spawn(async move { source.start(ctx).await });
    for _ in 0..100 {
        rx.recv().await.unwrap();
    }
    let checkpoint = dir.path().join("checkpoints/files.pub.json");
    let end = format!("\"offset\": {}", body.len());
    wait_until("the checkpoint to reach the end", || {
        fs::read_to_string(&checkpoint).is_ok_and(|it| it.contains(&end))
    })
    .await;
    shutdown.cancel();
    task.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decoder_shapes_events_and_skipped_lines_still_advance_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append(&log, b"# comment\nuser=root\n# another\n");
    let cfg = config(dir.path(), &["app.log"]);
    let ack = AckHandle::new();
    let decoder: vigil_tail::Decoder = Arc::new(|ctx: &vigil_tail::LineContext<'_>, line: &str| {
        if line.starts_with('#') {
            return None;
        }
        let log = vigil_core::event::LogEvent {
            action: Some("custom".into()),
            user: line.strip_prefix("user=").map(str::to_owned),
            raw: Some(line.to_owned()),
            ..vigil_core::event::LogEvent::new(format!("parsed:{}", ctx.path.display()), line)
        };
        Some(Payload::Log(log))
    });
    let source = cfg
        .build("files.test", dir.path(), AckMode::External(ack.clone()))
        .unwrap()
        .unwrap()
        .with_decoder(decoder);
    let delivered = Delivered::default();
    let run = start_source(source, ack, &delivered).await;
    wait_for_lines(&delivered, &["user=root"]).await;
    let got = &delivered.all()[0];
    assert_eq!((got.offset, got.end), (10, 20));
    run.stop().await;
    let checkpoint = fs::read_to_string(dir.path().join("checkpoints/files.test.json")).unwrap();
    assert!(checkpoint.contains("\"offset\": 30"), "skipped lines count as done: {checkpoint}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_checkpoint_rereads_rather_than_loses_and_unconfigured_paths_are_dropped() {
    let dir = tempfile::tempdir().unwrap();
    append(&dir.path().join("a.log"), b"a1\n");
    append(&dir.path().join("b.log"), b"b1\n");
    let delivered = Delivered::default();
    let both = config(dir.path(), &["a.log", "b.log"]);
    let run = start(&both, &delivered).await;
    wait_until("both files", || delivered.all().len() == 2).await;
    run.stop().await;

    // b.log is no longer configured: its checkpoint is not followed any more.
    append(&dir.path().join("a.log"), b"a2\n");
    append(&dir.path().join("b.log"), b"b2\n");
    let only_a = config(dir.path(), &["a.log"]);
    let delivered = Delivered::default();
    let run = start(&only_a, &delivered).await;
    wait_for_lines(&delivered, &["a2"]).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(delivered.texts(), ["a2"]);
    run.stop().await;

    // A checkpoint that cannot be read: everything is read again, and the error is counted.
    fs::write(dir.path().join("checkpoints/files.test.json"), b"{garbage").unwrap();
    let delivered = Delivered::default();
    let run = start(&only_a, &delivered).await;
    wait_for_lines(&delivered, &["a1", "a2"]).await;
    assert_eq!(run.stats.snapshot().errors, 1);
    run.stop().await;
}

#[test]
fn public_handles_are_send_and_sync_and_the_source_declares_its_capabilities() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<AckHandle>();
    send_sync::<AckMode>();
    send_sync::<TailSource>();
    send_sync::<TailStatsHandle>();
    let source = config(Path::new("/tmp"), &["x.log"])
        .build("files.x", Path::new("/tmp"), AckMode::OnPublish)
        .unwrap()
        .unwrap();
    let caps = source.capabilities();
    assert!(caps.contains(vigil_core::SourceCapabilities::LOG));
    assert!(caps.contains(vigil_core::SourceCapabilities::FILESYSTEM));
    assert_eq!(source.name(), "files.x");
}
