//! Where the agent keeps its state when the configuration does not say.
//!
//! Root gets the system location `/var/lib/vigil`; anyone else gets the XDG state directory,
//! `$XDG_STATE_HOME/vigil` or `~/.local/state/vigil`, so `vigil run` works for a non-root user
//! with no configuration at all.

use std::path::PathBuf;

/// The default state directory for the current user.
pub fn default_state_dir() -> PathBuf {
    state_dir_for(
        rustix::process::geteuid().is_root(),
        std::env::var_os("XDG_STATE_HOME").map(PathBuf::from),
        std::env::var_os("HOME").map(PathBuf::from),
    )
}

fn state_dir_for(root: bool, xdg_state_home: Option<PathBuf>, home: Option<PathBuf>) -> PathBuf {
    if root {
        return PathBuf::from("/var/lib/vigil");
    }
    // The XDG spec says a relative value is invalid and must be ignored.
    if let Some(dir) = xdg_state_home.filter(|it| it.is_absolute()) {
        return dir.join("vigil");
    }
    match home.filter(|it| it.is_absolute()) {
        Some(home) => home.join(".local/state/vigil"),
        None => std::env::temp_dir().join(format!("vigil-{}", rustix::process::geteuid().as_raw())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_xdg_home_and_fallback() {
        let p = |s: &str| Some(PathBuf::from(s));
        assert_eq!(state_dir_for(true, p("/x"), p("/home/a")), PathBuf::from("/var/lib/vigil"));
        assert_eq!(state_dir_for(false, p("/x"), p("/home/a")), PathBuf::from("/x/vigil"));
        assert_eq!(
            state_dir_for(false, p("relative"), p("/home/a")),
            PathBuf::from("/home/a/.local/state/vigil")
        );
        assert!(state_dir_for(false, None, None).starts_with(std::env::temp_dir()));
    }
}
