//! The system collector: CPU, memory, swap, load, filesystems and disk I/O of the host.
//!
//! Reads `stat`, `meminfo`, `loadavg`, `mounts` and `diskstats` under the [`ProcRoot`] with the
//! `procfs` parsers. CPU percentages are deltas between two samples, so the first sample of a
//! collector has none. Every part degrades on its own: an unreadable file leaves its values
//! missing and the rest of the sample intact.

use std::{sync::Arc, time::Duration};

use procfs::{CpuTime, DiskStats, KernelStats, LoadAverage, Meminfo, MountEntry};
use vigil_event::{DiskIo, SystemMetrics};

use crate::{
    ProcRoot,
    disks::{DiskProber, StatFs, is_real_mount, is_whole_disk, statvfs},
};

/// CPU time spent in each mode, in clock ticks, as `/proc/stat` counts it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuModes {
    /// Normal processes in user mode (includes guest time).
    pub user: u64,
    /// Niced processes in user mode.
    pub nice: u64,
    /// Kernel mode.
    pub system: u64,
    /// Idle.
    pub idle: u64,
    /// Waiting for I/O.
    pub iowait: u64,
    /// Servicing interrupts.
    pub irq: u64,
    /// Servicing soft interrupts.
    pub softirq: u64,
    /// Stolen by the hypervisor.
    pub steal: u64,
}

impl CpuModes {
    fn from_procfs(it: &CpuTime) -> CpuModes {
        CpuModes {
            user: it.user,
            nice: it.nice,
            system: it.system,
            idle: it.idle,
            iowait: it.iowait.unwrap_or(0),
            irq: it.irq.unwrap_or(0),
            softirq: it.softirq.unwrap_or(0),
            steal: it.steal.unwrap_or(0),
        }
    }

    /// Every mode with its node_exporter name, in ticks.
    pub fn modes(&self) -> [(&'static str, u64); 8] {
        [
            ("idle", self.idle),
            ("iowait", self.iowait),
            ("irq", self.irq),
            ("nice", self.nice),
            ("softirq", self.softirq),
            ("steal", self.steal),
            ("system", self.system),
            ("user", self.user),
        ]
    }

    fn total(&self) -> u64 {
        self.modes().iter().map(|(_, it)| *it).fold(0, u64::saturating_add)
    }

    fn idle_all(&self) -> u64 {
        self.idle.saturating_add(self.iowait)
    }

    /// Busy percent between `earlier` and `self`; `None` when no time passed.
    pub fn busy_percent_since(&self, earlier: &CpuModes) -> Option<f64> {
        let total = self.total().checked_sub(earlier.total())?;
        let idle = self.idle_all().saturating_sub(earlier.idle_all());
        if total == 0 {
            return None;
        }
        Some(((total.saturating_sub(idle)) as f64 / total as f64 * 100.0).clamp(0.0, 100.0))
    }
}

/// `/proc/meminfo` figures in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryBytes {
    /// MemTotal.
    pub total: u64,
    /// MemFree.
    pub free: u64,
    /// MemAvailable, or MemFree + Buffers + Cached on kernels before 3.14.
    pub available: u64,
    /// Whether the kernel reported MemAvailable itself.
    pub available_reported: bool,
    /// Buffers.
    pub buffers: u64,
    /// Cached.
    pub cached: u64,
    /// SwapTotal.
    pub swap_total: u64,
    /// SwapFree.
    pub swap_free: u64,
}

/// Counters from `/proc/stat` besides CPU time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KernelCounters {
    /// Context switches since boot.
    pub context_switches: u64,
    /// Boot time, seconds since the epoch.
    pub boot_time: u64,
    /// Forks since boot.
    pub forks: u64,
    /// Runnable processes.
    pub procs_running: Option<u32>,
    /// Processes blocked on I/O.
    pub procs_blocked: Option<u32>,
}

