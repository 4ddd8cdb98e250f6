//! Process lifecycle by polling: compare the process table with the previous one, publish a
//! `process` event for each start and exit, and a finding for each suspicious new process.
//!
//! Polling works unprivileged and on any kernel; its blind spot is a process that starts and
//! exits between two polls. A process is identified by its pid and start time, so a reused pid
//! is a new process. A zombie counts as exited. The first poll takes the baseline: it publishes
//! no start events, but does report suspicious processes already running.

use std::{
    collections::{HashMap, HashSet},
    path::{Path, PathBuf},
};

use vigil_event::{Finding, FindingLevel, Payload, ProcessEvent, ProcessPhase};

use crate::{ProcRoot, ProcessCollector, ProcessRecord, Suspicion, is_world_writable, suspicions};

/// The `system` of the findings this source makes.
const SYSTEM: &str = "process_lifecycle";

/// Tracks the process table between polls.
#[derive(Debug)]
pub struct LifecycleTracker {
    collector: ProcessCollector,
    known: HashMap<(u32, u64), ProcessRecord>,
    exited: HashSet<(u32, u64)>,
    baseline: bool,
}

impl LifecycleTracker {
    /// A tracker over `root`; its first [`poll`](Self::poll) takes the baseline.
    pub fn new(root: ProcRoot) -> LifecycleTracker {
        LifecycleTracker {
            collector: ProcessCollector::new(root),
            known: HashMap::new(),
            exited: HashSet::new(),
            baseline: false,
        }
    }

    /// Compares the process table with the previous poll: start and exit events, then findings.
    pub fn poll(&mut self) -> Vec<Payload> {
        let scan = self.collector.scan_stat();
        let mut out = Vec::new();
        let mut findings = Vec::new();
        let mut writable_cache: HashMap<PathBuf, bool> = HashMap::new();
        let mut world_writable = |dir: &Path| {
            *writable_cache.entry(dir.to_owned()).or_insert_with(|| is_world_writable(dir))
        };

        let mut seen = HashSet::with_capacity(scan.len());
        for cheap in scan {
            let key = cheap.key();
            seen.insert(key);
            if !self.known.contains_key(&key) {
                // New: read everything while it is still there (it may already be gone).
                let full = self
                    .collector
                    .read_process(key.0)
                    .filter(|it| it.key() == key)
                    .unwrap_or(cheap.clone());
                for sign in suspicions(&full, &mut world_writable) {
                    findings.push(Payload::Finding(finding(sign, &full)));
                }
                if self.baseline {
                    out.push(event(ProcessPhase::Start, &full));
                }
                self.known.insert(key, full);
            }
            let zombie = cheap.info.state.as_deref() == Some("Z");
            if zombie && self.baseline && self.exited.insert(key) {
                let last = self.known.get(&key).unwrap_or(&cheap);
                out.push(event(ProcessPhase::Exit, &with_state(last, "Z")));
            }
        }

        let gone: Vec<(u32, u64)> =
            self.known.keys().filter(|key| !seen.contains(key)).copied().collect();
        let mut gone_records: Vec<ProcessRecord> = Vec::new();
        for key in gone {
            if let Some(record) = self.known.remove(&key)
                && !self.exited.remove(&key)
            {
                gone_records.push(record);
            }
        }
        gone_records.sort_by_key(|it| it.info.pid);
        out.extend(gone_records.iter().map(|it| event(ProcessPhase::Exit, it)));
        self.baseline = true;
        out.extend(findings);
        out
    }
}

fn with_state(record: &ProcessRecord, state: &str) -> ProcessRecord {
    let mut record = record.clone();
    record.info.state = Some(state.to_owned());
    record
}

fn event(phase: ProcessPhase, record: &ProcessRecord) -> Payload {
    let mut process = record.info.clone();
    if phase != ProcessPhase::Start {
        // CPU percent of a start or exit is meaningless; keep the identity and the totals.
        process.cpu_percent = None;
    }
    Payload::Process(ProcessEvent { phase, process })
}

