//! Multi-line records on real files: a Python traceback leaves the tailer as one record whose
//! origin covers all its lines; a held record is never checkpointed, so after a restart it is
//! read and joined again; a cut by the timeout is kept across a restart; and a model-based test
//! writes random plain lines and tracebacks in random chunks with restarts in between and checks
//! the records delivered equal the records written, each exactly once.

use proptest::prelude::*;
use vigil_parse::multiline::{Joiner, PythonRecords};
use vigil_tail::{JoinerFactory, LineJoiner};

use super::*;

fn python() -> JoinerFactory {
    Arc::new(|| {
        let mut rule = PythonRecords::new();
        Box::new(move |line: &str, held: bool| rule.continues(line, held)) as Box<dyn LineJoiner>
    })
}

fn joining(dir: &Path, timeout: Duration) -> TailConfig {
    TailConfig {
        inotify: false,
        multiline: "python".into(),
        multiline_timeout: timeout,
        ..config(dir, &["app.log"])
    }
}

/// Starts a joining source; `ack` says whether the consumer acknowledges what it receives.
async fn start_joining(config: &TailConfig, delivered: &Delivered, ack: bool) -> Running {
    let handle = AckHandle::new();
    let source = config
        .build("files.test", Path::new("/nonexistent"), AckMode::External(handle.clone()))
        .unwrap()
        .unwrap()
        .with_joiner(python());
    if ack {
        return start_source(source, handle, delivered).await;
    }
    source.validate().await.unwrap();
    let stats = source.stats_handle();
    let (ctx, mut rx) = SourceContext::for_test("files.test", 64);
    let shutdown = ctx.shutdown.clone();
    let task = tokio::spawn(async move { source.start(ctx).await.unwrap() });
    let sink = delivered.clone();
    let consumer = tokio::spawn(async move {
        while let Some(event) = rx.recv().await {
            let Payload::Log(log) = &event.payload else { panic!("not a log event") };
            let origin = log.origin.clone().unwrap();
            sink.0.lock().unwrap().push(Got {
                stream: origin.stream,
                offset: origin.offset,
                end: origin.end,
                text: log.message.clone(),
            });
        }
    });
    Running { shutdown, task, consumer, stats }
}

const TRACEBACK: &str = "ERROR 2026-11-23 10:00:00,123 log 1 2 Internal Server Error: /orders/42\n\
Traceback (most recent call last):\n  File \"/srv/app/orders/views.py\", line 17, in detail\n    \
order = Order.objects.get(pk=pk)\norders.models.Order.DoesNotExist: no such order\n";

