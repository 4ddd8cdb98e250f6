//! Configuration of a JSON files destination: the raw, serde-facing half of its two-phase
//! config.
//!
//! `[stores.json_files.<name>]` deserialises into [`JsonFilesConfig`];
//! [`JsonFilesConfig::build`] returns the [`StoreListener`] writing the files.
//!
//! ```toml
//! [stores.json_files.archive]
//! path = "/srv/vigil/%TAG/%YYYY/%MM/%DD/%UUID.json"
//! tenancy = "company"
//! mode = "document"
//! batch_size = 10000
//! flush_interval = "1m"
//! ```

use std::{path::Path, time::Duration};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use vigil_core::Filter;

use super::JsonFilesSink;
use crate::{BatchSettings, StoreError, StoreListener, pipeline::check_batching};

/// What a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum JsonMode {
    /// One JSON document per file: `{"data": [events…], "metadata": {"tenancy", "upload_id",
    /// "timestamp", "tag", "records"}}` (seed 002's output format).
    #[default]
    Document,
    /// One event per line (JSON lines). When the path already exists, the new lines are added
    /// to it (the whole file is rewritten under a temporary name and renamed).
    Lines,
}

/// JSON files: each batch becomes a file at a templated path, written under a temporary name
/// and renamed, so a reader never sees half a file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct JsonFilesConfig {
    /// Whether the destination runs.
    pub enabled: bool,
    /// Path template of each file, with `%TAG %TENANCY %UUID %YYYY %MM %DD %hh %mm %ss` (UTC,
    /// from one instant per file). A relative path is under the agent's state directory.
    pub path: String,
    /// `%TAG` and the metadata's `tag`. Unset: each event kind goes to its own file with the
    /// kind as its tag (`log`, `finding`, `ban`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(example = &"auth")]
    pub tag: Option<String>,
    /// `%TENANCY` and the metadata's `tenancy`.
    pub tenancy: String,
    /// `document` (one `{data, metadata}` object per file) or `lines` (one event per line).
    pub mode: JsonMode,
    /// Which events to write; by default every event.
    pub filter: Filter,
    /// Most events in one file.
    pub batch_size: usize,
    /// Longest time an event waits before its file is written.
    #[serde(with = "vigil_core::duration")]
    #[schemars(with = "String")]
    pub flush_interval: Duration,
    /// Most events kept in memory while files cannot be written; beyond it the agent waits.
    pub max_buffered_events: usize,
}

impl Default for JsonFilesConfig {
    fn default() -> Self {
        JsonFilesConfig {
            enabled: true,
            path: "json/%TAG/%YYYY/%MM/%DD/%UUID.json".to_owned(),
            tag: None,
            tenancy: "default".to_owned(),
            mode: JsonMode::Document,
            filter: Filter::any(),
            batch_size: 10_000,
            flush_interval: Duration::from_secs(60),
            max_buffered_events: 100_000,
        }
    }
}

impl JsonFilesConfig {
    /// The path template with a relative path resolved under `state_dir`.
    pub fn resolved_path(&self, state_dir: &Path) -> String {
        if Path::new(&self.path).is_absolute() {
            self.path.clone()
        } else {
            state_dir.join(&self.path).to_string_lossy().into_owned()
        }
    }

    /// How the listener batches.
    pub fn batch_settings(&self) -> BatchSettings {
        BatchSettings {
            batch_size: self.batch_size,
            flush_interval: self.flush_interval,
            max_buffered_events: self.max_buffered_events,
        }
    }

    /// The listener `store.json_files.<name>`, or `None` when disabled. Fails on an empty
    /// template or zero limits.
    pub fn build(&self, name: &str, state_dir: &Path) -> Result<Option<StoreListener>, StoreError> {
        if !self.enabled {
            return Ok(None);
        }
        if self.path.trim().is_empty() {
            return Err(StoreError::Config("json_files path is empty".to_owned()));
        }
        check_batching(self.batch_size, self.max_buffered_events, self.flush_interval)?;
        let sink = JsonFilesSink::new(
            format!("json_files.{name}"),
            self.resolved_path(state_dir),
            self.tag.clone(),
            self.tenancy.clone(),
            self.mode,
        );
        Ok(Some(StoreListener::new(
            format!("store.json_files.{name}"),
            Box::new(sink),
            self.batch_settings(),
        )))
    }
}
