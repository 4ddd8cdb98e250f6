//! Vigil's systemd journal source: on a stock Debian or Ubuntu host sshd logs only to the
//! journal, so this source reads it natively through libsystemd (the `systemd` crate's safe
//! API, no `journalctl` subprocess).
//!
//! A [`JournalSource`] opens the system journal, or the journal files of one directory, keeps
//! the entries whose `_SYSTEMD_UNIT` is one of the configured units or whose
//! `SYSLOG_IDENTIFIER` is one of the configured identifiers, and turns each entry's `MESSAGE`
//! into a payload with a [`Decoder`] (by default a generic log event; the CLI plugs in the
//! sshd parser). Entries are read in batches on a blocking thread that waits for new entries
//! with `sd_journal_wait` in short timeouts, so shutdown is always watched.
//!
//! # Cursor and acknowledgement
//!
//! The journal cursor of the last entry of a batch is persisted atomically (temp file, `fsync`,
//! rename) in `<checkpoint_dir>/<name>.journal.json` only once the batch is acknowledged: with
//! [`AckMode::OnPublish`], when the bus accepted it. A restart seeks to the saved cursor and
//! reads from the entry after it, so each entry is delivered once; entries read but not yet
//! acknowledged when the agent stopped are read again.
//!
//! # Origin
//!
//! Each log event gets a [`LineOrigin`]: `stream` is `journal:<_BOOT_ID>` of the entry (the
//! journal has no byte offsets, and the boot id is always present), `offset` is the entry's
//! `__REALTIME_TIMESTAMP` in microseconds and `end` is `offset + 1`. The sequence number was
//! not chosen because it restarts per journal file writer (`seqnum_id`) and is not exposed by
//! the safe API; the exact position is the cursor, kept in [`EntryContext::cursor`].
#![deny(missing_docs)]

use std::{
    fs::{self, File},
    io::Write,
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use vigil_core::{
    ComponentError, Event, EventSource, SourceCapabilities, SourceContext, Statistics, async_trait,
};
use vigil_event::{LineOrigin, LogEvent, Payload};

/// How long one `sd_journal_wait` blocks before the reader checks for shutdown again.
const WAIT_SLICE: Duration = Duration::from_millis(200);

/// Why the journal source failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JournalError {
    /// Opening or reading the journal failed.
    #[error("journal {what}: {source}")]
    Journal {
        /// What was being done.
        what: String,
        /// The libsystemd error.
        source: systemd::Error,
    },
    /// Reading or writing the cursor file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The configuration cannot work.
    #[error("invalid configuration: {0}")]
    Config(String),
}

impl JournalError {
    fn journal(what: impl Into<String>, source: systemd::Error) -> JournalError {
        JournalError::Journal { what: what.into(), source }
    }
}

impl From<JournalError> for ComponentError {
    fn from(err: JournalError) -> ComponentError {
        match err {
            JournalError::Io { path, source } => ComponentError::io(path, source),
            JournalError::Config(it) => ComponentError::Config(it),
            other @ JournalError::Journal { .. } => ComponentError::msg(other.to_string()),
        }
    }
}

/// Where reading starts at the very first run (no saved cursor yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StartAt {
    /// At the end: only entries written from now on.
    #[default]
    End,
    /// At the beginning: every entry the journal still holds.
    Beginning,
}

/// Configuration of a journal source (`[sources.journal.<name>]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct JournalConfig {
    /// Whether the source runs.
    pub enabled: bool,
    /// Directory of journal files to read. Unset: the system journal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub directory: Option<PathBuf>,
    /// Units whose entries are kept (`_SYSTEMD_UNIT`), e.g. `ssh.service`.
    pub units: Vec<String>,
    /// Syslog identifiers whose entries are kept (`SYSLOG_IDENTIFIER`), e.g. `sshd`. An entry
    /// matching a unit or an identifier is kept.
    pub identifiers: Vec<String>,
    /// Where reading starts at the very first run: `end` or `beginning`.
    pub start_at: StartAt,
    /// Most entries sent in one batch.
    pub batch_size: usize,
    /// Parser of each entry's message: `auto`, or a format name (`sshd`, `syslog`, …). Unset:
    /// `sshd` when every identifier is `sshd`, else `auto`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parser: Option<String>,
    /// Directory of the cursor file. Unset: `checkpoints` in the agent's state directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoint_dir: Option<PathBuf>,
}

