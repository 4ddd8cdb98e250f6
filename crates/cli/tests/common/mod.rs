//! Helpers every integration test binary of the `vigil` command shares: running the binary
//! under test with a clean environment, and reading its output as text.

#![allow(dead_code)] // Each test binary uses the helpers it needs.

use std::{
    path::Path,
    process::{Command, Stdio},
};

/// The `vigil` binary under test with `args`, without the developer's own `VIGIL_*` settings
/// (they must not leak into the tests).
#[allow(clippy::disallowed_methods)] // Running the binary under test is the point here.
pub fn vigil(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vigil"));
    cmd.args(args);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("VIGIL_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// Output bytes as text, invalid UTF-8 replaced.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The first sections of a test agent's configuration: `host`, its state under `dir/state`, a
/// 3 s shutdown, and the built-in host sources and the default log listener off, so that only
/// the sections the test appends run.
pub fn quiet_agent_config(dir: &Path, host: &str) -> String {
    format!(
        r#"
[agent]
host = "{host}"
state_dir = {state:?}

[runtime]
shutdown_timeout = "3s"

[sources.agent]
enabled = false

[sources.system]
enabled = false

[sources.network]
enabled = false

[listeners.log.default]
enabled = false
"#,
        state = dir.join("state").to_str().unwrap(),
    )
}

/// `vigil --config CONFIG -q run`, its output discarded and its errors piped, ready to spawn.
pub fn agent_run(config: &Path) -> Command {
    let mut cmd = vigil(&["--config", config.to_str().unwrap(), "-q", "run"]);
    cmd.stdout(Stdio::null()).stderr(Stdio::piped());
    cmd
}

/// A small deterministic generator (xorshift64): random moments and sizes without a dependency.
pub struct XorShift(pub u64);

impl XorShift {
    /// The next value below `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// The lines of a child's standard output, read on a thread so that a test can wait for them
/// with a deadline (`recv_timeout`) instead of hanging on a silent child.
pub fn stdout_lines(stdout: std::process::ChildStdout) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead;
    let (tx, rx) = std::sync::mpsc::sync_channel(1024);
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}
