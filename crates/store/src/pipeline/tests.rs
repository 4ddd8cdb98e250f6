//! Tests of the store listener on a real SQLite file: batching, acknowledgement only after
//! commit, retries while the database is locked, the buffer bound, and the gate over several
//! destinations.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use rusqlite::Connection;
use vigil_core::{Filter, Listener};
use vigil_event::{Event, LineOrigin, LogEvent, Payload};

use super::*;
use crate::sqlite::{SqliteOptions, SqliteSink};

fn line(offset: u64) -> Arc<Event> {
    Arc::new(Event::new(
        "web-1",
        "files.auth",
        Payload::Log(LogEvent {
            origin: Some(LineOrigin { stream: "file:1:2:ab".into(), offset, end: offset + 10 }),
            ..LogEvent::new("sshd", format!("line {offset}"))
        }),
    ))
}

fn recorder() -> (Acknowledge, Arc<Mutex<Vec<u64>>>) {
    let acked = Arc::new(Mutex::new(Vec::new()));
    let sink = acked.clone();
    let ack: Acknowledge = Arc::new(move |event: &Event| {
        if let Payload::Log(log) = &event.payload {
            sink.lock().unwrap().push(log.origin.as_ref().unwrap().offset);
        }
    });
    (ack, acked)
}

fn rows(db: &std::path::Path) -> i64 {
    Connection::open(db)
        .unwrap()
        .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
        .unwrap()
}

fn sqlite_listener(db: &std::path::Path, settings: BatchSettings) -> StoreListener {
    let options =
        SqliteOptions { busy_timeout: Duration::from_millis(20), ..SqliteOptions::default() };
    let sink = SqliteSink::new(db.to_path_buf(), options).unwrap();
    StoreListener::new("store.sqlite", Box::new(sink), settings)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_are_acknowledged_only_once_committed() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("vigil.db");
    let (ack, acked) = recorder();
    let gate = AckGate::new(ack);
    let settings = BatchSettings { batch_size: 3, ..BatchSettings::default() };
    let mut listener = sqlite_listener(&db, settings).with_ack(gate.register(Filter::any()));
    listener.handle(&[line(0), line(10)]).await.unwrap();
    assert_eq!(rows(&db), 0, "below the batch size, nothing is written yet");
    assert!(acked.lock().unwrap().is_empty(), "and nothing is acknowledged");
    listener.handle(&[line(20), line(30)]).await.unwrap();
    assert_eq!(rows(&db), 3);
    assert_eq!(*acked.lock().unwrap(), [0, 10, 20]);
    listener.flush().await.unwrap();
    assert_eq!(rows(&db), 4);
    assert_eq!(*acked.lock().unwrap(), [0, 10, 20, 30]);
    let stats = listener.stats();
    assert_eq!(stats.written.load(Ordering::Relaxed), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_database_keeps_events_buffered_within_the_bound_and_loses_none() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("vigil.db");
    let (ack, acked) = recorder();
    let gate = AckGate::new(ack);
    let settings =
        BatchSettings { batch_size: 2, max_buffered_events: 6, ..BatchSettings::default() };
    let mut listener = sqlite_listener(&db, settings).with_ack(gate.register(Filter::any()));
    let lock = Connection::open(&db).unwrap();
    lock.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let err = listener.handle(&[line(0), line(10)]).await.unwrap_err();
    assert!(err.to_string().contains("locked by another process"), "{err}");
    // Within the bound, handle returns at once (in backoff, no attempt) and keeps the events.
    listener.handle(&[line(20), line(30)]).await.unwrap();
    listener.handle(&[line(40), line(50)]).await.unwrap();
    assert!(listener.flush().await.is_err(), "a flush says the events are waiting");
    assert!(acked.lock().unwrap().is_empty());
    assert_eq!(listener.stats().buffered.load(Ordering::Relaxed), 6);
    // Past the bound, handle waits for the database instead of growing.
    let task = tokio::spawn(async move {
        listener.handle(&[line(60)]).await.ok();
        listener
    });
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(!task.is_finished(), "handle waits while the database stays locked");
    lock.execute_batch("COMMIT").unwrap();
    drop(lock);
    let mut listener = tokio::time::timeout(Duration::from_secs(60), task).await.unwrap().unwrap();
    listener.flush().await.unwrap();
    assert_eq!(rows(&db), 7);
    assert_eq!(*acked.lock().unwrap(), [0, 10, 20, 30, 40, 50, 60]);
    assert!(listener.stats().failures.load(Ordering::Relaxed) >= 1);
}

#[test]
fn the_gate_waits_for_every_destination() {
    let (ack, acked) = recorder();
    let gate = AckGate::new(ack);
    let sqlite = gate.register(Filter::any());
    let files = gate.register(Filter::any());
    // A third destination that only takes findings never holds a line back.
    let _findings = gate.register(Filter::any().kinds([vigil_event::EventKind::Finding]));
    let plain = Arc::new(Event::new("h", "s", Payload::Log(LogEvent::new("sshd", "no origin"))));
    sqlite.committed(&[line(0), line(10), plain.clone()]);
    assert!(acked.lock().unwrap().is_empty());
    assert_eq!(gate.pending(), 2);
    files.committed(&[line(0), plain]);
    assert_eq!(*acked.lock().unwrap(), [0]);
    files.committed(&[line(10)]);
    assert_eq!(*acked.lock().unwrap(), [0, 10]);
    files.committed(&[line(20)]);
    files.committed(&[line(20)]);
    assert_eq!(*acked.lock().unwrap(), [0, 10], "one destination twice is not two");
    sqlite.committed(&[line(20)]);
    assert_eq!(*acked.lock().unwrap(), [0, 10, 20]);
    assert_eq!(gate.pending(), 0);
}

#[tokio::test(flavor = "current_thread")]
async fn lines_no_destination_accepts_are_acknowledged_by_the_passthrough() {
    let (ack, acked) = recorder();
    let gate = AckGate::new(ack);
    let only_findings = gate.register(Filter::any().kinds([vigil_event::EventKind::Finding]));
    let mut passthrough = gate.passthrough();
    passthrough.handle(&[line(0), line(10)]).await.unwrap();
    assert_eq!(*acked.lock().unwrap(), [0, 10]);
    // A line a destination accepts waits for it instead.
    let sqlite = gate.register(Filter::any());
    passthrough.handle(&[line(20)]).await.unwrap();
    assert_eq!(*acked.lock().unwrap(), [0, 10]);
    sqlite.committed(&[line(20)]);
    assert_eq!(*acked.lock().unwrap(), [0, 10, 20]);
    drop(only_findings);
    assert!(PassThrough::filter().matches(&line(30)));
}
