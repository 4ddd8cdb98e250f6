//! The exec listener: runs a program per event with templated arguments, never through a shell.
//!
//! Each argument template renders to exactly one element of the argument vector handed to the
//! program (`tokio::process::Command`, which calls `execve` directly), so text from an event —
//! a user name with spaces, `; rm -rf /`, `$(…)` — is one literal argument and is never parsed by
//! a shell. The program gets a cleared environment with only `PATH=/usr/sbin:/usr/bin:/sbin:/bin`
//! and `LANG=C.UTF-8`, and the rendered `message` (if configured) on standard input.
//!
//! Runs are bounded: at most `max_concurrent` at once (the rest of a batch waits for a slot; the
//! runtime's queue is the buffer behind it), each killed after `timeout`. Standard output and
//! standard error are read up to [`MAX_OUTPUT_BYTES`] each (the rest is drained and discarded).
//! Every run is logged with its exit status and standard error (standard output at debug level);
//! a failed run (spawn error, non-zero status, signal,
//! timeout) is logged as a warning with its standard error cut to one line, counted in
//! [`ExecStats`], and returned as the batch's error so it reaches the agent's health.

use std::{
    path::PathBuf,
    process::Stdio,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use async_trait::async_trait;
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWriteExt},
    sync::Semaphore,
    task::JoinSet,
};
use vigil_core::{ComponentError, Filter, Listener};
use vigil_event::{Event, one_line};

use super::ExecConfig;
use crate::Template;

/// Most bytes kept of a run's standard output and of its standard error.
pub const MAX_OUTPUT_BYTES: usize = 16 * 1024;

/// How much of standard error is logged, in characters.
const LOGGED_STDERR_CHARS: usize = 500;

/// Counters of one exec listener since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExecStats {
    /// Runs that exited with status 0.
    pub succeeded: u64,
    /// Runs that could not start, exited non-zero or were killed by a signal.
    pub failed: u64,
    /// Runs killed because they outlived `timeout` (also counted in `failed`).
    pub timed_out: u64,
}

#[derive(Default)]
struct Counters {
    succeeded: AtomicU64,
    failed: AtomicU64,
    timed_out: AtomicU64,
}

/// Runs a program for each event it handles.
#[derive(Debug)]
pub struct ExecListener {
    filter: Filter,
    command: Arc<CommandSpec>,
    slots: Arc<Semaphore>,
    counters: Arc<Counters>,
}

impl std::fmt::Debug for Counters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Counters").finish_non_exhaustive()
    }
}

/// What to run, shared with the run tasks.
#[derive(Debug)]
struct CommandSpec {
    program: PathBuf,
    args: Vec<Template>,
    message: Option<Template>,
    timeout: Duration,
}

impl ExecListener {
    /// The listener's name.
    pub const NAME: &'static str = "exec";

    /// A listener configured by `config` (not checked again; see [`ExecConfig::build`]).
    pub(super) fn new(config: &ExecConfig) -> ExecListener {
        ExecListener {
            filter: config.filter.clone(),
            command: Arc::new(CommandSpec {
                program: config.program.clone(),
                args: config.args.clone(),
                message: config.message.clone(),
                timeout: config.timeout,
            }),
            slots: Arc::new(Semaphore::new(config.max_concurrent)),
            counters: Arc::new(Counters::default()),
        }
    }

    /// The filter the runtime registers the listener with.
    pub fn filter(&self) -> &Filter {
        &self.filter
    }

    /// The listener's counters.
    pub fn stats(&self) -> ExecStats {
        ExecStats {
            succeeded: self.counters.succeeded.load(Ordering::Relaxed),
            failed: self.counters.failed.load(Ordering::Relaxed),
            timed_out: self.counters.timed_out.load(Ordering::Relaxed),
        }
    }
}

#[async_trait]
impl Listener for ExecListener {
    fn name(&self) -> &str {
        ExecListener::NAME
    }

    async fn handle(&mut self, events: &[Arc<Event>]) -> Result<(), ComponentError> {
        let mut runs = JoinSet::new();
        for event in events {
            let Ok(slot) = Arc::clone(&self.slots).acquire_owned().await else {
                return Err(ComponentError::msg("exec: the run slots are closed"));
            };
            let (command, counters, event) =
                (Arc::clone(&self.command), Arc::clone(&self.counters), Arc::clone(event));
            runs.spawn(async move {
                let result = command.run(&event, &counters).await;
                drop(slot);
                result
            });
        }
        let mut failures = 0_u64;
        let mut first = None;
        while let Some(joined) = runs.join_next().await {
            let result = joined.unwrap_or_else(|err| Err(format!("run task failed: {err}")));
            if let Err(err) = result {
                failures += 1;
                first.get_or_insert(err);
            }
        }
        match first {
            None => Ok(()),
            Some(first) => Err(ComponentError::msg(format!(
                "exec: {failures} of {} runs failed; first: {first}",
                events.len()
            ))),
        }
    }
}

