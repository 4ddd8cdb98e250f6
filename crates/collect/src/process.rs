//! The process collector: one record per PID, with CPU percentages from deltas, children, and
//! the suspicious signs the lifecycle source reports.
//!
//! Each process is read through `procfs::process::Process::new_with_root` (`stat`, `status`,
//! `cmdline`, `io`, the `exe` link, the `fd` directory). A process can exit between any two of
//! these reads and some files are unreadable to an unprivileged user: every field that could not
//! be read is `None`, and a process whose `stat` is gone is skipped. Nothing here fails.

use std::{collections::HashMap, io::Read as _, os::unix::fs::PermissionsExt, path::Path};

use chrono::{DateTime, Utc};
use procfs::{
    FromRead, Uptime,
    process::{Process, Stat},
};
use vigil_event::ProcessInfo;

use crate::ProcRoot;

/// The kernel's flag for kernel threads in `stat`'s `flags` (`PF_KTHREAD`).
const PF_KTHREAD: u32 = 0x0020_0000;

/// The suffix the kernel appends to the `exe` link of a deleted executable.
const DELETED_SUFFIX: &str = " (deleted)";

/// One process as the collector saw it: the event record, and what identifies it across samples.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessRecord {
    /// What `process` events carry.
    pub info: ProcessInfo,
    /// Start time in clock ticks after boot: with the pid, it tells a reused pid apart.
    pub start_ticks: u64,
    /// Whether this is a kernel thread (no executable, no command line).
    pub kernel_thread: bool,
}

impl ProcessRecord {
    /// The key that identifies this process across samples (pids are reused).
    pub fn key(&self) -> (u32, u64) {
        (self.info.pid, self.start_ticks)
    }
}

/// Samples every process; keeps CPU times for percentages between samples.
#[derive(Debug)]
pub struct ProcessCollector {
    root: ProcRoot,
    previous: HashMap<(u32, u64), u64>,
    previous_uptime: Option<f64>,
}

impl ProcessCollector {
    /// A collector reading `root`.
    pub fn new(root: ProcRoot) -> ProcessCollector {
        ProcessCollector { root, previous: HashMap::new(), previous_uptime: None }
    }

    /// The root this collector reads.
    pub fn root(&self) -> &ProcRoot {
        &self.root
    }

    /// Every readable process, ordered by pid. CPU percent covers the time since the previous
    /// sample for processes seen then, and the process's whole life otherwise (as `ps` does).
    pub fn collect(&mut self) -> Vec<ProcessRecord> {
        let uptime = self.root.read::<Uptime>("uptime").map(|it| it.uptime);
        let mut records = self.scan(Detail::Full);
        let elapsed = match (uptime, self.previous_uptime) {
            (Some(now), Some(before)) if now > before => Some(now - before),
            _ => None,
        };
        let hz = self.root.ticks_per_second() as f64;
        let mut next = HashMap::with_capacity(records.len());
        for record in &mut records {
            let ticks = cpu_ticks(&record.info, hz);
            next.insert(record.key(), ticks);
            let delta = match (elapsed, self.previous.get(&record.key())) {
                (Some(elapsed), Some(before)) => {
                    Some((ticks.saturating_sub(*before) as f64 / hz, elapsed))
                }
                _ => uptime.map(|now| {
                    let lived = now - record.start_ticks as f64 / hz;
                    (ticks as f64 / hz, lived)
                }),
            };
            // A process younger than a clock tick has used (next to) nothing yet.
            record.info.cpu_percent =
                delta.map(|(cpu, wall)| round2((cpu / wall.max(1.0 / hz) * 100.0).max(0.0)));
        }
        self.previous = next;
        self.previous_uptime = uptime;
        add_children(&mut records);
        records
    }

    /// Every process with only what `stat` tells (pid, name, parent, state, start): the cheap
    /// pass the lifecycle source runs every second.
    pub fn scan_stat(&self) -> Vec<ProcessRecord> {
        self.scan(Detail::Stat)
    }

    /// One process with everything, or `None` when it is gone or its `stat` is unreadable.
    pub fn read_process(&self, pid: u32) -> Option<ProcessRecord> {
        let process = Process::new_with_root(self.root.join(pid.to_string())).ok()?;
        read_record(&self.root, &process, Detail::Full, &mut Vec::new())
    }

