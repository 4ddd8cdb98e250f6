//! The CSV listener: audit records, findings and bans appended to CSV files, one per table.
//!
//! An audit record type guarantees its field list (`AuditSchema`), so each type gets one file,
//! `<dir>/<record_type>.csv`, whose columns are the record's declared fields in order. Findings go
//! to `findings.csv` and bans to `bans.csv` with the fixed columns [`FINDING_COLUMNS`] and
//! [`BAN_COLUMNS`]. Quoting follows RFC 4180 (the `csv` crate): a cell with a comma, a quote or a
//! line break is quoted, so every row stays one record.
//!
//! A file is opened on the first row for it, in append mode. A new or empty file gets the header
//! row first; a file that already has content keeps it and must start with the same header, so
//! restarts add rows without a second header and a changed schema is refused (an error naming the
//! file) rather than mixed into old columns. Rows are handed to the operating system at the end
//! of every batch; [`flush`](Listener::flush) also puts them on disk. Writes run on tokio's
//! blocking pool.
//!
//! Cells: text as is (see `escape_formulas`), numbers and booleans as JSON writes them, a missing
//! value or `null` empty, lists and maps as JSON text. A record type that is not a plain
//! snake_case name (it would not be a safe file name) is refused with an error.

use std::{
    collections::BTreeMap,
    fmt,
    fs::{self, File, OpenOptions},
    io::{BufRead, BufReader, Read},
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, PoisonError},
};

use async_trait::async_trait;
use vigil_core::{ComponentError, Filter, Listener};
use vigil_event::{Ban, Event, Finding, Payload, Value};

use super::CsvConfig;

/// Columns of `findings.csv`, in order: the envelope's `timestamp` (RFC 3339), `host`, `source`
/// and `severity`, the finding's `name`, `system`, `summary`, `message`, `data` (a JSON object),
/// `record` (the original line), `rule` and `count` (from its evidence) and the event's `id`.
pub const FINDING_COLUMNS: &[&str] = &[
    "timestamp",
    "host",
    "source",
    "severity",
    "name",
    "system",
    "summary",
    "message",
    "data",
    "record",
    "rule",
    "count",
    "event_id",
];

/// Columns of `bans.csv`, in order: the envelope's `timestamp`, `host` and `source`, the ban's
/// `stage`, `ip`, `jail`, `at`, `until` (empty while requested or when permanent), `failures`,
/// `bantime_seconds`, `previous_bans`, `dry_run`, `reason`, the evidence's `rule`, `count` and
/// `window_seconds`, and the event's `id`.
pub const BAN_COLUMNS: &[&str] = &[
    "timestamp",
    "host",
    "source",
    "stage",
    "ip",
    "jail",
    "at",
    "until",
    "failures",
    "bantime_seconds",
    "previous_bans",
    "dry_run",
    "reason",
    "rule",
    "count",
    "window_seconds",
    "event_id",
];

/// The most files one listener keeps open; rows of a further table are refused with an error.
const MAX_OPEN_FILES: usize = 256;

/// Permissions of a file the listener creates: rows name users and addresses.
const FILE_MODE: u32 = 0o640;

/// Appends audit records, findings and bans to CSV files in one directory.
pub struct CsvListener {
    filter: Filter,
    tables: Arc<Mutex<Tables>>,
}

impl fmt::Debug for CsvListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CsvListener").field("filter", &self.filter).finish_non_exhaustive()
    }
}

impl CsvListener {
    /// The listener's name.
    pub const NAME: &'static str = "csv";

    /// A listener configured by `config`, with its directory created (the `enabled` flag is not
    /// consulted; see [`CsvConfig::build`]).
    pub fn new(config: &CsvConfig) -> Result<CsvListener, ComponentError> {
        if config.dir.as_os_str().is_empty() {
            return Err(ComponentError::Config("csv dir is empty".to_owned()));
        }
        fs::create_dir_all(&config.dir).map_err(|err| ComponentError::io(&config.dir, err))?;
        let tables = Tables {
            dir: config.dir.clone(),
            escape_formulas: config.escape_formulas,
            files: BTreeMap::new(),
        };
        Ok(CsvListener { filter: config.filter.clone(), tables: Arc::new(Mutex::new(tables)) })
    }

    /// The filter the runtime registers the listener with.
    pub fn filter(&self) -> &Filter {
        &self.filter
    }