/// One sample: the event payload, and the raw counters behind it (for `--prometheus`).
#[derive(Debug, Clone, Default)]
pub struct SystemReading {
    /// What the `system` source publishes.
    pub metrics: SystemMetrics,
    /// CPU time of the whole host, in ticks.
    pub cpu_total: Option<CpuModes>,
    /// CPU time per CPU, in ticks.
    pub per_cpu: Vec<CpuModes>,
    /// Clock ticks per second of the counters above.
    pub ticks_per_second: u64,
    /// Memory figures.
    pub memory: Option<MemoryBytes>,
    /// Other `/proc/stat` counters.
    pub kernel: Option<KernelCounters>,
    /// Mounts whose filesystem did not answer in time or failed.
    pub failed_mounts: Vec<String>,
}

/// Samples host resources; keeps the previous CPU counters for percentages.
#[derive(Debug)]
pub struct SystemCollector {
    root: ProcRoot,
    prober: DiskProber,
    previous: Option<(CpuModes, Vec<CpuModes>)>,
}

/// How long filesystems get to answer `statvfs` in one sample, by default.
pub const DEFAULT_DISK_DEADLINE: Duration = Duration::from_secs(2);

impl SystemCollector {
    /// A collector reading `root`, with `statvfs` and the default filesystem deadline.
    pub fn new(root: ProcRoot) -> SystemCollector {
        SystemCollector::with_statfs(root, Arc::new(statvfs), DEFAULT_DISK_DEADLINE)
    }

    /// A collector with its own way of reading filesystem space and its own deadline.
    pub fn with_statfs(root: ProcRoot, stat: StatFs, deadline: Duration) -> SystemCollector {
        SystemCollector { root, prober: DiskProber::new(stat, deadline), previous: None }
    }

    /// Takes one sample.
    pub fn collect(&mut self) -> SystemReading {
        let mut reading =
            SystemReading { ticks_per_second: self.root.ticks_per_second(), ..Default::default() };
        let mut failed = Vec::new();

        match self.root.read_si::<KernelStats>("stat") {
            Some(stat) => self.read_cpu(&stat, &mut reading),
            None => failed.push("cpu".to_owned()),
        }
        match self.root.read::<Meminfo>("meminfo") {
            Some(info) => {
                let memory = memory_bytes(&info);
                let m = &mut reading.metrics;
                m.memory_total_bytes = Some(memory.total);
                m.memory_available_bytes = Some(memory.available);
                m.swap_total_bytes = Some(memory.swap_total);
                m.swap_free_bytes = Some(memory.swap_free);
                reading.memory = Some(memory);
            }
            None => failed.push("memory".to_owned()),
        }
        match self.root.read::<LoadAverage>("loadavg") {
            Some(load) => {
                reading.metrics.load =
                    Some([widen(load.one), widen(load.five), widen(load.fifteen)]);
            }
            None => failed.push("load".to_owned()),
        }
        match self.root.read::<Vec<MountEntry>>("mounts") {
            Some(mounts) => {
                let (disks, failed_mounts) = self.prober.probe(real_mounts(mounts));
                reading.metrics.disks = disks;
                failed.extend(failed_mounts.iter().map(|it| format!("filesystem:{it}")));
                reading.failed_mounts = failed_mounts;
            }
            None => failed.push("filesystem".to_owned()),
        }
        match self.root.read::<DiskStats>("diskstats") {
            Some(stats) => reading.metrics.disk_io = disk_io(&stats),
            None => failed.push("diskstats".to_owned()),
        }
        reading.metrics.failed_collectors = failed;
        reading
    }