    fn scan(&self, detail: Detail) -> Vec<ProcessRecord> {
        let Ok(all) = procfs::process::all_processes_with_root(self.root.path()) else {
            return Vec::new();
        };
        let mut buf = Vec::with_capacity(READ_CHUNK);
        let mut records: Vec<ProcessRecord> = all
            .filter_map(Result::ok)
            .filter_map(|process| read_record(&self.root, &process, detail, &mut buf))
            .collect();
        records.sort_by_key(|it| it.info.pid);
        records
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Detail {
    Stat,
    Full,
}

fn read_record(
    root: &ProcRoot,
    process: &Process,
    detail: Detail,
    buf: &mut Vec<u8>,
) -> Option<ProcessRecord> {
    let stat: Stat = read_file(process, "stat", buf).and_then(|it| Stat::from_read(it).ok())?;
    let pid = u32::try_from(stat.pid).ok()?;
    let hz = root.ticks_per_second();
    let kernel_thread = stat.flags & PF_KTHREAD != 0;
    let started_at = (root.boot_time_secs() > 0)
        .then(|| {
            let millis = root.boot_time_secs() as i64 * 1000
                + (stat.starttime.saturating_mul(1000) / hz.max(1)) as i64;
            DateTime::<Utc>::from_timestamp_millis(millis)
        })
        .flatten();
    let mut info = ProcessInfo {
        pid,
        ppid: u32::try_from(stat.ppid).ok(),
        name: Some(stat.comm.clone()),
        state: Some(stat.state.to_string()),
        threads: u32::try_from(stat.num_threads).ok(),
        cpu_user_seconds: Some(round2(stat.utime as f64 / hz as f64)),
        cpu_system_seconds: Some(round2(stat.stime as f64 / hz as f64)),
        virtual_bytes: Some(stat.vsize),
        resident_bytes: Some(stat.rss.saturating_mul(root.page_size())),
        started_at,
        ..ProcessInfo::default()
    };
    if detail == Detail::Full {
        if let Some(status) = read_file(process, "status", buf) {
            let [uid, voluntary, involuntary] =
                fields(status, ["Uid:", "voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:"]);
            info.uid = uid.and_then(|it| u32::try_from(it).ok());
            info.voluntary_context_switches = voluntary;
            info.involuntary_context_switches = involuntary;
        }
        if let Some(io) = read_file(process, "io", buf) {
            let [syscr, syscw, read, write] =
                fields(io, ["syscr:", "syscw:", "read_bytes:", "write_bytes:"]);
            (info.read_syscalls, info.write_syscalls) = (syscr, syscw);
            (info.read_bytes, info.write_bytes) = (read, write);
        }
        // Kernel threads have no command line and no open files: skip the reads.
        if kernel_thread {
            info.open_fds = Some(0);
        } else {
            if let Some(cmdline) = read_file(process, "cmdline", buf) {
                info.cmdline = cmdline
                    .split(|it| *it == 0)
                    .filter(|it| !it.is_empty())
                    .map(|it| String::from_utf8_lossy(it).into_owned())
                    .collect();
            }
            info.open_fds = open_fds(root, process);
        }
    }
    if !kernel_thread && let Ok(exe) = process.exe() {
        let exe = exe.to_string_lossy().into_owned();
        info.exe_deleted = Some(exe.ends_with(DELETED_SUFFIX));
        info.exe = Some(exe);
    }
    Some(ProcessRecord { info, start_ticks: stat.starttime, kernel_thread })
}

/// Reads a file of the process's directory into `buf`: one `read` when it fits (procfs files
/// are generated whole), more when it does not. `None` when it cannot be opened or read.
fn read_file<'a>(process: &Process, name: &str, buf: &'a mut Vec<u8>) -> Option<&'a [u8]> {
    let mut file = process.open_relative(name).ok()?;
    buf.clear();
    buf.resize(READ_CHUNK, 0);
    let mut len = 0;
    loop {
        match file.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => {
                len += n;
                if len < buf.len() {
                    break;
                }
                buf.resize(buf.len() * 2, 0);
            }
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    Some(&buf[..len])
}

/// First read size for a procfs file: `status` is about 1.5 KiB, `stat` and `io` far less.
const READ_CHUNK: usize = 4096;

/// The first number after each key at the start of a line of a `Key:\tvalue` file (`status`,
/// `io`), in one pass. procfs's `Status` and `Io` parsers build a map of every line, which made
/// up most of a collection cycle's user time; the collector needs a few fields of each.
fn fields<const N: usize>(text: &[u8], keys: [&str; N]) -> [Option<u64>; N] {
    let mut out = [None; N];
    for line in text.split(|it| *it == b'\n') {
        for (key, slot) in keys.iter().zip(out.iter_mut()) {
            if slot.is_none()
                && let Some(value) = line.strip_prefix(key.as_bytes())
            {
                let value = value.trim_ascii_start();
                let digits = value.iter().take_while(|it| it.is_ascii_digit()).count();
                *slot = std::str::from_utf8(&value[..digits]).ok().and_then(|it| it.parse().ok());
                break;
            }
        }
    }
    out
}

/// Open file descriptors: the size of the `fd` directory on a live procfs (one `stat`, Linux
/// 6.2+), else a count of its entries.
fn open_fds(root: &ProcRoot, process: &Process) -> Option<u32> {
    let count = if root.is_procfs() {
        process.fd_count().ok()?
    } else {
        process.fd().ok()?.filter(Result::is_ok).count()
    };
    u32::try_from(count).ok()
}

fn cpu_ticks(info: &ProcessInfo, hz: f64) -> u64 {
    let seconds = info.cpu_user_seconds.unwrap_or(0.0) + info.cpu_system_seconds.unwrap_or(0.0);
    (seconds * hz).round() as u64
}

fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

fn add_children(records: &mut [ProcessRecord]) {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for record in records.iter() {
        if let Some(ppid) = record.info.ppid.filter(|it| *it != 0) {
            children.entry(ppid).or_default().push(record.info.pid);
        }
    }
    for record in records.iter_mut() {
        record.info.children = children.remove(&record.info.pid).unwrap_or_default();
    }
}

/// Processes whose name or executable's file name contains `pattern` (case-insensitive).
pub fn find_by_name<'a>(records: &'a [ProcessRecord], pattern: &str) -> Vec<&'a ProcessRecord> {
    let pattern = pattern.to_lowercase();
    records
        .iter()
        .filter(|it| {
            let name = it.info.name.as_deref().unwrap_or_default().to_lowercase();
            let exe = it.info.exe.as_deref().map(exe_file_name).unwrap_or_default().to_lowercase();
            name.contains(&pattern) || exe.contains(&pattern)
        })
        .collect()
}