impl Default for JournalConfig {
    fn default() -> Self {
        JournalConfig {
            enabled: false,
            directory: None,
            units: Vec::new(),
            identifiers: vec!["sshd".to_owned()],
            start_at: StartAt::End,
            batch_size: 256,
            parser: None,
            checkpoint_dir: None,
        }
    }
}

impl JournalConfig {
    /// Checks the configuration and builds the source called `name`, keeping its cursor in
    /// `checkpoint_dir` unless the configuration names another directory.
    pub fn build(
        &self,
        name: &str,
        checkpoint_dir: PathBuf,
        ack: AckMode,
    ) -> Result<JournalSource, JournalError> {
        if self.units.is_empty() && self.identifiers.is_empty() {
            return Err(JournalError::Config(format!(
                "journal source {name}: set units or identifiers (reading the whole journal is not supported)"
            )));
        }
        if self.batch_size == 0 {
            return Err(JournalError::Config(format!("journal source {name}: batch_size is 0")));
        }
        let dir = self.checkpoint_dir.clone().unwrap_or(checkpoint_dir);
        Ok(JournalSource::new(name, self.clone(), dir, ack))
    }
}

/// When the saved cursor may advance past an entry.
#[derive(Debug, Clone, Default)]
pub enum AckMode {
    /// As soon as the bus accepted the batch holding it.
    #[default]
    OnPublish,
}

/// What a decoder knows about an entry besides its message.
#[derive(Debug, Clone, Copy)]
pub struct EntryContext<'a> {
    /// The source's name.
    pub source: &'a str,
    /// The entry's journal cursor.
    pub cursor: &'a str,
    /// Where the entry was read (see the crate docs).
    pub origin: &'a LineOrigin,
    /// `SYSLOG_IDENTIFIER`, when set.
    pub identifier: Option<&'a str>,
    /// `_SYSTEMD_UNIT`, when set.
    pub unit: Option<&'a str>,
    /// `_PID`, when set and numeric.
    pub pid: Option<u32>,
    /// `__REALTIME_TIMESTAMP`: when the journal received the entry.
    pub timestamp: Option<DateTime<Utc>>,
}

/// Turns one entry's `MESSAGE` into a payload, or `None` to skip it. A log payload gets the
/// entry's origin filled in by the source, and its empty `timestamp`, `service` and `pid` from
/// the entry.
pub type Decoder = Arc<dyn Fn(&EntryContext<'_>, &str) -> Option<Payload> + Send + Sync>;

/// The default decoder: a generic log event with the message, service = `SYSLOG_IDENTIFIER`,
/// pid = `_PID` and timestamp = `__REALTIME_TIMESTAMP`.
pub fn generic_decoder() -> Decoder {
    Arc::new(|ctx: &EntryContext<'_>, message: &str| {
        Some(Payload::Log(LogEvent {
            service: ctx.identifier.map(str::to_owned),
            pid: ctx.pid,
            timestamp: ctx.timestamp,
            ..LogEvent::new(ctx.source, message)
        }))
    })
}

/// The saved cursor, as written in the cursor file.
#[derive(Debug, Serialize, Deserialize)]
struct CursorFile {
    cursor: String,
}

/// The cursor file of one source, written atomically.
#[derive(Debug, Clone)]
struct CursorStore {
    path: PathBuf,
    tmp: PathBuf,
}

impl CursorStore {
    fn new(dir: &Path, name: &str) -> CursorStore {
        CursorStore {
            path: dir.join(format!("{name}.journal.json")),
            tmp: dir.join(format!("{name}.journal.json.tmp")),
        }
    }

