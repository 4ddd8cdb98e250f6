//! Where the collectors read `/proc` from: the live one, or a captured tree in tests.
//!
//! Every collector takes a [`ProcRoot`] instead of hard-coding `/proc`, so the fixtures under
//! `test_data/` (captured `/proc` trees named by distro and kernel) run through exactly the code
//! that reads the live host. The root also carries the system facts `procfs` needs to interpret
//! some files (clock ticks, page size, byte order, boot time).

use std::path::{Path, PathBuf};

use procfs::{ExplicitSystemInfo, FromRead, FromReadSI, KernelStats};

/// `f_type` of a procfs mount (`statfs(2)`).
const PROC_SUPER_MAGIC: i64 = 0x9fa0;

/// A `/proc` tree and the facts needed to read it.
#[derive(Debug, Clone)]
pub struct ProcRoot {
    path: PathBuf,
    info: ExplicitSystemInfo,
    is_procfs: bool,
}

impl ProcRoot {
    /// The live `/proc` of this host.
    pub fn live() -> ProcRoot {
        let local = procfs::current_system_info();
        ProcRoot::with_info(
            "/proc",
            ExplicitSystemInfo {
                boot_time_secs: 0,
                ticks_per_second: local.ticks_per_second().max(1),
                page_size: local.page_size().max(1),
                is_little_endian: local.is_little_endian(),
            },
        )
    }

    /// A captured tree at `path`, taken on a little-endian host with 100 clock ticks per second
    /// and 4 KiB pages (the values of every x86-64 and arm64 Linux).
    pub fn at(path: impl Into<PathBuf>) -> ProcRoot {
        ProcRoot::with_info(
            path,
            ExplicitSystemInfo {
                boot_time_secs: 0,
                ticks_per_second: 100,
                page_size: 4096,
                is_little_endian: true,
            },
        )
    }

    fn with_info(path: impl Into<PathBuf>, mut info: ExplicitSystemInfo) -> ProcRoot {
        let path = path.into();
        let stat = KernelStats::from_file(path.join("stat"), &info).ok();
        info.boot_time_secs = stat.map_or(0, |it| it.btime);
        let is_procfs = rustix::fs::statfs(&path).is_ok_and(|it| it.f_type == PROC_SUPER_MAGIC);
        ProcRoot { path, info, is_procfs }
    }

    /// The directory this root reads.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `relative` under the root.
    pub fn join(&self, relative: impl AsRef<Path>) -> PathBuf {
        self.path.join(relative)
    }

    /// Clock ticks per second (`USER_HZ`), the unit of CPU times in `/proc`.
    pub fn ticks_per_second(&self) -> u64 {
        self.info.ticks_per_second
    }

    /// Memory page size in bytes.
    pub fn page_size(&self) -> u64 {
        self.info.page_size
    }

    /// Boot time in seconds since the epoch (0 when `stat` was unreadable).
    pub fn boot_time_secs(&self) -> u64 {
        self.info.boot_time_secs
    }

    /// Whether the root is a mounted procfs (rather than a captured copy), which allows the
    /// kernel's shortcuts (the size of `/proc/<pid>/fd` is its entry count).
    pub fn is_procfs(&self) -> bool {
        self.is_procfs
    }

    /// Whether this is the host's own `/proc`, so kernel interfaces other than files (netlink)
    /// describe the same system.
    pub fn is_live(&self) -> bool {
        self.is_procfs && self.path == Path::new("/proc")
    }

    /// The facts `procfs` parsers take.
    pub fn system_info(&self) -> &ExplicitSystemInfo {
        &self.info
    }

    /// Parses `relative` with its `procfs` parser; a missing, unreadable or malformed file is
    /// `None` (logged at debug level), never an error.
    pub(crate) fn read<T: FromRead>(&self, relative: &str) -> Option<T> {
        let path = self.join(relative);
        T::from_file(&path)
            .map_err(|err| tracing::debug!(path = %path.display(), error = %err, "Could not read"))
            .ok()
    }

    /// Like [`read`](Self::read), for parsers that need the system facts.
    pub(crate) fn read_si<T: FromReadSI>(&self, relative: &str) -> Option<T> {
        let path = self.join(relative);
        T::from_file(&path, &self.info)
            .map_err(|err| tracing::debug!(path = %path.display(), error = %err, "Could not read"))
            .ok()
    }
}