/// Totals over a set of processes.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ResourceSummary {
    /// Processes counted.
    pub processes: usize,
    /// Threads.
    pub threads: u64,
    /// Sum of CPU percents (100 = one CPU busy).
    pub cpu_percent: f64,
    /// Resident memory.
    pub resident_bytes: u64,
    /// Virtual memory.
    pub virtual_bytes: u64,
    /// Open file descriptors (of the processes whose `fd` was readable).
    pub open_fds: u64,
    /// Bytes read from storage.
    pub read_bytes: u64,
    /// Bytes written to storage.
    pub write_bytes: u64,
}

/// Sums the resources of `records`.
pub fn summarize<'a>(records: impl IntoIterator<Item = &'a ProcessRecord>) -> ResourceSummary {
    let mut sum = ResourceSummary::default();
    for it in records {
        let info = &it.info;
        sum.processes += 1;
        sum.threads += u64::from(info.threads.unwrap_or(0));
        sum.cpu_percent += info.cpu_percent.unwrap_or(0.0);
        sum.resident_bytes += info.resident_bytes.unwrap_or(0);
        sum.virtual_bytes += info.virtual_bytes.unwrap_or(0);
        sum.open_fds += u64::from(info.open_fds.unwrap_or(0));
        sum.read_bytes += info.read_bytes.unwrap_or(0);
        sum.write_bytes += info.write_bytes.unwrap_or(0);
    }
    sum.cpu_percent = round2(sum.cpu_percent);
    sum
}

