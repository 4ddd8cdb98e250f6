//! How `vigil bans` and `vigil unban` reach the ban manager: files under the state directory.
//!
//! - `<state_dir>/state/detector.bans.json` — the manager's persisted [`crate::BanState`],
//!   written by the runtime's state store every `health_check_interval` and on shutdown;
//! - `<state_dir>/control/agent.lock` — held (`flock`, exclusive) while an agent's ban manager
//!   runs, so the CLI knows whether one is listening; a crashed agent releases it;
//! - `<state_dir>/control/unban-*.req` — an operator's unban request (the address), written
//!   atomically; the running manager consumes it on its next tick and answers in `*.done`.

use std::{
    fs,
    io::Write,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use rustix::fs::FlockOperation;

use crate::RespondError;

/// The ban manager's detector name; its state key is `detector.bans`.
pub const DETECTOR_NAME: &str = "bans";

/// Longest request file read, in bytes.
const MAX_REQUEST: u64 = 256;
/// Most requests handled per tick.
const MAX_REQUESTS_PER_TICK: usize = 64;

/// The persisted ban state of the agent using `state_dir`.
pub fn state_file(state_dir: &Path) -> PathBuf {
    state_dir.join("state").join(format!("detector.{DETECTOR_NAME}.json"))
}

/// The control directory of the agent using `state_dir`.
#[derive(Debug, Clone)]
pub struct Control {
    dir: PathBuf,
}

/// The lock a running manager holds; released when dropped (or when the process ends).
#[derive(Debug)]
pub struct AgentLock {
    _file: fs::File,
}

impl Control {
    /// The control directory under `state_dir` (not created yet).
    pub fn new(state_dir: &Path) -> Control {
        Control { dir: state_dir.join("control") }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn lock_path(&self) -> PathBuf {
        self.dir.join("agent.lock")
    }

    /// Takes the agent lock; an error when another agent holds it.
    pub fn lock(&self) -> Result<AgentLock, RespondError> {
        fs::create_dir_all(&self.dir).map_err(|err| RespondError::io(&self.dir, err))?;
        let path = self.lock_path();
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|err| RespondError::io(&path, err))?;
        rustix::fs::flock(&file, FlockOperation::NonBlockingLockExclusive).map_err(|err| {
            if err == rustix::io::Errno::WOULDBLOCK {
                RespondError::Config(format!(
                    "another agent's ban manager holds {}: one agent per state directory",
                    path.display()
                ))
            } else {
                RespondError::io(&path, err.into())
            }
        })?;
        Ok(AgentLock { _file: file })
    }

    /// Whether a running agent's ban manager holds the lock.
    pub fn agent_running(&self) -> bool {
        let Ok(file) = fs::File::open(self.lock_path()) else { return false };
        match rustix::fs::flock(&file, FlockOperation::NonBlockingLockShared) {
            Ok(()) => {
                let _ = rustix::fs::flock(&file, FlockOperation::Unlock);
                false
            }
            Err(_) => true,
        }
    }

    /// Asks the running manager to lift the ban of `address`; returns the request's path.
    pub fn request_unban(&self, address: &str) -> Result<PathBuf, RespondError> {
        fs::create_dir_all(&self.dir).map_err(|err| RespondError::io(&self.dir, err))?;
        let stamp = chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default();
        let name = format!("unban-{stamp}-{}", std::process::id());
        let path = self.dir.join(format!("{name}.req"));
        write_atomically(&path, address.as_bytes())?;
        Ok(path)
    }

    /// Waits up to `timeout` for the answer to the request at `request`: `Ok` with the
    /// manager's message (`unbanned …` or the error), or `None` when none came.
    pub fn wait_answer(&self, request: &Path, timeout: Duration) -> Option<Result<String, String>> {
        let answer = request.with_extension("done");
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(text) = fs::read_to_string(&answer) {
                let _ = fs::remove_file(&answer);
                return Some(match text.strip_prefix("ok ") {
                    Some(message) => Ok(message.trim().to_owned()),
                    None => Err(text.strip_prefix("error ").unwrap_or(&text).trim().to_owned()),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// Takes the pending requests (oldest first, at most 64): their paths and addresses.
    pub fn take_requests(&self) -> Vec<(PathBuf, String)> {
        let Ok(entries) = fs::read_dir(&self.dir) else { return Vec::new() };
        let mut paths: Vec<PathBuf> = entries
            .flatten()
            .map(|it| it.path())
            .filter(|it| it.extension().is_some_and(|ext| ext == "req"))
            .collect();
        paths.sort();
        paths.truncate(MAX_REQUESTS_PER_TICK);
        paths
            .into_iter()
            .filter_map(|path| {
                let text = fs::File::open(&path).ok().and_then(|file| {
                    let mut text = String::new();
                    std::io::Read::read_to_string(
                        &mut std::io::Read::take(file, MAX_REQUEST),
                        &mut text,
                    )
                    .ok()
                    .map(|_| text)
                });
                let _ = fs::remove_file(&path);
                Some((path, text?.trim().to_owned()))
            })
            .collect()
    }

    /// Answers the request at `request`.
    pub fn answer(&self, request: &Path, result: Result<String, String>) {
        let text = match result {
            Ok(message) => format!("ok {message}\n"),
            Err(message) => format!("error {message}\n"),
        };
        if let Err(err) = write_atomically(&request.with_extension("done"), text.as_bytes()) {
            tracing::warn!(error = %err, "Could not answer an unban request");
        }
    }
}

/// Writes `bytes` to `path` through a temporary file and a rename.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), RespondError> {
    let tmp = path.with_extension("tmp");
    let write = || -> std::io::Result<()> {
        let mut file = fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    };
    write().map_err(|err| RespondError::io(path, err))
}
