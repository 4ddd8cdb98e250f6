//! Checkpoints: how far each file has been read *and acknowledged*, kept across restarts.
//!
//! # On-disk format (version 1)
//!
//! One JSON file per source, `<checkpoint_dir>/<source name>.json`:
//!
//! ```json
//! {
//!   "version": 1,
//!   "files": [
//!     {
//!       "path": "/var/log/auth.log",
//!       "stream": "file:2049:131077:5f0e1c2d3b4a6978",
//!       "dev": 2049,
//!       "ino": 131077,
//!       "fingerprint_len": 256,
//!       "fingerprint": "5f0e1c2d3b4a6978",
//!       "offset": 48213
//!     }
//!   ]
//! }
//! ```
//!
//! - `path`: the watched path the file was found at (a rotated file keeps its original path).
//! - `stream`: the file instance's name, which every line read from it carries in its
//!   `origin`; absent while nothing was read from an empty file.
//! - `dev`, `ino`: device and inode numbers when the file was first seen.
//! - `fingerprint_len`, `fingerprint`: FNV-1a 64 (16 hex digits) of the file's first
//!   `fingerprint_len` bytes (at most 256).
//! - `offset`: the byte offset just after the last line the downstream acknowledged; reading
//!   resumes here.
//! - `cuts` (optional): ends of joined multi-line records, after `offset`, that the
//!   `multiline_timeout` decided (the next line was not written yet); a restart ends the
//!   records it joins again at the same places.
//!
//! Files that are being finished (rotated away but not yet fully acknowledged) come first, in
//! the order they must be read, then the active files. Unknown keys are ignored on reading.
//!
//! # Atomicity
//!
//! A checkpoint is written to `<name>.json.tmp`, flushed with `fsync`, renamed over
//! `<name>.json`, and the directory is `fsync`ed, so after a crash the file holds either the old
//! or the new checkpoint, never a mix. A left-over `.tmp` file (a crash before the rename) is
//! never read and is overwritten by the next write.

use std::{
    fs::{self, File, OpenOptions},
    io::{ErrorKind, Write},
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

use crate::{TailError, fingerprint::Fingerprint};

/// The current format version.
const VERSION: u32 = 1;

/// One file's checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FileCheckpoint {
    pub(crate) path: PathBuf,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) stream: Option<String>,
    pub(crate) dev: u64,
    pub(crate) ino: u64,
    pub(crate) fingerprint_len: u32,
    pub(crate) fingerprint: String,
    pub(crate) offset: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) cuts: Vec<u64>,
}

impl FileCheckpoint {
    /// The stored fingerprint, if its hex is valid.
    pub(crate) fn fingerprint(&self) -> Option<Fingerprint> {
        let hash = u64::from_str_radix(&self.fingerprint, 16).ok()?;
        Some(Fingerprint { len: self.fingerprint_len, hash })
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct CheckpointFile {
    version: u32,
    files: Vec<FileCheckpoint>,
}

/// Reads and writes one source's checkpoint file.
#[derive(Debug, Clone)]
pub(crate) struct CheckpointStore {
    path: PathBuf,
    tmp: PathBuf,
}

impl CheckpointStore {
    /// The store of source `name` in `dir` (the directory is created on the first write).
    pub(crate) fn new(dir: &Path, name: &str) -> CheckpointStore {
        let safe: String = name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' })
            .collect();
        CheckpointStore {
            path: dir.join(format!("{safe}.json")),
            tmp: dir.join(format!("{safe}.json.tmp")),
        }
    }

    /// The checkpoint file's path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The saved checkpoints, or `None` when none was ever written.
    pub(crate) fn load(&self) -> Result<Option<Vec<FileCheckpoint>>, TailError> {
        let text = match fs::read(&self.path) {
            Ok(it) => it,
            Err(err) if err.kind() == ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(TailError::io(&self.path, err)),
        };
        let file: CheckpointFile = serde_json::from_slice(&text).map_err(|err| {
            TailError::Checkpoint { path: self.path.clone(), message: err.to_string() }
        })?;
        if file.version != VERSION {
            return Err(TailError::Checkpoint {
                path: self.path.clone(),
                message: format!("unknown version {}", file.version),
            });
        }
        Ok(Some(file.files))
    }

    /// Replaces the saved checkpoints atomically; durable when it returns.
    pub(crate) fn save(&self, files: &[FileCheckpoint]) -> Result<(), TailError> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir).map_err(|err| TailError::io(dir, err))?;
        let body =
            serde_json::to_vec_pretty(&CheckpointFile { version: VERSION, files: files.to_vec() })
                .map_err(|err| TailError::Checkpoint {
                    path: self.path.clone(),
                    message: err.to_string(),
                })?;
        let write = || -> std::io::Result<()> {
            let mut tmp =
                OpenOptions::new().write(true).create(true).truncate(true).open(&self.tmp)?;
            tmp.write_all(&body)?;
            tmp.sync_all()
        };
        write().map_err(|err| TailError::io(&self.tmp, err))?;
        fs::rename(&self.tmp, &self.path).map_err(|err| TailError::io(&self.path, err))?;
        File::open(dir).and_then(|it| it.sync_all()).map_err(|err| TailError::io(dir, err))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(offset: u64) -> FileCheckpoint {
        FileCheckpoint {
            path: "/var/log/auth.log".into(),
            stream: Some("file:1:2:00000000000000ff".into()),
            dev: 1,
            ino: 2,
            fingerprint_len: 3,
            fingerprint: "00000000000000ff".into(),
            offset,
            cuts: Vec::new(),
        }
    }

    #[test]
    fn checkpoints_round_trip_and_a_torn_temp_file_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let store = CheckpointStore::new(&dir.path().join("checkpoints"), "files.auth");
        assert_eq!(store.load().unwrap(), None, "nothing saved yet");
        store.save(&[sample(10)]).unwrap();
        assert_eq!(store.load().unwrap(), Some(vec![sample(10)]));
        assert_eq!(sample(10).fingerprint(), Some(Fingerprint { len: 3, hash: 255 }));

        // A crash in the middle of the next write leaves a torn temp file behind.
        fs::write(&store.tmp, b"{\"version\":1,\"files\":[{\"pa").unwrap();
        assert_eq!(store.load().unwrap(), Some(vec![sample(10)]), "the torn file is not read");
        store.save(&[sample(20)]).unwrap();
        assert_eq!(store.load().unwrap(), Some(vec![sample(20)]));
        assert!(!store.tmp.exists(), "the temp file was renamed into place");

        fs::write(store.path(), b"not json").unwrap();
        let err = store.load().unwrap_err();
        assert!(err.to_string().contains("unreadable checkpoint"), "{err}");
        assert!(err.to_string().contains("files.auth.json"), "{err}");
    }
}
