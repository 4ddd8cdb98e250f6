//! Helpers every integration test binary of the `vigil` command shares: running the binary
//! under test with a clean environment, and reading its output as text.

#![allow(dead_code)] // Each test binary uses the helpers it needs.

use std::process::Command;

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