    fn load(&self) -> Result<Option<String>, JournalError> {
        match fs::read(&self.path) {
            Ok(bytes) => match serde_json::from_slice::<CursorFile>(&bytes) {
                Ok(it) => Ok(Some(it.cursor)),
                Err(err) => {
                    tracing::warn!(path = %self.path.display(), %err, "unreadable journal cursor; starting over");
                    Ok(None)
                }
            },
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(JournalError::Io { path: self.path.clone(), source: err }),
        }
    }

    fn save(&self, cursor: &str) -> Result<(), JournalError> {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| JournalError::Io { path, source }
        };
        let dir = self.path.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir).map_err(io(dir))?;
        let body = serde_json::to_vec(&CursorFile { cursor: cursor.to_owned() })
            .map_err(|err| JournalError::Config(err.to_string()))?;
        let mut tmp = File::create(&self.tmp).map_err(io(&self.tmp))?;
        tmp.write_all(&body).map_err(io(&self.tmp))?;
        tmp.sync_all().map_err(io(&self.tmp))?;
        drop(tmp);
        fs::rename(&self.tmp, &self.path).map_err(io(&self.path))?;
        File::open(dir).and_then(|it| it.sync_all()).map_err(io(dir))
    }
}

#[derive(Debug, Default)]
struct Counters {
    entries_read: AtomicU64,
    entries_skipped: AtomicU64,
    batches_committed: AtomicU64,
    errors: AtomicU64,
}

/// One entry read from the journal.
#[derive(Debug)]
struct Entry {
    cursor: String,
    message: String,
    identifier: Option<String>,
    unit: Option<String>,
    pid: Option<u32>,
    boot_id: Option<String>,
    realtime_usec: u64,
}

/// Reads the journal and sends each matching entry as an event (see the crate docs).
pub struct JournalSource {
    name: String,
    ack: AckMode,
    config: JournalConfig,
    checkpoint_dir: PathBuf,
    decoder: Decoder,
    counters: Arc<Counters>,
}

impl JournalSource {
    /// A source called `name` keeping its cursor in `checkpoint_dir`. Prefer
    /// [`JournalConfig::build`], which validates the configuration first.
    pub fn new(name: &str, config: JournalConfig, checkpoint_dir: PathBuf, ack: AckMode) -> Self {
        JournalSource {
            name: name.to_owned(),
            ack,
            config,
            checkpoint_dir,
            decoder: generic_decoder(),
            counters: Arc::default(),
        }
    }

    /// Uses `decoder` to turn entries into payloads (a parser).
    #[must_use]
    pub fn with_decoder(mut self, decoder: Decoder) -> Self {
        self.decoder = decoder;
        self
    }

