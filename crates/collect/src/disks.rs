//! Filesystem usage with a deadline: which mounts count, and `statvfs` that cannot hang us.
//!
//! `statvfs` on a dead NFS or FUSE mount blocks in the kernel, and a blocked thread cannot be
//! interrupted. So the mounts are probed on a worker thread, and the collector waits for its
//! answers only until the deadline; a mount still unanswered is reported as failed
//! (`filesystem:<mountpoint>`). The probe stuck on it is remembered, and later samples report
//! that mount as failed at once instead of piling up more stuck threads behind it.

use std::{
    collections::HashSet,
    io,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, mpsc},
    time::{Duration, Instant},
};

use procfs::MountEntry;
use vigil_event::DiskUsage;

/// Filesystem types that hold no user data: kernel interfaces, memory-backed and stacked
/// filesystems, read-only images. Their usage is noise (or a double count).
const PSEUDO_FILESYSTEMS: &[&str] = &[
    "autofs",
    "binfmt_misc",
    "bpf",
    "cgroup",
    "cgroup2",
    "configfs",
    "debugfs",
    "devpts",
    "devtmpfs",
    "efivarfs",
    "fusectl",
    "fuse.lxcfs",
    "fuse.portal",
    "hugetlbfs",
    "mqueue",
    "nsfs",
    "overlay",
    "proc",
    "procfs",
    "pstore",
    "ramfs",
    "rpc_pipefs",
    "securityfs",
    "selinuxfs",
    "squashfs",
    "erofs",
    "sysfs",
    "tmpfs",
    "tracefs",
    "iso9660",
];

/// Mount points under which only the kernel's and container runtimes' own mounts live.
const PSEUDO_MOUNT_PREFIXES: &[&str] =
    &["/proc", "/sys", "/dev", "/run/credentials", "/var/lib/docker/", "/var/lib/containers/"];

/// Whether a mount is a real filesystem worth reporting.
pub fn is_real_mount(entry: &MountEntry) -> bool {
    if PSEUDO_FILESYSTEMS.contains(&entry.fs_vfstype.as_str()) {
        return false;
    }
    let mount = entry.fs_file.as_str();
    !PSEUDO_MOUNT_PREFIXES.iter().any(|prefix| {
        mount.starts_with(prefix)
            && (prefix.ends_with('/')
                || mount.len() == prefix.len()
                || mount.as_bytes().get(prefix.len()) == Some(&b'/'))
    })
}

/// Space figures of one filesystem, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FsSpace {
    /// Size.
    pub total: u64,
    /// Free, including the blocks reserved for root.
    pub free: u64,
    /// Available to unprivileged users.
    pub available: u64,
}

/// How a mount's space is read: `statvfs` on the live host, something else in tests.
pub type StatFs = Arc<dyn Fn(&Path) -> io::Result<FsSpace> + Send + Sync>;

/// `statvfs(2)`.
pub fn statvfs(path: &Path) -> io::Result<FsSpace> {
    let it = rustix::fs::statvfs(path)?;
    let block = it.f_frsize.max(1);
    Ok(FsSpace {
        total: it.f_blocks.saturating_mul(block),
        free: it.f_bfree.saturating_mul(block),
        available: it.f_bavail.saturating_mul(block),
    })
}

/// Probes mounts under a deadline; remembers the mounts whose probe is stuck.
#[derive(Clone)]
pub struct DiskProber {
    stat: StatFs,
    deadline: Duration,
    stuck: Arc<Mutex<HashSet<String>>>,
}

impl std::fmt::Debug for DiskProber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiskProber").field("deadline", &self.deadline).finish_non_exhaustive()
    }
}

impl DiskProber {
    /// A prober using `stat`, waiting at most `deadline` per sample.
    pub fn new(stat: StatFs, deadline: Duration) -> DiskProber {
        DiskProber { stat, deadline, stuck: Arc::default() }
    }