/// The file name of an `exe` link target, without the ` (deleted)` suffix.
pub fn exe_file_name(exe: &str) -> &str {
    let exe = exe.strip_suffix(DELETED_SUFFIX).unwrap_or(exe);
    exe.rsplit('/').next().unwrap_or(exe)
}

/// A suspicious sign on a process, reported by the lifecycle source as a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suspicion {
    /// The executable was deleted after the process started (a dropper cleaning up).
    ExeDeleted,
    /// The executable lives in a directory anyone can write to (/tmp, /dev/shm, …).
    ExeInWorldWritableDir,
    /// The process's name is not its executable's (a process disguising itself).
    NameMismatch,
}

impl Suspicion {
    /// The finding's stable name.
    pub fn finding_name(self) -> &'static str {
        match self {
            Suspicion::ExeDeleted => "ProcessExecutableDeleted",
            Suspicion::ExeInWorldWritableDir => "ProcessExecutableInWorldWritableDir",
            Suspicion::NameMismatch => "ProcessNameMismatch",
        }
    }
}

/// The suspicious signs of `record`. `world_writable` says whether a directory is writable by
/// anyone (on the live host: its mode has the `o+w` bit).
pub fn suspicions(
    record: &ProcessRecord,
    world_writable: &mut dyn FnMut(&Path) -> bool,
) -> Vec<Suspicion> {
    let mut out = Vec::new();
    let Some(exe) = record.info.exe.as_deref().filter(|_| !record.kernel_thread) else {
        return out;
    };
    if exe.ends_with(DELETED_SUFFIX) {
        out.push(Suspicion::ExeDeleted);
    }
    let path = Path::new(exe.strip_suffix(DELETED_SUFFIX).unwrap_or(exe));
    if let Some(dir) = path.parent()
        && world_writable(dir)
    {
        out.push(Suspicion::ExeInWorldWritableDir);
    }
    if let Some(name) = record.info.name.as_deref().filter(|it| !it.is_empty()) {
        let file = exe_file_name(exe);
        // comm is the first 15 bytes of the name the program was started under, which may be a
        // symlink to the executable (python3 -> python3.11, vi -> vim.basic): accept a prefix
        // either way, or the file name of argv[0].
        let argv0 = record.info.cmdline.first().map(|it| exe_file_name(it));
        let matches = file.starts_with(name) || name.starts_with(file) || argv0 == Some(name);
        if !matches {
            out.push(Suspicion::NameMismatch);
        }
    }
    out
}

