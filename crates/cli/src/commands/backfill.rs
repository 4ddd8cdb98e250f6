//! `vigil replay --store`: back-fills the SQLite store from historic files while the replay runs.
//!
//! The replay thread builds one log event per recognised line and hands batches to a writer
//! thread through a bounded channel, so parsing and detection on one core overlap the database
//! writes on the other, and memory stays bounded by the channel. Each line carries the same
//! idempotency key a tailed line does (`stream` + byte `offset`), with the stream named after the
//! file's path and a fingerprint of its first bytes: replaying the same file twice stores every
//! line once. Findings and the dry-run ban decisions are written at the end.

use std::{
    path::{Path, PathBuf},
    sync::{Arc, mpsc},
    thread::JoinHandle,
};

use anyhow::Context;
use vigil_core::event::{Ban, Event, Finding, LineOrigin, LogEvent, Payload};
use vigil_store::sqlite::{SqliteOptions, SqliteStore, Synchronous, WriteStats};

/// Events per transaction: large enough to amortise the commit, small enough to bound memory.
const BATCH: usize = 10_000;
/// Batches queued for the writer before the replay waits.
const QUEUED_BATCHES: usize = 4;

/// Bytes of a file's start that name its stream, as the tailer's fingerprint does.
const FINGERPRINT_BYTES: usize = 1024;

/// A running back-fill: events in, a writer thread out.
pub struct Backfill {
    host: Arc<str>,
    source: Arc<str>,
    batch: Vec<Event>,
    tx: Option<mpsc::SyncSender<Vec<Event>>>,
    /// Written batches coming back, to be freed on the thread that allocated them (freeing
    /// another thread's allocations contends on the allocator's arena locks).
    written: mpsc::Receiver<Vec<Event>>,
    writer: Option<JoinHandle<anyhow::Result<WriteStats>>>,
    stream: String,
    path: PathBuf,
}

impl Backfill {
    /// Opens (creating it if needed) the database at `db` and starts the writer.
    pub fn start(db: &Path, host: &str) -> anyhow::Result<Backfill> {
        let options =
            SqliteOptions { synchronous: Synchronous::Normal, ..SqliteOptions::default() };
        let mut store = SqliteStore::open_with(db, options)
            .with_context(|| format!("cannot open the store {}", db.display()))?;
        let (tx, rx) = mpsc::sync_channel::<Vec<Event>>(QUEUED_BATCHES);
        let (back, written) = mpsc::sync_channel::<Vec<Event>>(QUEUED_BATCHES + 2);
        let path = db.to_path_buf();
        let writer = std::thread::Builder::new().name("replay-store".into()).spawn(move || {
            let mut total = WriteStats::default();
            for batch in rx {
                let written = store
                    .write(&batch)
                    .with_context(|| format!("cannot write to the store {}", path.display()))?;
                total.inserted += written.inserted;
                total.duplicates += written.duplicates;
                // Hand the batch back to be freed by its allocating thread; if that thread is
                // not keeping up, free it here rather than wait.
                if let Err(mpsc::TrySendError::Full(batch)) = back.try_send(batch) {
                    drop(batch);
                }
            }
            Ok(total)
        })?;
        Ok(Backfill {
            host: Arc::from(host),
            source: Arc::from("replay"),
            batch: Vec::with_capacity(BATCH),
            tx: Some(tx),
            written,
            writer: Some(writer),
            stream: String::new(),
            path: db.to_path_buf(),
        })
    }

    /// Names the stream of the file about to be replayed (`-` for standard input).
    pub fn begin_file(&mut self, file: &Path) {
        let name = std::fs::canonicalize(file).unwrap_or_else(|_| file.to_path_buf());
        let mut head = Vec::with_capacity(FINGERPRINT_BYTES);
        if file.as_os_str() != "-"
            && let Ok(f) = std::fs::File::open(file)
        {
            let _ = std::io::Read::read_to_end(
                &mut std::io::Read::take(f, FINGERPRINT_BYTES as u64),
                &mut head,
            );
        }
        self.stream = format!("replay:{}:{:016x}", name.display(), fnv1a(&head));
    }

    /// Keeps the line at byte `offset` (its `len` bytes plus the newline) of the current file.
    pub fn line(&mut self, mut log: LogEvent, offset: u64, len: usize) -> anyhow::Result<()> {
        log.origin =
            Some(LineOrigin { stream: self.stream.clone(), offset, end: offset + len as u64 + 1 });
        self.push(Payload::Log(log))
    }

    fn push(&mut self, payload: Payload) -> anyhow::Result<()> {
        self.batch.push(Event::new(self.host.clone(), self.source.clone(), payload));
        if self.batch.len() >= BATCH {
            self.send()?;
        }
        Ok(())
    }

    fn send(&mut self) -> anyhow::Result<()> {
        while let Ok(done) = self.written.try_recv() {
            drop(done);
        }
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH));
        let sent = self.tx.as_ref().is_some_and(|tx| tx.send(batch).is_ok());
        if sent { Ok(()) } else { Err(self.join().err().unwrap_or_else(|| self.stopped())) }
    }

    fn stopped(&self) -> anyhow::Error {
        anyhow::anyhow!("the writer of {} stopped", self.path.display())
    }

    fn join(&mut self) -> anyhow::Result<WriteStats> {
        self.tx = None;
        match self.writer.take() {
            Some(writer) => {
                writer.join().map_err(|_| anyhow::anyhow!("the store writer panicked"))?
            }
            None => Err(self.stopped()),
        }
    }

    /// Writes the findings and ban decisions, waits for every batch to commit, and returns
    /// what was stored.
    pub fn finish(mut self, findings: &[Finding], bans: &[Ban]) -> anyhow::Result<WriteStats> {
        for finding in findings {
            self.push(Payload::Finding(finding.clone()))?;
        }
        for ban in bans {
            self.push(Payload::Ban(ban.clone()))?;
        }
        if !self.batch.is_empty() {
            self.send()?;
        }
        self.join()
    }
}

/// FNV-1a, 64 bits: a stable fingerprint (std's hasher may change between releases).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}