    /// Usage of each mount that answered in time, and the mount points that did not (or whose
    /// probe failed).
    pub fn probe(&self, mounts: Vec<MountEntry>) -> (Vec<DiskUsage>, Vec<String>) {
        let mut failed = Vec::new();
        let stuck = self.stuck.lock().map(|it| it.clone()).unwrap_or_default();
        let (todo, skipped): (Vec<_>, Vec<_>) =
            mounts.into_iter().partition(|it| !stuck.contains(&it.fs_file));
        failed.extend(skipped.into_iter().map(|it| it.fs_file));
        if todo.is_empty() {
            return (Vec::new(), failed);
        }

        let (tx, rx) = mpsc::sync_channel::<(usize, io::Result<FsSpace>)>(todo.len());
        let paths: Vec<String> = todo.iter().map(|it| it.fs_file.clone()).collect();
        let stat = self.stat.clone();
        let stuck_set = self.stuck.clone();
        let spawned = std::thread::Builder::new().name("vigil-statvfs".into()).spawn(move || {
            for (index, mount) in paths.into_iter().enumerate() {
                if let Ok(mut set) = stuck_set.lock() {
                    set.insert(mount.clone());
                }
                let result = stat(&PathBuf::from(&mount));
                if let Ok(mut set) = stuck_set.lock() {
                    set.remove(&mount);
                }
                if tx.send((index, result)).is_err() {
                    return;
                }
            }
        });
        if let Err(err) = spawned {
            tracing::warn!(error = %err, "Could not start the filesystem probe");
            failed.extend(todo.into_iter().map(|it| it.fs_file));
            return (Vec::new(), failed);
        }

        let until = Instant::now() + self.deadline;
        let mut answers: Vec<Option<io::Result<FsSpace>>> = todo.iter().map(|_| None).collect();
        let mut pending = todo.len();
        while pending > 0 {
            let left = until.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok((index, result)) => {
                    if let Some(slot) = answers.get_mut(index) {
                        *slot = Some(result);
                    }
                    pending -= 1;
                }
                Err(_) => break,
            }
        }

        let mut disks = Vec::new();
        for (entry, answer) in todo.into_iter().zip(answers) {
            match answer {
                Some(Ok(space)) if space.total > 0 => disks.push(DiskUsage {
                    mount: entry.fs_file,
                    fs: entry.fs_vfstype,
                    total_bytes: space.total,
                    available_bytes: space.available,
                    device: Some(entry.fs_spec),
                    free_bytes: Some(space.free),
                }),
                // An empty filesystem (size 0) is a pseudo one that slipped through the list.
                Some(Ok(_)) => {}
                Some(Err(err)) => {
                    tracing::debug!(mount = %entry.fs_file, error = %err, "Could not statvfs");
                    failed.push(entry.fs_file);
                }
                None => {
                    tracing::warn!(
                        mount = %entry.fs_file,
                        deadline = ?self.deadline,
                        "Filesystem did not answer statvfs before the deadline"
                    );
                    failed.push(entry.fs_file);
                }
            }
        }
        (disks, failed)
    }
}

