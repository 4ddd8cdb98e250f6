//! The JSON files destination (cargo feature `json-files`): documents or JSON lines at
//! templated paths (seed 002's `STORE_FILE`).
//!
//! Each batch is grouped by tag (the configured one, or each event's kind) and written as one
//! file per group, to a temporary name in the target directory, fsynced and renamed, then the
//! directory is fsynced: a reader sees the whole file or none of it, and a crash leaves at most a
//! stray `.*.tmp-*` file. A retried batch is written again in full, so a JSON files destination
//! is at-least-once (a line may appear in two files after a failure); SQLite is exactly-once.

mod config;
mod template;
#[cfg(test)]
mod tests;

use std::{
    io::Write,
    path::{Path, PathBuf},
    sync::Arc,
};

use chrono::{DateTime, Utc};
use serde::Serialize;
use vigil_event::Event;

pub use config::{JsonFilesConfig, JsonMode};
pub use template::{TemplateVars, VARIABLES, expand};

use crate::{Sink, StoreError};

/// Where the time of a file comes from (replaceable in tests).
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// Writes batches as JSON files.
pub struct JsonFilesSink {
    name: String,
    template: String,
    tag: Option<String>,
    tenancy: String,
    mode: JsonMode,
    clock: Clock,
}

impl std::fmt::Debug for JsonFilesSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonFilesSink")
            .field("name", &self.name)
            .field("template", &self.template)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct Document<'a> {
    data: &'a [&'a Event],
    metadata: Metadata<'a>,
}

/// The `metadata` object of a document (seed 002).
#[derive(Serialize)]
struct Metadata<'a> {
    tenancy: &'a str,
    upload_id: &'a str,
    timestamp: String,
    tag: &'a str,
    records: usize,
}

impl JsonFilesSink {
    /// A sink called `name` writing to `template` (absolute, or relative to the working
    /// directory).
    pub fn new(
        name: String,
        template: String,
        tag: Option<String>,
        tenancy: String,
        mode: JsonMode,
    ) -> JsonFilesSink {
        JsonFilesSink { name, template, tag, tenancy, mode, clock: Arc::new(Utc::now) }
    }

    /// Takes file times from `clock` instead of the system clock.
    #[must_use]
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Writes one group's file; returns its path.
    fn write_group(&self, tag: &str, events: &[&Event]) -> Result<PathBuf, StoreError> {
        let time = (self.clock)();
        let uuid = uuid::Uuid::now_v7().to_string();
        let vars = TemplateVars { tag, tenancy: &self.tenancy, uuid: &uuid, time };
        let path = PathBuf::from(expand(&self.template, &vars));
        let mut content = Vec::new();
        match self.mode {
            JsonMode::Document => {
                let document = Document {
                    data: events,
                    metadata: Metadata {
                        tenancy: &self.tenancy,
                        upload_id: &uuid,
                        timestamp: time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                        tag,
                        records: events.len(),
                    },
                };
                serde_json::to_writer(&mut content, &document)?;
                content.push(b'\n');
            }
            JsonMode::Lines => {
                match std::fs::read(&path) {
                    Ok(old) => content = old,
                    Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                    Err(err) => return Err(StoreError::io(&path, err)),
                }
                if !content.is_empty() && !content.ends_with(b"\n") {
                    content.push(b'\n');
                }
                for event in events {
                    serde_json::to_writer(&mut content, event)?;
                    content.push(b'\n');
                }
            }
        }
        write_atomically(&path, &content, &uuid)?;
        Ok(path)
    }
}

impl Sink for JsonFilesSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn write_batch(&mut self, events: &[Arc<Event>]) -> Result<(), StoreError> {
        let mut groups: Vec<(&str, Vec<&Event>)> = Vec::new();
        for event in events {
            let tag = self.tag.as_deref().unwrap_or_else(|| event.kind().as_str());
            match groups.iter_mut().find(|(it, _)| *it == tag) {
                Some((_, group)) => group.push(event),
                None => groups.push((tag, vec![event])),
            }
        }
        for (tag, group) in &groups {
            self.write_group(tag, group)?;
        }
        Ok(())
    }
}

/// Writes `content` to a temporary file beside `path`, fsyncs it, renames it over `path` and
/// fsyncs the directory.
fn write_atomically(path: &Path, content: &[u8], unique: &str) -> Result<(), StoreError> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path.parent().filter(|it| !it.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|it| StoreError::io(dir, it))?;
    let file_name = path.file_name().map(|it| it.to_string_lossy()).unwrap_or_default();
    let tmp = dir.join(format!(".{file_name}.tmp-{unique}"));
    let write = || -> std::io::Result<()> {
        let mut file =
            std::fs::OpenOptions::new().write(true).create_new(true).mode(0o640).open(&tmp)?;
        file.write_all(content)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    };
    write().map_err(|err| {
        let _ = std::fs::remove_file(&tmp);
        StoreError::io(path, err)
    })
}
