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
    time::{Duration, Instant},
};

use vigil_event::{Finding, FindingLevel, Payload, ProcessEvent, ProcessPhase};

use crate::{
    ProcEvent, ProcRoot, ProcessCollector, ProcessRecord, Suspicion, is_world_writable, suspicions,
};

/// The `system` of the findings this source makes.
const SYSTEM: &str = "process_lifecycle";

/// Tracks the process table between polls.
#[derive(Debug)]
pub struct LifecycleTracker {
    collector: ProcessCollector,
    known: HashMap<(u32, u64), ProcessRecord>,
    exited: HashSet<(u32, u64)>,
    baseline: bool,
    /// Processes the connector saw fork and not yet exec, with when.
    pending: HashMap<u32, Instant>,
}

/// How long a forked process that has not exec'd waits before it is announced with the image
/// it inherited (a server's worker, a shell's subshell).
const FORK_GRACE: Duration = Duration::from_millis(200);

impl LifecycleTracker {
    /// A tracker over `root`; its first [`poll`](Self::poll) takes the baseline.
    pub fn new(root: ProcRoot) -> LifecycleTracker {
        LifecycleTracker {
            collector: ProcessCollector::new(root),
            known: HashMap::new(),
            exited: HashSet::new(),
            baseline: false,
            pending: HashMap::new(),
        }
    }

    /// Applies events from the kernel's process connector: a forked process is announced (a
    /// `start`) at its exec, or after a short grace without one; an exec of a known process is a
    /// `snapshot` with the new program; a process exit is an `exit`. Findings are checked at
    /// start and at every exec. Threads are ignored.
    pub fn on_events(&mut self, events: &[ProcEvent], now: Instant) -> Vec<Payload> {
        let mut out = Vec::new();
        let mut findings = Vec::new();
        for proc_event in events {
            match *proc_event {
                ProcEvent::Fork { child_pid, child_tgid, .. } if child_pid == child_tgid => {
                    self.pending.insert(child_pid, now);
                }
                ProcEvent::Exec { pid, tgid } if pid == tgid => {
                    let Some(record) = self.collector.read_process(pid) else { continue };
                    let known = self.forget_pid(pid);
                    let fresh = self.pending.remove(&pid).is_some() || known.is_none();
                    let phase = if fresh { ProcessPhase::Start } else { ProcessPhase::Snapshot };
                    self.announce(record, phase, &mut out, &mut findings);
                }
                ProcEvent::Exit { pid, tgid, .. } if pid == tgid => {
                    if self.pending.remove(&pid).is_some() {
                        // Forked and gone before exec or the grace ended: announce it now,
                        // with what its (zombie) entry still shows.
                        let record = self.collector.read_process(pid).unwrap_or(ProcessRecord {
                            info: vigil_event::ProcessInfo { pid, ..Default::default() },
                            start_ticks: 0,
                            kernel_thread: false,
                        });
                        self.announce(record, ProcessPhase::Start, &mut out, &mut findings);
                    }
                    if let Some(record) = self.forget_pid(pid) {
                        out.push(event(ProcessPhase::Exit, &record));
                    }
                }
                _ => {}
            }
        }
        let due: Vec<u32> = self
            .pending
            .iter()
            .filter(|(_, at)| now.saturating_duration_since(**at) >= FORK_GRACE)
            .map(|(pid, _)| *pid)
            .collect();
        for pid in due {
            self.pending.remove(&pid);
            if let Some(record) = self.collector.read_process(pid) {
                self.forget_pid(pid);
                self.announce(record, ProcessPhase::Start, &mut out, &mut findings);
            }
        }
        out.extend(findings);
        out
    }

    fn announce(
        &mut self,
        record: ProcessRecord,
        phase: ProcessPhase,
        out: &mut Vec<Payload>,
        findings: &mut Vec<Payload>,
    ) {
        for sign in suspicions(&record, &mut is_world_writable) {
            findings.push(Payload::Finding(finding(sign, &record)));
        }
        out.push(event(phase, &record));
        self.known.insert(record.key(), record);
    }

    /// Removes and returns the known process with this pid.
    fn forget_pid(&mut self, pid: u32) -> Option<ProcessRecord> {
        let key = self.known.keys().find(|it| it.0 == pid).copied()?;
        self.exited.remove(&key);
        self.known.remove(&key)
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
            if self.pending.contains_key(&cheap.info.pid) {
                // The connector will announce it at its exec or after the grace.
                continue;
            }
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
    fn connector_events_announce_at_exec_after_the_grace_or_at_exit() {
        let dir = tempfile::tempdir().unwrap();
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("test_data/debian12-6.18");
        copy_tree(&fixture, dir.path());
        let mut tracker = LifecycleTracker::new(ProcRoot::at(dir.path()));
        tracker.poll();
        let t0 = Instant::now();
        let fork = |pid| ProcEvent::Fork { parent_tgid: 2889, child_pid: pid, child_tgid: pid };
        let exec = |pid| ProcEvent::Exec { pid, tgid: pid };
        let exit = |pid| ProcEvent::Exit { pid, tgid: pid, exit_code: 0 };
        let add = |pid: u32| {
            let stat = fs::read_to_string(fixture.join("2897/stat")).unwrap();
            copy_tree(&fixture.join("2897"), &dir.path().join(pid.to_string()));
            let stat = stat.replacen("2897 ", &format!("{pid} "), 1);
            fs::write(dir.path().join(format!("{pid}/stat")), stat).unwrap();
        };

        // Forked: not announced yet, not even by a poll; its exec is the start.
        add(4000);
        assert!(tracker.on_events(&[fork(4000)], t0).is_empty());
        assert!(tracker.poll().is_empty(), "the poll leaves pending forks to the connector");
        let events = phases(&tracker.on_events(&[exec(4000)], t0));
        assert_eq!(events[0], ("Start".to_owned(), 4000));
        assert_eq!(events[1..], [("ProcessExecutableInWorldWritableDir".to_owned(), 4000)]);
        // A second exec of a known process is a snapshot of the new program.
        assert_eq!(phases(&tracker.on_events(&[exec(4000)], t0))[0], ("Snapshot".to_owned(), 4000));
        fs::remove_dir_all(dir.path().join("4000")).unwrap();
        assert_eq!(phases(&tracker.on_events(&[exit(4000)], t0)), [("Exit".to_owned(), 4000)]);
        assert!(tracker.poll().is_empty(), "the exit was already reported");

        // Forked and gone before exec: start and exit together.
        assert_eq!(
            phases(&tracker.on_events(&[fork(4001), exit(4001)], t0)),
            [("Start".to_owned(), 4001), ("Exit".to_owned(), 4001)]
        );
        // Forked without exec (a worker): announced once the grace has passed.
        add(4002);
        assert!(tracker.on_events(&[fork(4002)], t0).is_empty());
        let later = t0 + FORK_GRACE;
        assert_eq!(phases(&tracker.on_events(&[], later))[0], ("Start".to_owned(), 4002));
        // Threads are not processes.
        let thread = ProcEvent::Fork { parent_tgid: 4002, child_pid: 4003, child_tgid: 4002 };
        assert!(tracker.on_events(&[thread], later).is_empty());
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