/// Whether `dir` on this host is writable by anyone.
pub fn is_world_writable(dir: &Path) -> bool {
    std::fs::metadata(dir).is_ok_and(|it| it.is_dir() && it.permissions().mode() & 0o002 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture;

    fn by_pid(records: &[ProcessRecord], pid: u32) -> &ProcessRecord {
        records.iter().find(|it| it.info.pid == pid).unwrap_or_else(|| panic!("no pid {pid}"))
    }

    #[test]
    fn debian12_processes_with_odd_cases() {
        let mut collector = ProcessCollector::new(fixture("debian12-6.18"));
        let records = collector.collect();
        let pids: Vec<u32> = records.iter().map(|it| it.info.pid).collect();
        // 99999 vanished before its stat was read; 99998 exited after it (only stat is left).
        assert_eq!(pids, [1, 2, 2889, 2897, 2899, 2900, 99998]);

        let init = by_pid(&records, 1);
        assert_eq!(init.info.name.as_deref(), Some("process_api"));
        assert_eq!(init.info.exe, None, "an unreadable exe link is missing, not an error");
        assert_eq!(init.info.open_fds, None);
        assert!(init.info.children.is_empty(), "the capturing shell's parent was not captured");

        let kthreadd = by_pid(&records, 2);
        assert!(kthreadd.kernel_thread);
        assert!(kthreadd.info.cmdline.is_empty());
        assert_eq!(kthreadd.info.ppid, Some(0));

        let odd = by_pid(&records, 2897);
        assert_eq!(odd.info.name.as_deref(), Some("my (odd) name"));
        assert_eq!(odd.info.state.as_deref(), Some("S"));
        assert_eq!(odd.info.cmdline, ["/tmp/my (odd) name", "300"]);
        assert_eq!(odd.info.read_bytes, None, "its io file is unreadable");
        assert_eq!(odd.info.exe_deleted, Some(false));
        assert_eq!(odd.info.open_fds, Some(5));

        let deleted = by_pid(&records, 2899);
        assert_eq!(deleted.info.exe_deleted, Some(true));

        let python = by_pid(&records, 2900);
        assert_eq!(python.info.name.as_deref(), Some("sshd"));
        assert_eq!(python.info.threads, Some(1));
        assert_eq!(python.info.resident_bytes, Some(3548 * 4096));
        assert_eq!(python.info.virtual_bytes, Some(17_494_016));
        assert_eq!(python.info.uid, Some(0));
        assert!(python.info.voluntary_context_switches.is_some());
        assert!(python.info.read_syscalls.is_some());
        assert!(python.info.cpu_percent.is_some_and(|it| (0.0..=100.0).contains(&it)));

        let shell = by_pid(&records, 2889);
        assert_eq!(shell.info.children, [2897, 2899, 2900, 99998]);

        let gone = by_pid(&records, 99998);
        assert!(gone.info.cmdline.is_empty() && gone.info.uid.is_none() && gone.info.exe.is_none());

        // A second sample over the same counters: zero CPU since the first.
        let again = collector.collect();
        assert_eq!(by_pid(&again, 2900).info.cpu_percent, by_pid(&records, 2900).info.cpu_percent);
    }

    #[test]
    fn find_by_name_and_summary() {
        let records = ProcessCollector::new(fixture("debian12-6.18")).collect();
        let found: Vec<u32> = find_by_name(&records, "ODD").iter().map(|it| it.info.pid).collect();
        assert_eq!(found, [2897, 99998]);
        let found: Vec<u32> =
            find_by_name(&records, "python").iter().map(|it| it.info.pid).collect();
        assert_eq!(found, [2900], "the executable's name matches too");
        let sum = summarize(find_by_name(&records, "sleep"));
        assert_eq!(sum.processes, 0);
        let sum = summarize(&records);
        assert_eq!(sum.processes, 7);
        assert!(sum.resident_bytes > 0 && sum.threads >= 7);
    }

    #[test]
    fn suspicious_signs() {
        let records = ProcessCollector::new(fixture("debian12-6.18")).collect();
        let mut writable = |dir: &Path| dir == Path::new("/tmp");
        assert_eq!(suspicions(by_pid(&records, 2889), &mut writable), []);
        assert_eq!(suspicions(by_pid(&records, 2), &mut writable), [], "kernel threads");
        assert_eq!(
            suspicions(by_pid(&records, 2897), &mut writable),
            [Suspicion::ExeInWorldWritableDir]
        );
        assert_eq!(
            suspicions(by_pid(&records, 2899), &mut writable),
            [Suspicion::ExeDeleted, Suspicion::ExeInWorldWritableDir]
        );
        assert_eq!(suspicions(by_pid(&records, 2900), &mut writable), [Suspicion::NameMismatch]);
        assert!(is_world_writable(Path::new("/tmp")));
        assert!(!is_world_writable(Path::new("/usr/bin")));
        assert_eq!(exe_file_name("/tmp/x (deleted)"), "x");
    }

    #[test]
    fn fields_of_status_and_io() {
        let status = b"Name:\tx\nUid:\t1000\t1000\t1000\t1000\nvoluntary_ctxt_switches:\t42\n\
                       nonvoluntary_ctxt_switches:\t7\n";
        let keys = ["Uid:", "voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:", "Gid:"];
        assert_eq!(fields(status, keys), [Some(1000), Some(42), Some(7), None]);
        assert_eq!(fields(b"Uid:\t\n", ["Uid:"]), [None]);
        let io = b"read_bytes: 4096\nwrite_bytes: 0";
        assert_eq!(fields(io, ["write_bytes:", "read_bytes:"]), [Some(0), Some(4096)]);
    }

    #[test]
    fn a_missing_tree_gives_no_processes() {
        let mut collector = ProcessCollector::new(ProcRoot::at("/nonexistent/proc"));
        assert!(collector.collect().is_empty());
        assert!(collector.read_process(1).is_none());
    }
}