    /// The file rows of `table` go to (`audit record type`, `findings` or `bans`).
    pub fn path_of(&self, table: &str) -> PathBuf {
        let tables = self.tables.lock().unwrap_or_else(PoisonError::into_inner);
        tables.dir.join(format!("{table}.csv"))
    }

    async fn blocking<T: Send + 'static>(
        &self,
        op: impl FnOnce(&mut Tables) -> Result<T, ComponentError> + Send + 'static,
    ) -> Result<T, ComponentError> {
        let tables = Arc::clone(&self.tables);
        tokio::task::spawn_blocking(move || {
            let mut tables = tables.lock().unwrap_or_else(PoisonError::into_inner);
            op(&mut tables)
        })
        .await
        .map_err(|err| ComponentError::msg(format!("csv write task failed: {err}")))?
    }
}

#[async_trait]
impl Listener for CsvListener {
    fn name(&self) -> &str {
        CsvListener::NAME
    }

    async fn handle(&mut self, events: &[Arc<Event>]) -> Result<(), ComponentError> {
        if events.is_empty() {
            return Ok(());
        }
        let batch = events.to_vec();
        self.blocking(move |tables| tables.write_batch(&batch)).await
    }

    async fn flush(&mut self) -> Result<(), ComponentError> {
        self.blocking(Tables::sync).await
    }
}

/// The open files, owned through a mutex so that the blocking pool can use them.
struct Tables {
    dir: PathBuf,
    escape_formulas: bool,
    files: BTreeMap<String, Table>,
}

/// One open CSV file and the header it was checked against.
struct Table {
    path: PathBuf,
    columns: Vec<String>,
    writer: csv::Writer<File>,
    dirty: bool,
}

