//! The JSON-lines listener: every event as one line of JSON, to standard output or a file.
//!
//! This is the agent's simplest durable output and what `vigil run --print` shows. Each event is
//! the serde_json form of the [`Event`] envelope on a line of its own; serde_json escapes line
//! breaks inside strings, so one event is always exactly one line and the output can be read
//! back line by line (`jq`, `vigil replay`, a log shipper).
//!
//! Writes go through a [`BufWriter`]: a batch is written into the buffer and the buffer is
//! flushed to the operating system at the end of each [`handle`](Listener::handle), so output
//! appears promptly without one system call per event. [`flush`](Listener::flush) also asks the
//! kernel to put a file's data on disk. Writing can block (a slow pipe, a full disk), so it runs
//! on tokio's blocking pool and never stalls the runtime's workers.
//!
//! A failed write returns [`ComponentError::Io`] naming the path (`stdout` for standard output).
//! What was already buffered stays in the buffer and is retried with the next batch, so lines stay
//! whole after a transient failure; the events of the failed batch that had not reached the buffer
//! are dropped. A closed pipe on standard output is an error like any other, never a panic.

use std::{
    fmt,
    fs::{self, File, OpenOptions},
    io::{self, BufWriter, Stdout, Write},
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, PoisonError},
};

use async_trait::async_trait;
use vigil_core::{ComponentError, Filter, Listener};
use vigil_event::Event;

use super::JsonLinesConfig;

/// How much output is buffered before it is handed to the operating system mid-batch.
const BUFFER_BYTES: usize = 64 * 1024;

/// Permissions of a file the listener creates: events name users and addresses, so the file is
/// readable by its owner and group only.
const FILE_MODE: u32 = 0o640;

/// Writes every event it handles as one line of JSON to standard output, a file or any writer.
pub struct JsonLinesListener {
    filter: Filter,
    writer: Arc<Mutex<LineWriter>>,
}

impl fmt::Debug for JsonLinesListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsonLinesListener").field("filter", &self.filter).finish_non_exhaustive()
    }
}

impl JsonLinesListener {
    /// The listener's name.
    pub const NAME: &'static str = "json_lines";

    /// A listener configured by `config`, with its output open: standard output for `-`,
    /// otherwise the file, created (with its parent directory) if missing and truncated unless
    /// `append` is set. The `enabled` flag is not consulted; see [`JsonLinesConfig::build`].
    pub fn new(config: &JsonLinesConfig) -> Result<JsonLinesListener, ComponentError> {
        let (output, label) = if config.is_stdout() {
            (Output::Stdout(io::stdout()), PathBuf::from("stdout"))
        } else {
            (Output::File(open(&config.path, config.append)?), config.path.clone())
        };
        Ok(JsonLinesListener::with_output(config.filter.clone(), output, label))
    }

    /// A listener that writes to `writer`, for embedding the JSON-lines format in another
    /// program (a socket, an in-memory buffer); errors name the path `writer`.
    pub fn from_writer(writer: impl Write + Send + 'static) -> JsonLinesListener {
        JsonLinesListener::with_output(
            Filter::any(),
            Output::Writer(Box::new(writer)),
            PathBuf::from("writer"),
        )
    }

    fn with_output(filter: Filter, output: Output, label: PathBuf) -> JsonLinesListener {
        let writer = LineWriter {
            out: BufWriter::with_capacity(BUFFER_BYTES, output),
            label,
            line: Vec::new(),
        };
        JsonLinesListener { filter, writer: Arc::new(Mutex::new(writer)) }
    }

    /// The filter the runtime registers the listener with.
    pub fn filter(&self) -> &Filter {
        &self.filter
    }

    /// Runs `op` on the writer in tokio's blocking pool.
    async fn blocking<T: Send + 'static>(
        &self,
        op: impl FnOnce(&mut LineWriter) -> Result<T, ComponentError> + Send + 'static,
    ) -> Result<T, ComponentError> {
        let writer = Arc::clone(&self.writer);
        tokio::task::spawn_blocking(move || {
            // A panic while writing leaves at worst a partly written buffer; keep going with it.
            let mut writer = writer.lock().unwrap_or_else(PoisonError::into_inner);
            op(&mut writer)
        })
        .await
        .map_err(|err| ComponentError::msg(format!("json_lines write task failed: {err}")))?
    }
}

#[async_trait]
impl Listener for JsonLinesListener {
    fn name(&self) -> &str {
        JsonLinesListener::NAME
    }

    async fn handle(&mut self, events: &[Arc<Event>]) -> Result<(), ComponentError> {
        if events.is_empty() {
            return Ok(());
        }
        let batch = events.to_vec();
        self.blocking(move |writer| writer.write_batch(&batch)).await
    }

    async fn flush(&mut self) -> Result<(), ComponentError> {
        self.blocking(LineWriter::sync).await
    }
}

/// The writing half, owned through a mutex so that the blocking pool can use it.
struct LineWriter {
    out: BufWriter<Output>,
    /// What errors name: the file path, `stdout` or `writer`.
    label: PathBuf,
    /// One serialised event, reused so that writing allocates nothing per event.
    line: Vec<u8>,
}

impl LineWriter {
    /// Writes each event as one line, then hands the buffer to the operating system.
    ///
    /// An event that cannot be serialised is skipped (the rest of the batch is written) and
    /// reported as the error of the batch.
    fn write_batch(&mut self, events: &[Arc<Event>]) -> Result<(), ComponentError> {
        let mut skipped = None;
        for event in events {
            self.line.clear();
            if let Err(err) = serde_json::to_writer(&mut self.line, &**event) {
                skipped.get_or_insert_with(|| {
                    ComponentError::msg(format!("cannot serialise event {}: {err}", event.id))
                });
                continue;
            }
            self.line.push(b'\n');
            self.out.write_all(&self.line).map_err(|err| ComponentError::io(&self.label, err))?;
        }
        self.out.flush().map_err(|err| ComponentError::io(&self.label, err))?;
        skipped.map_or(Ok(()), Err)
    }

    /// Hands the buffer to the operating system and, for a file, waits until its data is on disk.
    fn sync(&mut self) -> Result<(), ComponentError> {
        self.out.flush().map_err(|err| ComponentError::io(&self.label, err))?;
        if let Output::File(file) = self.out.get_ref() {
            file.sync_data().map_err(|err| ComponentError::io(&self.label, err))?;
        }
        Ok(())
    }
}

/// Where the lines go.
enum Output {
    Stdout(Stdout),
    File(File),
    Writer(Box<dyn Write + Send>),
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Output::Stdout(it) => it.write(buf),
            Output::File(it) => it.write(buf),
            Output::Writer(it) => it.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Output::Stdout(it) => it.flush(),
            Output::File(it) => it.flush(),
            Output::Writer(it) => it.flush(),
        }
    }
}

/// Opens `path` for writing, creating it and its parent directory if missing.
fn open(path: &Path, append: bool) -> Result<File, ComponentError> {
    if path.as_os_str().is_empty() {
        return Err(ComponentError::Config("json_lines path is empty".to_owned()));
    }
    if let Some(parent) = path.parent().filter(|it| !it.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(|err| ComponentError::io(parent, err))?;
    }
    let mut options = OpenOptions::new();
    options.create(true).mode(FILE_MODE);
    if append {
        options.append(true);
    } else {
        options.write(true).truncate(true);
    }
    options.open(path).map_err(|err| ComponentError::io(path, err))
}