/// Whether a `/proc/diskstats` name is a whole disk (sda, vda, xvda, nvme0n1, mmcblk0, dm-0,
/// md0, …) rather than a partition or a loop, RAM or floppy device.
pub fn is_whole_disk(name: &str) -> bool {
    let trailing_digits =
        |s: &str| s.len() - s.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    for prefix in ["loop", "ram", "zram", "fd"] {
        if let Some(rest) = name.strip_prefix(prefix)
            && !rest.is_empty()
            && rest.bytes().all(|b| b.is_ascii_digit())
        {
            return false;
        }
    }
    // sda1, vdb2, xvda1, hda3: letters after the prefix, then a partition number.
    for prefix in ["sd", "vd", "xvd", "hd"] {
        if let Some(rest) = name.strip_prefix(prefix) {
            let digits = trailing_digits(rest);
            let letters = &rest[..rest.len() - digits];
            if !letters.is_empty() && letters.bytes().all(|b| b.is_ascii_lowercase()) {
                return digits == 0;
            }
        }
    }
    // nvme0n1p1, mmcblk0p1, loop0p1: `p` and a number after the device.
    if name.starts_with("nvme") || name.starts_with("mmcblk") {
        let digits = trailing_digits(name);
        let head = &name[..name.len() - digits];
        return !(digits > 0 && head.ends_with('p') && head.len() > 1 && {
            let before = &head[..head.len() - 1];
            before.ends_with(|c: char| c.is_ascii_digit())
        });
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_disks_are_told_from_partitions() {
        for name in
            ["sda", "vda", "xvda", "hdb", "nvme0n1", "nvme10n2", "mmcblk0", "dm-0", "md127", "sr0"]
        {
            assert!(is_whole_disk(name), "{name}");
        }
        for name in
            ["sda1", "vda15", "xvda1", "nvme0n1p1", "mmcblk0p2", "loop0", "ram3", "zram0", "fd0"]
        {
            assert!(!is_whole_disk(name), "{name}");
        }
    }

    fn mount(spec: &str, file: &str, fs: &str) -> MountEntry {
        let line = format!("{spec} {file} {fs} rw 0 0\n");
        let mut it: Vec<MountEntry> = procfs::FromRead::from_read(line.as_bytes()).unwrap();
        it.remove(0)
    }

    #[test]
    fn pseudo_mounts_are_skipped() {
        assert!(is_real_mount(&mount("/dev/vda1", "/", "ext4")));
        assert!(is_real_mount(&mount("server:/export", "/mnt/nfs", "nfs4")));
        assert!(is_real_mount(&mount("/dev/sdb1", "/devices", "xfs")));
        assert!(!is_real_mount(&mount("proc", "/proc", "proc")));
        assert!(!is_real_mount(&mount("tmpfs", "/run", "tmpfs")));
        assert!(!is_real_mount(&mount("/dev/loop0", "/snap/core/1", "squashfs")));
        assert!(!is_real_mount(&mount("/dev/vda1", "/var/lib/docker/overlay2/x", "ext4")));
        assert!(!is_real_mount(&mount("/dev/vda1", "/dev/shm/x", "ext4")));
    }

    #[test]
    fn a_hung_mount_is_reported_failed_within_the_deadline_and_skipped_while_stuck() {
        let (release_tx, release_rx) = mpsc::sync_channel::<()>(1);
        let release_rx = Arc::new(Mutex::new(release_rx));
        let stat: StatFs = Arc::new(move |path: &Path| {
            if path == Path::new("/mnt/hung") {
                // Blocks like statvfs on a dead NFS server, until the test lets it go.
                let _ = release_rx.lock().unwrap().recv();
            }
            Ok(FsSpace { total: 100, free: 50, available: 40 })
        });
        let prober = DiskProber::new(stat, Duration::from_millis(200));
        let mounts = || vec![mount("/dev/vda1", "/", "ext4"), mount("srv:/x", "/mnt/hung", "nfs")];

        let (disks, failed) = prober.probe(mounts());
        assert_eq!(disks.len(), 1);
        assert_eq!(disks[0].mount, "/");
        assert_eq!(disks[0].available_bytes, 40);
        assert_eq!(failed, ["/mnt/hung"]);

        // Still stuck: reported at once, and no second probe thread queues behind it.
        let (disks, failed) = prober.probe(mounts());
        assert_eq!((disks.len(), failed.as_slice()), (1, &["/mnt/hung".to_owned()][..]));

        release_tx.send(()).unwrap();
        let mut tries = 0;
        while prober.stuck.lock().unwrap().contains("/mnt/hung") && tries < 500 {
            std::thread::sleep(Duration::from_millis(10));
            tries += 1;
        }
        release_tx.send(()).unwrap();
        let (disks, failed) = prober.probe(mounts());
        assert_eq!(disks.len(), 2, "{failed:?}");
        assert!(failed.is_empty());
    }
}
