//! Optional inotify wake-ups, so a line is read moments after it is written rather than at the
//! next poll.
//!
//! Polling still does all the work: an inotify event only makes the next poll come sooner. The
//! directories the globs live in are watched (not recursively); when inotify is unavailable (no
//! watches left, a filesystem without it) the source just polls, which always works.

use std::{
    collections::BTreeSet,
    path::{Component, Path, PathBuf},
    sync::Arc,
};

use notify::{RecursiveMode, Watcher};
use tokio::sync::Notify;

/// Keeps the inotify watches alive; dropping it removes them.
pub(crate) struct DirWatcher {
    _watcher: notify::RecommendedWatcher,
}

/// Watches the directories of `patterns`, calling `wake.notify_one()` on any change there.
/// `None` when nothing could be watched.
pub(crate) fn watch(source: &str, patterns: &[String], wake: Arc<Notify>) -> Option<DirWatcher> {
    let handler = move |res: notify::Result<notify::Event>| {
        if res.is_ok() {
            wake.notify_one();
        }
    };
    let mut watcher = match notify::recommended_watcher(handler) {
        Ok(it) => it,
        Err(err) => {
            tracing::debug!(source, error = %err, "No inotify; polling only");
            return None;
        }
    };
    let mut watched = 0;
    for dir in directories(patterns) {
        match watcher.watch(&dir, RecursiveMode::NonRecursive) {
            Ok(()) => watched += 1,
            Err(err) => {
                tracing::debug!(source, dir = %dir.display(), error = %err, "Cannot watch; polling it");
            }
        }
    }
    (watched > 0).then_some(DirWatcher { _watcher: watcher })
}

/// The directory each glob lives in: its components before the first one with a wildcard,
/// without the last one.
fn directories(patterns: &[String]) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    for pattern in patterns {
        let components: Vec<Component<'_>> = Path::new(pattern).components().collect();
        let mut dir = PathBuf::new();
        for it in components.iter().take(components.len().saturating_sub(1)) {
            if it.as_os_str().to_string_lossy().contains(['*', '?', '[']) {
                break;
            }
            dir.push(it);
        }
        if !dir.as_os_str().is_empty() {
            out.insert(dir);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_are_watched_through_their_literal_directory() {
        let patterns =
            ["/var/log/auth.log", "/var/log/nginx/*.log", "/srv/*/logs/x.log", "rel.log"]
                .map(str::to_owned);
        let dirs: Vec<PathBuf> = directories(&patterns).into_iter().collect();
        assert_eq!(dirs, [PathBuf::from("/srv"), "/var/log".into(), "/var/log/nginx".into()]);
    }

    #[tokio::test]
    async fn a_change_in_a_watched_directory_wakes_the_poller() {
        let dir = tempfile::tempdir().unwrap();
        let wake = Arc::new(Notify::new());
        let pattern = dir.path().join("*.log").to_string_lossy().into_owned();
        // Without inotify here the source polls only, which the other tests cover.
        let Some(_watcher) = watch("test", &[pattern], wake.clone()) else { return };
        std::fs::write(dir.path().join("a.log"), "x\n").unwrap();
        let woken = tokio::time::timeout(std::time::Duration::from_secs(20), wake.notified());
        woken.await.expect("an inotify event wakes the poller");
    }
}