fn checkpoint_offset(dir: &Path) -> u64 {
    let text = fs::read_to_string(dir.join("checkpoints/files.test.json")).unwrap();
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    value["files"][0]["offset"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_traceback_is_one_record_and_a_held_record_is_never_checkpointed() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append(&log, format!("INFO start\n{TRACEBACK}").as_bytes());
    let config = joining(dir.path(), Duration::from_secs(60));
    let delivered = Delivered::default();
    let running = start_joining(&config, &delivered, true).await;
    wait_for_lines(&delivered, &["INFO start"]).await;
    append(&log, b"INFO after\n");
    let record = TRACEBACK.trim_end();
    wait_for_lines(&delivered, &["INFO start", record]).await;
    let got = delivered.all();
    assert_eq!((got[1].offset, got[1].end), (11, 11 + TRACEBACK.len() as u64), "all its lines");
    running.stop().await;
    // `INFO after` is held (a traceback could still follow it): the checkpoint stops before it.
    assert_eq!(checkpoint_offset(dir.path()), 11 + TRACEBACK.len() as u64);

    let running = start_joining(&config, &delivered, true).await;
    append(&log, b"  continued\nINFO last\n");
    wait_for_lines(&delivered, &["INFO start", record, "INFO after\n  continued"]).await;
    running.stop().await;
    assert_eq!(delivered.all().len(), 3, "nothing acknowledged is delivered twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_timeout_sends_a_record_and_its_cut_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let head = "ERROR boom\nTraceback (most recent call last):\n  File \"a.py\", line 1, in f\n";
    append(&log, head.as_bytes());
    // The consumer does not acknowledge: as if the agent died after a store had the record but
    // before the checkpoint moved.
    let delivered = Delivered::default();
    let config = joining(dir.path(), Duration::from_millis(100));
    let running = start_joining(&config, &delivered, false).await;
    wait_for_lines(&delivered, &[head.trim_end()]).await;
    running.stop().await;
    assert_eq!(checkpoint_offset(dir.path()), 0, "nothing was acknowledged");

    // The rest of the traceback comes late; a restart cuts where the timeout cut.
    append(&log, b"ValueError: late\nINFO next\n");
    let config = joining(dir.path(), Duration::from_secs(60));
    let again = Delivered::default();
    let running = start_joining(&config, &again, true).await;
    wait_for_lines(&again, &[head.trim_end(), "ValueError: late"]).await;
    running.stop().await;
    let (first, second) = (&delivered.all()[0], &again.all()[0]);
    assert_eq!((first.offset, first.end), (second.offset, second.end), "the same origin");
    assert_eq!(checkpoint_offset(dir.path()), head.len() as u64 + 17);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_are_bounded_by_lines_and_a_rotated_file_sends_its_last_record() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append(&log, b"start\n  one\n  two\n  three\n  four\n");
    let config =
        TailConfig { multiline_max_lines: 3, ..joining(dir.path(), Duration::from_secs(60)) };
    let delivered = Delivered::default();
    let running = start_joining(&config, &delivered, true).await;
    wait_for_lines(&delivered, &["start\n  one\n  two"]).await;
    // Renamed away: the old file's held record is sent once the file is finished.
    fs::rename(&log, rotated(&log, ".1")).unwrap();
    append(&log, b"new\n");
    wait_for_lines(&delivered, &["start\n  one\n  two", "  three\n  four"]).await;
    running.stop().await;
}

/// One record of the model: a plain line or a (possibly chained) traceback.
#[derive(Debug, Clone)]
enum Record {
    Plain,
    Traceback { frames: usize, chained: bool },
}

#[derive(Debug, Clone)]
enum Step {
    Write(Record),
    /// Flush this many bytes of what was written so far (a chunk boundary anywhere).
    Flush(usize),
    Restart,
}

fn step() -> impl Strategy<Value = Step> {
    let record = prop_oneof![
        3 => Just(Record::Plain),
        2 => (1..4usize, proptest::bool::weighted(0.3))
            .prop_map(|(frames, chained)| Record::Traceback { frames, chained }),
    ];
    prop_oneof![
        4 => record.prop_map(Step::Write),
        3 => (1..120usize).prop_map(Step::Flush),
        1 => Just(Step::Restart),
    ]
}

fn render(n: usize, record: &Record) -> String {
    match *record {
        Record::Plain => format!("INFO {n:04} plain line\n"),
        Record::Traceback { frames, chained } => {
            let mut text = format!("ERROR {n:04} failed\n");
            let traceback = |text: &mut String, kind: &str| {
                text.push_str("Traceback (most recent call last):\n");
                for f in 0..frames {
                    text.push_str(&format!("  File \"m{f}.py\", line {f}, in f{f}\n    f{f}()\n"));
                }
                text.push_str(&format!("{kind}: record {n}\n"));
            };
            traceback(&mut text, "ValueError");
            if chained {
                text.push_str(
                    "\nDuring handling of the above exception, another exception occurred:\n\n",
                );
                traceback(&mut text, "RuntimeError");
            }
            text
        }
    }
}

async fn run_model(steps: Vec<Step>) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    fs::File::create(&log).unwrap();
    let config = joining(dir.path(), Duration::from_secs(60));
    let delivered = Delivered::default();
    let mut running = Some(start_joining(&config, &delivered, true).await);
    let mut text = String::new();
    let mut flushed = 0;
    for (n, step) in steps.iter().enumerate() {
        match step {
            Step::Write(record) => text.push_str(&render(n, record)),
            Step::Flush(bytes) => {
                let to = (flushed + bytes).min(text.len());
                append(&log, &text.as_bytes()[flushed..to]);
                flushed = to;
            }
            Step::Restart => {
                if let Some(it) = running.take() {
                    it.stop().await;
                }
                running = Some(start_joining(&config, &delivered, true).await);
            }
        }
    }
    // A last line ends the last record (it stays held itself).
    text.push_str("END\n");
    append(&log, &text.as_bytes()[flushed..]);
    let mut joiner = Joiner::default();
    let mut expected: Vec<String> = text.lines().filter_map(|it| joiner.push(it)).collect();
    assert_eq!(joiner.finish().as_deref(), Some("END"));
    wait_until(&format!("{} records", expected.len()), || {
        delivered.unique().len() >= expected.len()
    })
    .await;
    if let Some(it) = running.take() {
        it.stop().await;
    }
    let got: Vec<String> = delivered.unique().into_iter().map(|it| it.text).collect();
    expected.retain(|it| !it.is_empty());
    assert_eq!(got, expected);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn joined_records_are_delivered_exactly_once_whatever_the_chunks_and_restarts(
        steps in proptest::collection::vec(step(), 1..40)
    ) {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(run_model(steps));
    }
}
