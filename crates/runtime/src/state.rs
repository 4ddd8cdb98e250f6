//! The default state store: one JSON file per key in the agent's state directory.
//!
//! On-disk format: `<dir>/<key>.json`, UTF-8 JSON, written to `<key>.json.tmp`, fsynced and
//! renamed over the old file (then the directory is fsynced), so a crash leaves either the old
//! or the new state, never half of one. Keys are component names; characters outside
//! `[A-Za-z0-9_.-]` are replaced by `_`.

use std::{
    fs,
    io::Write,
    path::{Path, PathBuf},
};

use vigil_core::{ComponentError, StateStore};
use vigil_event::Value;

/// Keeps component state as JSON files in a directory.
#[derive(Debug, Clone)]
pub struct FileStateStore {
    dir: PathBuf,
}

impl FileStateStore {
    /// A store in `dir`, created (with parents) if missing.
    pub fn open(dir: impl Into<PathBuf>) -> Result<FileStateStore, ComponentError> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(|err| ComponentError::io(&dir, err))?;
        Ok(FileStateStore { dir })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, key: &str) -> PathBuf {
        let safe: String = key
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || "_.-".contains(c) { c } else { '_' })
            .collect();
        self.dir.join(format!("{safe}.json"))
    }
}

impl StateStore for FileStateStore {
    fn load(&self, key: &str) -> Result<Option<Value>, ComponentError> {
        let path = self.path(key);
        let text = match fs::read_to_string(&path) {
            Ok(it) => it,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(ComponentError::io(path, err)),
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|err| ComponentError::msg(format!("{}: invalid state: {err}", path.display())))
    }

    fn save(&self, key: &str, value: &Value) -> Result<(), ComponentError> {
        let path = self.path(key);
        let tmp = path.with_extension("json.tmp");
        let write = || -> std::io::Result<()> {
            let mut file = fs::File::create(&tmp)?;
            serde_json::to_writer(&mut file, value)?;
            file.write_all(b"\n")?;
            file.sync_all()?;
            fs::rename(&tmp, &path)?;
            fs::File::open(&self.dir)?.sync_all()
        };
        write().map_err(|err| ComponentError::io(&path, err))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_atomically_and_loads_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStateStore::open(dir.path().join("state")).unwrap();
        assert_eq!(store.load("detector.report").unwrap(), None);
        store.save("detector.report", &serde_json::json!({"total": 3})).unwrap();
        store.save("detector.report", &serde_json::json!({"total": 4})).unwrap();
        assert_eq!(store.load("detector.report").unwrap(), Some(serde_json::json!({"total": 4})));
        assert!(store.dir().join("detector.report.json").exists());
        assert!(!store.dir().join("detector.report.json.tmp").exists());
        store.save("../escape", &serde_json::json!(1)).unwrap();
        assert!(store.dir().join(".._escape.json").exists());
        fs::write(store.dir().join("bad.json"), "{not json").unwrap();
        assert!(store.load("bad").unwrap_err().to_string().contains("invalid state"));
    }
}