impl Tables {
    /// Writes one row per event it knows how to write, then flushes every file it touched. A row
    /// that cannot be written (a refused table) does not stop the others; the first such error
    /// is returned after the batch.
    fn write_batch(&mut self, events: &[Arc<Event>]) -> Result<(), ComponentError> {
        let mut first_error = None;
        for event in events {
            let Some((table, columns, cells)) = row(event) else { continue };
            if let Err(err) = self.write_row(&table, &columns, cells) {
                first_error.get_or_insert(err);
            }
        }
        for table in self.files.values_mut().filter(|it| it.dirty) {
            table.dirty = false;
            if let Err(err) = table.writer.flush() {
                first_error.get_or_insert(ComponentError::io(&table.path, err));
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    fn write_row(
        &mut self,
        table: &str,
        columns: &[String],
        cells: Vec<String>,
    ) -> Result<(), ComponentError> {
        if !self.files.contains_key(table) {
            if !is_table_name(table) {
                return Err(ComponentError::msg(format!(
                    "csv: record type `{table}` is not a snake_case name; not written"
                )));
            }
            if self.files.len() >= MAX_OPEN_FILES {
                return Err(ComponentError::msg(format!(
                    "csv: more than {MAX_OPEN_FILES} tables; `{table}` not written"
                )));
            }
            let opened = open_table(&self.dir.join(format!("{table}.csv")), columns)?;
            self.files.insert(table.to_owned(), opened);
        }
        let Some(open) = self.files.get_mut(table) else {
            return Err(ComponentError::msg(format!("csv: table `{table}` vanished")));
        };
        if open.columns != columns {
            return Err(ComponentError::msg(format!(
                "{}: record has columns {columns:?}, the file has {:?}; not written",
                open.path.display(),
                open.columns
            )));
        }
        let cells = cells.into_iter().map(|it| {
            if self.escape_formulas && starts_like_formula(&it) { format!("'{it}") } else { it }
        });
        open.writer.write_record(cells).map_err(|err| csv_error(&open.path, err))?;
        open.dirty = true;
        Ok(())
    }

    fn sync(&mut self) -> Result<(), ComponentError> {
        for table in self.files.values_mut() {
            table.writer.flush().map_err(|err| ComponentError::io(&table.path, err))?;
            table
                .writer
                .get_ref()
                .sync_data()
                .map_err(|err| ComponentError::io(&table.path, err))?;
        }
        Ok(())
    }
}

/// Opens (or creates) `path` for appending rows with `columns`: writes the header into a new or
/// empty file, checks it in an existing one.
fn open_table(path: &Path, columns: &[String]) -> Result<Table, ComponentError> {
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .read(true)
        .mode(FILE_MODE)
        .open(path)
        .map_err(|err| ComponentError::io(path, err))?;
    let len = file.metadata().map_err(|err| ComponentError::io(path, err))?.len();
    let mut expected = csv::Writer::from_writer(Vec::new());
    expected.write_record(columns).map_err(|err| csv_error(path, err))?;
    let expected = expected.into_inner().map_err(|err| ComponentError::msg(err.to_string()))?;
    let mut writer = csv::WriterBuilder::new().from_writer(file);
    if len == 0 {
        writer.write_record(columns).map_err(|err| csv_error(path, err))?;
        writer.flush().map_err(|err| ComponentError::io(path, err))?;
    } else {
        let mut first = Vec::new();
        let reader = File::open(path).map_err(|err| ComponentError::io(path, err))?;
        // The header is one line; read no more than a generous bound of it.
        BufReader::new(reader)
            .take(64 * 1024)
            .read_until(b'\n', &mut first)
            .map_err(|err| ComponentError::io(path, err))?;
        if first != expected {
            return Err(ComponentError::msg(format!(
                "{}: existing header {:?} differs from the columns {columns:?}; not written",
                path.display(),
                String::from_utf8_lossy(&first).trim_end()
            )));
        }
    }
    Ok(Table { path: path.to_owned(), columns: columns.to_vec(), writer, dirty: false })
}

/// The table, columns and cells of `event`, or `None` for a kind the listener does not write.
fn row(event: &Event) -> Option<(String, Vec<String>, Vec<String>)> {
    match &event.payload {
        Payload::Audit(record) => Some((
            record.record_type().to_owned(),
            record.columns().to_vec(),
            record.values().iter().map(cell).collect(),
        )),
        Payload::Finding(finding) => {
            Some(("findings".to_owned(), owned(FINDING_COLUMNS), finding_cells(event, finding)))
        }
        Payload::Ban(ban) => Some(("bans".to_owned(), owned(BAN_COLUMNS), ban_cells(event, ban))),
        _ => None,
    }
}

fn finding_cells(event: &Event, finding: &Finding) -> Vec<String> {
    let data = if finding.data.is_empty() {
        String::new()
    } else {
        serde_json::to_string(&finding.data).unwrap_or_default()
    };
    let evidence = finding.evidence.as_ref();
    vec![
        event.timestamp.to_rfc3339(),
        event.host.to_string(),
        event.source.to_string(),
        event.severity.as_str().to_owned(),
        finding.name.clone(),
        finding.system.clone(),
        finding.summary.clone(),
        finding.message.clone().unwrap_or_default(),
        data,
        finding.record.clone().unwrap_or_default(),
        evidence.map(|it| it.rule.clone()).unwrap_or_default(),
        evidence.map(|it| it.count.to_string()).unwrap_or_default(),
        event.id.to_string(),
    ]
}

fn ban_cells(event: &Event, ban: &Ban) -> Vec<String> {
    vec![
        event.timestamp.to_rfc3339(),
        event.host.to_string(),
        event.source.to_string(),
        ban.stage.as_str().to_owned(),
        ban.ip.clone(),
        ban.jail.clone(),
        ban.at.to_rfc3339(),
        ban.until.map(|it| it.to_rfc3339()).unwrap_or_default(),
        ban.failures.to_string(),
        ban.bantime_seconds.to_string(),
        ban.previous_bans.to_string(),
        ban.dry_run.to_string(),
        ban.reason.clone().unwrap_or_default(),
        ban.evidence.rule.clone(),
        ban.evidence.count.to_string(),
        ban.evidence.window_seconds.to_string(),
        event.id.to_string(),
    ]
}

/// One value as a CSV cell.
fn cell(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(text) => text.clone(),
        Value::Bool(it) => it.to_string(),
        Value::Number(it) => it.to_string(),
        other => other.to_string(),
    }
}

fn owned(columns: &[&str]) -> Vec<String> {
    columns.iter().map(|it| (*it).to_owned()).collect()
}

/// Whether `name` is a safe file stem: snake_case ASCII, at most 100 characters.
fn is_table_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Whether a spreadsheet would read `text` as a formula.
fn starts_like_formula(text: &str) -> bool {
    matches!(text.as_bytes().first(), Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r'))
        && text.parse::<f64>().is_err()
}

fn csv_error(path: &Path, err: csv::Error) -> ComponentError {
    match err.into_kind() {
        csv::ErrorKind::Io(err) => ComponentError::io(path, err),
        other => ComponentError::msg(format!("{}: {other:?}", path.display())),
    }
}