    fn decode(&self, ctx: &SourceContext, entries: &[Entry]) -> Vec<Event> {
        let mut events = Vec::with_capacity(entries.len());
        for entry in entries {
            let origin = LineOrigin {
                stream: format!("journal:{}", entry.boot_id.as_deref().unwrap_or("unknown")),
                offset: entry.realtime_usec,
                end: entry.realtime_usec.saturating_add(1),
            };
            let timestamp = i64::try_from(entry.realtime_usec)
                .ok()
                .and_then(DateTime::<Utc>::from_timestamp_micros);
            let entry_ctx = EntryContext {
                source: &self.name,
                cursor: &entry.cursor,
                origin: &origin,
                identifier: entry.identifier.as_deref(),
                unit: entry.unit.as_deref(),
                pid: entry.pid,
                timestamp,
            };
            match (self.decoder)(&entry_ctx, &entry.message) {
                Some(mut payload) => {
                    if let Payload::Log(log) = &mut payload {
                        log.origin = Some(origin.clone());
                        log.timestamp = log.timestamp.or(timestamp);
                        log.service = log.service.take().or_else(|| entry.identifier.clone());
                        log.pid = log.pid.or(entry.pid);
                    }
                    events.push(ctx.event(payload));
                }
                None => {
                    self.counters.entries_skipped.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        events
    }
}

/// Opens the journal and applies the matches.
fn open(config: &JournalConfig) -> Result<systemd::Journal, JournalError> {
    let mut journal = match &config.directory {
        Some(dir) => systemd::journal::OpenDirectoryOptions::default()
            .open_directory(dir.as_os_str().as_encoded_bytes())
            .map_err(|err| JournalError::journal(format!("open {}", dir.display()), err))?,
        None => systemd::journal::OpenOptions::default()
            .system(true)
            .local_only(true)
            .open()
            .map_err(|err| JournalError::journal("open the system journal", err))?,
    };
    let add = |journal: &mut systemd::Journal, key: &str, value: &str| {
        journal
            .match_add(key, value.as_bytes().to_vec())
            .map(|_| ())
            .map_err(|err| JournalError::journal(format!("match {key}={value}"), err))
    };
    for unit in &config.units {
        add(&mut journal, "_SYSTEMD_UNIT", unit)?;
    }
    if !config.units.is_empty() && !config.identifiers.is_empty() {
        journal.match_or().map_err(|err| JournalError::journal("match or", err))?;
    }
    for identifier in &config.identifiers {
        add(&mut journal, "SYSLOG_IDENTIFIER", identifier)?;
    }
    Ok(journal)
}

/// Positions the journal: after `cursor` when there is one, else per `start_at`.
fn seek(
    journal: &mut systemd::Journal,
    cursor: Option<&str>,
    start_at: StartAt,
) -> Result<(), JournalError> {
    let err = |what: &str| {
        let what = what.to_owned();
        move |source| JournalError::journal(what, source)
    };
    if let Some(cursor) = cursor {
        journal.seek_cursor(cursor).map_err(err("seek to the saved cursor"))?;
        // Step onto the entry at (or nearest to) the cursor; skip it if it is the one
        // already delivered.
        if journal.next().map_err(err("read"))? > 0
            && !journal.test_cursor(cursor).map_err(err("test the cursor"))?
        {
            journal.previous().map_err(err("read"))?;
        }
        return Ok(());
    }
    match start_at {
        StartAt::Beginning => journal.seek_head().map_err(err("seek to the head")),
        StartAt::End => {
            journal.seek_tail().map_err(err("seek to the tail"))?;
            // Move onto the last entry so the next read returns only new ones.
            journal.previous().map_err(err("read")).map(|_| ())
        }
    }
}

fn field(journal: &mut systemd::Journal, name: &str) -> Result<Option<String>, JournalError> {
    let data = journal
        .get_data(name)
        .map_err(|err| JournalError::journal(format!("read field {name}"), err))?;
    Ok(data.and_then(|it| it.value().map(|v| String::from_utf8_lossy(v).into_owned())))
}

/// Reads the entry the journal is on.
fn read_entry(journal: &mut systemd::Journal) -> Result<Entry, JournalError> {
    let cursor = journal.cursor().map_err(|err| JournalError::journal("cursor", err))?;
    let realtime_usec =
        journal.timestamp_usec().map_err(|err| JournalError::journal("timestamp", err))?;
    Ok(Entry {
        message: field(journal, "MESSAGE")?.unwrap_or_default(),
        identifier: field(journal, "SYSLOG_IDENTIFIER")?,
        unit: field(journal, "_SYSTEMD_UNIT")?,
        pid: field(journal, "_PID")?.and_then(|it| it.trim().parse().ok()),
        boot_id: field(journal, "_BOOT_ID")?,
        cursor,
        realtime_usec,
    })
}

/// The blocking reader: opens the journal, then sends batches until shutdown or the receiver
/// is gone.
fn reader(
    config: &JournalConfig,
    cursor: Option<&str>,
    shutdown: &CancellationToken,
    tx: &mpsc::Sender<Vec<Entry>>,
) -> Result<(), JournalError> {
    let mut journal = open(config)?;
    seek(&mut journal, cursor, config.start_at)?;
    while !shutdown.is_cancelled() {
        let mut batch = Vec::new();
        while batch.len() < config.batch_size {
            if journal.next().map_err(|err| JournalError::journal("read", err))? == 0 {
                break;
            }
            batch.push(read_entry(&mut journal)?);
        }
        if batch.is_empty() {
            journal.wait(Some(WAIT_SLICE)).map_err(|err| JournalError::journal("wait", err))?;
        } else if tx.blocking_send(batch).is_err() {
            break;
        }
    }
    Ok(())
}

#[async_trait]
impl EventSource for JournalSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn capabilities(&self) -> SourceCapabilities {
        SourceCapabilities::LOG | SourceCapabilities::SYSTEM_WIDE
    }

    fn statistics(&self) -> Option<Statistics> {
        let c = &self.counters;
        let counters = [
            ("entries_read", c.entries_read.load(Ordering::Relaxed)),
            ("entries_skipped", c.entries_skipped.load(Ordering::Relaxed)),
            ("batches_committed", c.batches_committed.load(Ordering::Relaxed)),
            ("errors", c.errors.load(Ordering::Relaxed)),
        ];
        Some(counters.into_iter().map(|(k, v)| (k.to_owned(), v.into())).collect())
    }

    async fn validate(&self) -> Result<(), ComponentError> {
        fs::create_dir_all(&self.checkpoint_dir)
            .map_err(|err| ComponentError::io(&self.checkpoint_dir, err))
    }

    async fn start(&self, ctx: SourceContext) -> Result<(), ComponentError> {
        let store = CursorStore::new(&self.checkpoint_dir, &self.name);
        let cursor = store.load()?;
        let (tx, mut rx) = mpsc::channel::<Vec<Entry>>(1);
        let config = self.config.clone();
        let shutdown = ctx.shutdown.clone();
        let reader_task =
            tokio::task::spawn_blocking(move || reader(&config, cursor.as_deref(), &shutdown, &tx));
        let result = loop {
            let batch = tokio::select! {
                () = ctx.shutdown.cancelled() => break Ok(()),
                batch = rx.recv() => batch,
            };
            let Some(batch) = batch else { break Ok(()) };
            let Some(last) = batch.last().map(|it| it.cursor.clone()) else { continue };
            self.counters.entries_read.fetch_add(batch.len() as u64, Ordering::Relaxed);
            let events = self.decode(&ctx, &batch);
            if !events.is_empty() && ctx.out.send_batch(events).await.is_err() {
                break Err(ComponentError::Closed);
            }
            // Acknowledged: the bus accepted the batch.
            let AckMode::OnPublish = self.ack;
            if let Err(err) = store.save(&last) {
                break Err(err.into());
            }
            self.counters.batches_committed.fetch_add(1, Ordering::Relaxed);
        };
        drop(rx);
        let read = reader_task.await.map_err(|err| ComponentError::msg(err.to_string()))?;
        let result = result.and(read.map_err(ComponentError::from));
        if result.is_err() {
            self.counters.errors.fetch_add(1, Ordering::Relaxed);
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cursor_round_trips_and_a_damaged_file_starts_over() {
        let dir = tempfile::tempdir().unwrap();
        let store = CursorStore::new(&dir.path().join("checkpoints"), "journal.sshd");
        assert_eq!(store.load().unwrap(), None);
        store.save("s=abc;i=7;b=def").unwrap();
        assert_eq!(store.load().unwrap().as_deref(), Some("s=abc;i=7;b=def"));
        assert!(!store.tmp.exists(), "the temp file was renamed into place");
        fs::write(&store.path, b"{\"cursor\": ").unwrap();
        assert_eq!(store.load().unwrap(), None);
    }

    #[test]
    fn a_configuration_without_matches_is_refused() {
        let config = JournalConfig { identifiers: Vec::new(), ..JournalConfig::default() };
        let err = config.build("j", PathBuf::from("/tmp"), AckMode::OnPublish).err().unwrap();
        assert!(err.to_string().contains("set units or identifiers"), "{err}");
    }
}
