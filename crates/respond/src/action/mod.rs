//! Actions: what a decided ban does to the host. Each takes only validated [`BanTarget`]s
//! (inside [`Entry`]s) and runs its program with an argument vector, never through a shell.
//!
//! - [`NftablesAction`]: one `inet` table with typed sets, every change in one `nft -f -` batch;
//! - [`IpsetAction`]: `hash:net` sets with timeouts through `ipset restore`;
//! - [`ExecAction`]: any program with an argument template.

mod exec;
mod ipset;
mod nftables;

use std::{
    io::{Read, Write},
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};

pub use exec::ExecAction;
pub use ipset::IpsetAction;
pub use nftables::NftablesAction;

use crate::{BansConfig, Change, RespondError};

/// Something that applies bans to the host.
pub trait Action: Send {
    /// A short name for logs and statistics (`nftables`, `ipset`, `exec.notify`).
    fn name(&self) -> &str;

    /// Applies `changes`, in order, at `now` (remaining timeouts are computed from it). A
    /// failure leaves the host as it was or partly changed; the caller then restores.
    fn apply(&mut self, changes: &[Change], now: DateTime<Utc>) -> Result<(), RespondError>;

    /// Whether a failure is repaired by restoring every ban (firewall sets: yes; a
    /// notification program, which would run once per ban: no).
    fn restores_on_failure(&self) -> bool {
        true
    }
}

/// The actions `config` enables (none when enforcement is off).
pub fn build_actions(config: &BansConfig) -> Result<Vec<Box<dyn Action>>, RespondError> {
    config.validate()?;
    let mut actions: Vec<Box<dyn Action>> = Vec::new();
    if !config.enforce {
        return Ok(actions);
    }
    if config.nftables.enabled {
        actions.push(Box::new(NftablesAction::new(&config.nftables)));
    }
    if config.ipset.enabled {
        actions.push(Box::new(IpsetAction::new(&config.ipset)));
    }
    for (name, exec) in &config.exec {
        if exec.enabled {
            actions.push(Box::new(ExecAction::new(name, exec)));
        }
    }
    Ok(actions)
}

/// An argument vector: the program, optionally run inside a network namespace.
pub(crate) fn command_line(program: &Path, netns: Option<&str>) -> Vec<std::ffi::OsString> {
    match netns {
        Some(netns) => {
            vec!["ip".into(), "netns".into(), "exec".into(), netns.into(), program.into()]
        }
        None => vec![program.into()],
    }
}

/// Runs `argv` with `input` on standard input and waits at most `timeout`; a non-zero exit is
/// an error carrying the first lines of standard error.
pub(crate) fn run(
    argv: &[std::ffi::OsString],
    input: &[u8],
    timeout: Duration,
) -> Result<(), RespondError> {
    let name = argv.first().map(|it| it.to_string_lossy().into_owned()).unwrap_or_default();
    let fail = |message: String| RespondError::Command { program: name.clone(), message };
    let (program, args) = argv.split_first().ok_or_else(|| fail("empty command".into()))?;
    // The one place Vigil starts programs: an argument vector, no shell (clippy.toml).
    #[allow(clippy::disallowed_methods)]
    let mut command = Command::new(program);
    let mut child = command
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|err| fail(format!("cannot start: {err}")))?;
    let mut stderr = child.stderr.take();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(stderr) = stderr.as_mut() {
            // Bounded: a chatty program cannot fill memory.
            let _ = stderr.take(64 * 1024).read_to_string(&mut text);
        }
        text
    });
    if let Some(mut stdin) = child.stdin.take()
        && !input.is_empty()
        && let Err(err) = stdin.write_all(input)
    {
        let _ = child.kill();
        let _ = child.wait();
        return Err(fail(format!("cannot write its input: {err}")));
    }
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(fail(format!("killed after {} s", timeout.as_secs())));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(2)),
            Err(err) => return Err(fail(format!("cannot wait: {err}"))),
        }
    };
    let stderr = reader.join().unwrap_or_default();
    if status.success() {
        return Ok(());
    }
    let first: Vec<&str> = stderr.lines().filter(|it| !it.trim().is_empty()).take(3).collect();
    Err(fail(format!("{status}: {}", first.join(" | "))))
}