fn finding(sign: Suspicion, record: &ProcessRecord) -> Finding {
    let info = &record.info;
    let name = info.name.as_deref().unwrap_or("?");
    let exe = info.exe.as_deref().unwrap_or("?");
    let summary = match sign {
        // Executed from a memfd (fileless): the kernel shows it as `/memfd:NAME (deleted)`.
        Suspicion::ExeDeleted if exe.starts_with("/memfd:") => format!(
            "process {} ({name}) runs an executable that only exists in memory: {exe}",
            info.pid
        ),
        Suspicion::ExeDeleted => {
            format!("process {} ({name}) runs an executable deleted from disk: {exe}", info.pid)
        }
        Suspicion::ExeInWorldWritableDir => format!(
            "process {} ({name}) runs an executable from a world-writable directory: {exe}",
            info.pid
        ),
        Suspicion::NameMismatch => {
            format!("process {} calls itself {name} but runs {exe}", info.pid)
        }
    };
    let mut finding = Finding::new(FindingLevel::Warning, sign.finding_name(), SYSTEM, summary)
        .with_data("pid", info.pid)
        .with_data("name", name)
        .with_data("exe", exe);
    if let Some(ppid) = info.ppid {
        finding = finding.with_data("ppid", ppid);
    }
    if let Some(uid) = info.uid {
        finding = finding.with_data("uid", uid);
    }
    if sign == Suspicion::ExeDeleted {
        finding = finding.with_data("memfd", exe.starts_with("/memfd:"));
    }
    if !info.cmdline.is_empty() {
        finding = finding.with_record(info.cmdline.join(" "));
    }
    finding
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    /// Copies a fixture tree, keeping symlinks as symlinks.
    fn copy_tree(from: &Path, to: &Path) {
        fs::create_dir_all(to).unwrap();
        for entry in fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let target = to.join(entry.file_name());
            let kind = entry.file_type().unwrap();
            if kind.is_symlink() {
                std::os::unix::fs::symlink(fs::read_link(entry.path()).unwrap(), &target).unwrap();
            } else if kind.is_dir() {
                copy_tree(&entry.path(), &target);
            } else {
                fs::copy(entry.path(), &target).unwrap();
            }
        }
    }

    fn phases(payloads: &[Payload]) -> Vec<(String, u32)> {
        payloads
            .iter()
            .map(|it| match it {
                Payload::Process(p) => (format!("{:?}", p.phase), p.process.pid),
                Payload::Finding(f) => (f.name.clone(), f.data["pid"].as_u64().unwrap() as u32),
                other => panic!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn a_memfd_executable_is_called_fileless() {
        let record = ProcessRecord {
            info: vigil_event::ProcessInfo {
                pid: 7,
                name: Some("x".into()),
                exe: Some("/memfd:payload (deleted)".into()),
                ..Default::default()
            },
            start_ticks: 1,
            kernel_thread: false,
        };
        let it = finding(Suspicion::ExeDeleted, &record);
        assert!(it.summary.contains("only exists in memory"), "{}", it.summary);
        assert_eq!(it.data["memfd"], true);
        let it = finding(Suspicion::NameMismatch, &record);
        assert!(!it.data.contains_key("memfd"));
    }

    #[test]
    fn starts_exits_zombies_and_reused_pids() {
        let dir = tempfile::tempdir().unwrap();
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("test_data/debian12-6.18");
        copy_tree(&fixture, dir.path());
        let mut tracker = LifecycleTracker::new(ProcRoot::at(dir.path()));

        // Baseline: no starts, but the suspicious processes already running are reported.
        let first = phases(&tracker.poll());
        assert_eq!(
            first,
            [
                ("ProcessExecutableInWorldWritableDir".to_owned(), 2897),
                ("ProcessExecutableDeleted".to_owned(), 2899),
                ("ProcessExecutableInWorldWritableDir".to_owned(), 2899),
                ("ProcessNameMismatch".to_owned(), 2900),
            ]
        );
        assert!(tracker.poll().is_empty(), "nothing changed");

        // 2889 exits; a new process 3000 (a copy of the shell) starts; 99998 becomes a zombie.
        fs::remove_dir_all(dir.path().join("2889")).unwrap();
        copy_tree(&fixture.join("2889"), &dir.path().join("3000"));
        let stat = fs::read_to_string(fixture.join("2889/stat")).unwrap();
        fs::write(dir.path().join("3000/stat"), stat.replacen("2889 ", "3000 ", 1)).unwrap();
        let zombie = fs::read_to_string(fixture.join("99998/stat")).unwrap();
        fs::write(dir.path().join("99998/stat"), zombie.replacen(") S ", ") Z ", 1)).unwrap();
        let events = tracker.poll();
        assert_eq!(
            phases(&events),
            [("Start".to_owned(), 3000), ("Exit".to_owned(), 99998), ("Exit".to_owned(), 2889)]
        );
        let Payload::Process(start) = &events[0] else { unreachable!() };
        assert_eq!(
            start.process.cmdline,
            ["bash", "./capture.sh", "debian12-6.18"],
            "the start carries the full record"
        );
        let Payload::Process(exit) = &events[2] else { unreachable!() };
        assert_eq!(exit.process.name.as_deref(), Some("bash"), "the exit carries what was known");

        // The zombie is reaped: no second exit. Pid 3000 is reused by a later process.
        fs::remove_dir_all(dir.path().join("99998")).unwrap();
        let reused = stat.replacen("2889 ", "3000 ", 1).replacen(" 290178 ", " 999999 ", 1);
        assert_ne!(reused, stat.replacen("2889 ", "3000 ", 1), "the start time changed");
        fs::write(dir.path().join("3000/stat"), reused).unwrap();
        assert_eq!(
            phases(&tracker.poll()),
            [("Start".to_owned(), 3000), ("Exit".to_owned(), 3000)]
        );
    }
}