    fn read_cpu(&mut self, stat: &KernelStats, reading: &mut SystemReading) {
        let total = CpuModes::from_procfs(&stat.total);
        let per_cpu: Vec<CpuModes> = stat.cpu_time.iter().map(CpuModes::from_procfs).collect();
        let m = &mut reading.metrics;
        m.cpu_count = u32::try_from(per_cpu.len()).ok().filter(|it| *it > 0);
        if let Some((prev_total, prev_per_cpu)) = &self.previous {
            m.cpu_percent = total.busy_percent_since(prev_total);
            if prev_per_cpu.len() == per_cpu.len() {
                m.per_cpu_percent = per_cpu
                    .iter()
                    .zip(prev_per_cpu)
                    .map(|(now, before)| now.busy_percent_since(before).unwrap_or(0.0))
                    .collect();
            }
        }
        reading.kernel = Some(KernelCounters {
            context_switches: stat.ctxt,
            boot_time: stat.btime,
            forks: stat.processes,
            procs_running: stat.procs_running,
            procs_blocked: stat.procs_blocked,
        });
        reading.cpu_total = Some(total);
        reading.per_cpu.clone_from(&per_cpu);
        self.previous = Some((total, per_cpu));
    }
}

/// The `f64` with the same shortest decimal form as `value` (`0.29`, not `0.28999999165534973`):
/// `procfs` parses load averages as `f32`.
fn widen(value: f32) -> f64 {
    value.to_string().parse().unwrap_or(f64::from(value))
}

fn memory_bytes(info: &Meminfo) -> MemoryBytes {
    let fallback = info.mem_free.saturating_add(info.buffers).saturating_add(info.cached);
    MemoryBytes {
        total: info.mem_total,
        free: info.mem_free,
        available: info.mem_available.unwrap_or(fallback),
        available_reported: info.mem_available.is_some(),
        buffers: info.buffers,
        cached: info.cached,
        swap_total: info.swap_total,
        swap_free: info.swap_free,
    }
}

/// Real filesystems, one entry per mount point (the last mount over a point wins, as it is the
/// one visible there).
fn real_mounts(mounts: Vec<MountEntry>) -> Vec<MountEntry> {
    let mut out: Vec<MountEntry> = Vec::new();
    for mut entry in mounts.into_iter().filter(is_real_mount) {
        // procfs 0.18 decodes \011, \012, \134 and \043 but not \040, the kernel's escape for
        // a space, so a mount point with a space would not statvfs.
        entry.fs_file = entry.fs_file.replace("\\040", " ");
        entry.fs_spec = entry.fs_spec.replace("\\040", " ");
        out.retain(|it| it.fs_file != entry.fs_file);
        out.push(entry);
    }
    out
}