impl CommandSpec {
    /// Runs the program once for `event`; the error says why the run failed.
    async fn run(&self, event: &Event, counters: &Counters) -> Result<(), String> {
        let program = self.program.display().to_string();
        let result = self.spawn_and_wait(event).await;
        match &result {
            Ok(()) => {
                counters.succeeded.fetch_add(1, Ordering::Relaxed);
            }
            Err(RunError::TimedOut) => {
                counters.failed.fetch_add(1, Ordering::Relaxed);
                counters.timed_out.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(program, event_id = %event.id, timeout = ?self.timeout, "Command timed out; killed it");
            }
            Err(RunError::Failed { status, stderr }) => {
                counters.failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(program, event_id = %event.id, status, stderr, "Command failed");
            }
        }
        result.map_err(|err| match err {
            RunError::TimedOut => format!("{program}: timed out after {:?}", self.timeout),
            RunError::Failed { status, stderr } if stderr.is_empty() => {
                format!("{program}: {status}")
            }
            RunError::Failed { status, stderr } => format!("{program}: {status}: {stderr}"),
        })
    }

    async fn spawn_and_wait(&self, event: &Event) -> Result<(), RunError> {
        let args: Vec<String> = self
            .args
            .iter()
            .map(|it| it.render(event).unwrap_or_else(|err| {
                tracing::warn!(listener = ExecListener::NAME, error = %err, "Could not render an argument; passing it empty");
                String::new()
            }))
            .collect();
        let stdin = self.message.as_ref().map(|it| it.render_or_summary(event, ExecListener::NAME));
        let mut child = tokio::process::Command::new(&self.program)
            .args(&args)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("LANG", "C.UTF-8")
            .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|err| RunError::Failed {
                status: format!("cannot start: {err}"),
                stderr: String::new(),
            })?;
        let input = child.stdin.take();
        let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
        let work = async {
            let feed = async {
                if let (Some(mut pipe), Some(text)) = (input, stdin) {
                    // A program that does not read its input closes the pipe; that is fine.
                    let _ = pipe.write_all(text.as_bytes()).await;
                }
            };
            let ((), out, err, status) =
                tokio::join!(feed, read_capped(stdout), read_capped(stderr), child.wait());
            (out, err, status)
        };
        let Ok((stdout, stderr, status)) = tokio::time::timeout(self.timeout, work).await else {
            // `kill_on_drop` also covers this; killing here reaps the child at once.
            let _ = child.kill().await;
            return Err(RunError::TimedOut);
        };
        let stderr = one_line(&String::from_utf8_lossy(&stderr), LOGGED_STDERR_CHARS);
        let status = status.map_err(|err| RunError::Failed {
            status: format!("cannot wait: {err}"),
            stderr: stderr.clone(),
        })?;
        if status.success() {
            tracing::info!(
                program = %self.program.display(),
                event_id = %event.id,
                status = %status,
                stderr,
                "Command finished"
            );
            tracing::debug!(
                program = %self.program.display(),
                stdout = one_line(&String::from_utf8_lossy(&stdout), LOGGED_STDERR_CHARS),
                "Command output"
            );
            return Ok(());
        }
        Err(RunError::Failed { status: status.to_string(), stderr })
    }
}

enum RunError {
    TimedOut,
    Failed { status: String, stderr: String },
}

/// Reads `pipe` keeping at most [`MAX_OUTPUT_BYTES`]; the rest is read and discarded so the
/// program never blocks on a full pipe.
async fn read_capped(pipe: Option<impl AsyncRead + Unpin>) -> Vec<u8> {
    let mut kept = Vec::new();
    let Some(pipe) = pipe else { return kept };
    let mut limited = pipe.take(MAX_OUTPUT_BYTES as u64);
    let _ = limited.read_to_end(&mut kept).await;
    let _ = tokio::io::copy(&mut limited.into_inner(), &mut tokio::io::sink()).await;
    kept
}