fn disk_io(stats: &DiskStats) -> Vec<DiskIo> {
    stats
        .0
        .iter()
        .filter(|it| is_whole_disk(&it.name))
        .map(|it| DiskIo {
            device: it.name.clone(),
            read_bytes: it.sectors_read.saturating_mul(512),
            written_bytes: it.sectors_written.saturating_mul(512),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::{FsSpace, fixture};

    /// `statvfs` answers for fixture mounts: every filesystem is 100 GiB with 40 GiB available,
    /// except `/mnt/nfs`, whose server is gone.
    fn fake_statfs() -> StatFs {
        Arc::new(|path: &Path| {
            if path == Path::new("/mnt/nfs") {
                return Err(std::io::Error::from(std::io::ErrorKind::TimedOut));
            }
            Ok(FsSpace { total: 100 << 30, free: 45 << 30, available: 40 << 30 })
        })
    }

    #[test]
    fn debian12_sample_reads_every_part() {
        let mut collector = SystemCollector::with_statfs(
            fixture("debian12-6.18"),
            fake_statfs(),
            Duration::from_secs(5),
        );
        let reading = collector.collect();
        let m = &reading.metrics;
        assert_eq!(m.cpu_count, Some(2));
        assert_eq!(m.cpu_percent, None, "the first sample has no delta");
        assert_eq!(m.memory_total_bytes, Some(24_684_084 * 1024));
        assert_eq!(m.memory_available_bytes, Some(24_245_732 * 1024));
        assert_eq!(m.load, Some([0.52, 0.73, 0.72]));
        let mounts: Vec<&str> = m.disks.iter().map(|it| it.mount.as_str()).collect();
        assert_eq!(mounts, ["/"], "tmpfs, proc, cgroup and devpts are skipped");
        assert_eq!(m.disks[0].device.as_deref(), Some("/dev/vda"));
        assert_eq!(m.disks[0].available_bytes, 40 << 30);
        let devices: Vec<&str> = m.disk_io.iter().map(|it| it.device.as_str()).collect();
        assert_eq!(devices, ["vda"], "loop and zram devices are skipped");
        assert_eq!(m.disk_io[0].read_bytes, 15_955_474 * 512);
        assert_eq!(m.disk_io[0].written_bytes, 25_525_488 * 512);
        assert!(m.failed_collectors.is_empty(), "{:?}", m.failed_collectors);
        let cpu0 = reading.per_cpu[0];
        assert_eq!((cpu0.user, cpu0.system, cpu0.idle, cpu0.steal), (66611, 9333, 212221, 36));
        assert_eq!(reading.kernel.map(|it| it.procs_running.is_some()), Some(true));

        // A second sample of the same counters: no time passed, so no percentage.
        let again = collector.collect();
        assert_eq!(again.metrics.cpu_percent, None);
    }

    #[test]
    fn old_kernel_without_memavailable_and_with_partitions() {
        let mut collector = SystemCollector::with_statfs(
            fixture("handmade-2.6.32"),
            fake_statfs(),
            Duration::from_secs(5),
        );
        let reading = collector.collect();
        let m = &reading.metrics;
        assert_eq!(m.memory_total_bytes, Some(2_048_000 * 1024));
        // MemFree + Buffers + Cached.
        assert_eq!(m.memory_available_bytes, Some((512_000 + 128_000 + 256_000) * 1024));
        assert_eq!(reading.memory.map(|it| it.available_reported), Some(false));
        assert_eq!(m.swap_free_bytes, Some(1_000_000 * 1024));
        let devices: Vec<&str> = m.disk_io.iter().map(|it| it.device.as_str()).collect();
        assert_eq!(devices, ["sda", "sdb", "mmcblk0", "nvme0n1"]);
        assert_eq!(m.disk_io[0].written_bytes, 400_000 * 512);
        let mounts: Vec<(&str, &str)> =
            m.disks.iter().map(|it| (it.mount.as_str(), it.fs.as_str())).collect();
        // rootfs is not in the pseudo list but reports like "/"; the later mount over /home wins.
        assert_eq!(
            mounts,
            [("/", "ext4"), ("/srv/my data", "xfs"), ("/home", "xfs")],
            "escaped spaces decoded, over-mounts collapsed, pseudo filesystems skipped"
        );
        assert_eq!(m.failed_collectors, ["filesystem:/mnt/nfs"]);
        assert_eq!(reading.failed_mounts, ["/mnt/nfs"]);
        let k = reading.kernel.unwrap();
        assert_eq!((k.context_switches, k.forks, k.boot_time), (987_654, 4242, 1_300_000_000));
    }

    #[test]
    fn cpu_percent_comes_from_deltas() {
        let before =
            CpuModes { user: 100, system: 50, idle: 800, iowait: 50, ..CpuModes::default() };
        let after =
            CpuModes { user: 160, system: 70, idle: 900, iowait: 70, ..CpuModes::default() };
        // 200 ticks passed, 120 of them idle or iowait: 40 % busy.
        assert_eq!(after.busy_percent_since(&before), Some(40.0));
        assert_eq!(before.busy_percent_since(&before), None);
        // Counters that went backwards (a CPU hot-plugged back) give no figure rather than junk.
        assert_eq!(before.busy_percent_since(&after), None);
    }

    #[test]
    fn a_missing_tree_degrades_to_failed_parts() {
        let mut collector = SystemCollector::new(ProcRoot::at("/nonexistent/proc"));
        let reading = collector.collect();
        assert_eq!(reading.metrics.cpu_count, None);
        assert_eq!(
            reading.metrics.failed_collectors,
            ["cpu", "memory", "load", "filesystem", "diskstats"]
        );
    }
}
