//! The trigger engine: evaluates every trigger's condition on each event, admits the analyses
//! under the priorities and limits, runs them on the analyzer that has the capability, and
//! attaches each result (or why it was skipped) to the triggering event's trace.

use std::{
    collections::BTreeMap,
    fs::File,
    net::IpAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use regex::Regex;
use serde_json::{Value, json};
use tokio::time::Instant;
use vigil_collect::{ProcRoot, ProcessCollector};
use vigil_core::Enricher;
use vigil_event::{Event, Payload};

use super::{
    AnalysisKind, ConditionKind, GlobalLimits, Priority, TriggerConfig,
    limits::{Bucket, SlotGuard, Slots},
    sha256,
};
use crate::{EnrichError, ip::IpTracer, network::Sockets};

/// What an analysis works on, taken from the triggering event.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Target {
    /// The process.
    pub pid: Option<u32>,
    /// Its executable path, as the event says.
    pub exe: Option<String>,
    /// The address.
    pub ip: Option<IpAddr>,
}

impl Target {
    /// The target of `event`.
    pub fn of(event: &Event) -> Target {
        match &event.payload {
            Payload::Process(it) => {
                Target { pid: Some(it.process.pid), exe: it.process.exe.clone(), ip: None }
            }
            Payload::Log(it) => Target { pid: it.pid, exe: None, ip: it.ip },
            Payload::Connection(it) => Target { pid: it.pid, exe: None, ip: Some(it.remote.ip()) },
            _ => Target::default(),
        }
    }
}

/// A component that can run analyses.
pub trait Analyzer: Send + Sync + 'static {
    /// Its name, recorded with each result.
    fn name(&self) -> &str;
    /// The analyses it can run.
    fn capabilities(&self) -> &[AnalysisKind];
    /// Runs `kind` on `target`; an error is recorded as the result.
    fn analyse(&self, kind: AnalysisKind, target: &Target) -> Result<Value, String>;
}

/// The built-in analyzer: hashes executables, snapshots process trees and traces addresses on
/// this host (through vigil-collect and the IP tracer).
pub struct HostAnalyzer {
    root: ProcRoot,
    ip: Option<Arc<IpTracer>>,
    /// Executables larger than this are not hashed (an analysis runs on the publishing task,
    /// so it must stay short: 64 MiB by default, a fraction of a second).
    pub max_hash_bytes: u64,
}

impl std::fmt::Debug for HostAnalyzer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostAnalyzer").field("root", &self.root.path()).finish_non_exhaustive()
    }
}

impl HostAnalyzer {
    /// An analyzer reading `root`; `ip` adds the IP tracer's report to `trace_ip`.
    pub fn new(root: ProcRoot, ip: Option<Arc<IpTracer>>) -> HostAnalyzer {
        HostAnalyzer { root, ip, max_hash_bytes: 64 * 1024 * 1024 }
    }

    fn hash(&self, target: &Target) -> Result<Value, String> {
        // The `exe` link opens the running image even when its file was deleted or replaced.
        let (path, file) = match target.pid {
            Some(pid) => {
                let path = self.root.join(format!("{pid}/exe"));
                (path.clone(), File::open(&path))
            }
            None => match &target.exe {
                Some(exe) => (exe.into(), File::open(exe)),
                None => return Err("no process or executable to hash".to_owned()),
            },
        };
        let file = file.map_err(|err| format!("cannot open {}: {err}", path.display()))?;
        let (sha256, size) = sha256::digest_reader(file, self.max_hash_bytes)
            .map_err(|err| format!("cannot hash {}: {err}", path.display()))?;
        Ok(json!({"sha256": sha256, "size": size, "exe": target.exe}))
    }

    fn tree(&self, target: &Target) -> Result<Value, String> {
        let pid = target.pid.ok_or("no process to snapshot")?;
        let collector = ProcessCollector::new(self.root.clone());
        let describe = |it: &vigil_collect::ProcessRecord| {
            json!({
                "pid": it.info.pid,
                "ppid": it.info.ppid,
                "name": it.info.name,
                "exe": it.info.exe,
                "uid": it.info.uid,
                "cmdline": it.info.cmdline.iter().take(16).map(|arg| arg.chars().take(256).collect::<String>()).collect::<Vec<_>>(),
            })
        };
        let me = collector.read_process(pid).ok_or_else(|| format!("process {pid} is gone"))?;
        let mut ancestors = Vec::new();
        let mut next = me.info.ppid;
        while let Some(ppid) = next.filter(|it| *it != 0) {
            if ancestors.len() >= 32 {
                break;
            }
            let Some(parent) = collector.read_process(ppid) else { break };
            next = parent.info.ppid;
            ancestors.push(describe(&parent));
        }
        let children: Vec<Value> = collector
            .scan_stat()
            .iter()
            .filter(|it| it.info.ppid == Some(pid))
            .take(64)
            .map(describe)
            .collect();
        Ok(json!({"process": describe(&me), "ancestors": ancestors, "children": children}))
    }

    fn trace_ip(&self, target: &Target) -> Result<Value, String> {
        let ip = target.ip.ok_or("no address to trace")?;
        let report = self.ip.as_ref().and_then(|it| it.report(ip));
        let sockets = Sockets::read(self.root.clone());
        let of_ip = sockets.of_ip(ip);
        Ok(json!({
            "report": report,
            "connections": of_ip.iter().take(16).map(|it| crate::network::connection_json(it)).collect::<Vec<_>>(),
            "owners": Sockets::owners(of_ip.iter().copied()),
        }))
    }
}

impl Analyzer for HostAnalyzer {
    fn name(&self) -> &str {
        "host"
    }

    fn capabilities(&self) -> &[AnalysisKind] {
        &[AnalysisKind::HashExecutable, AnalysisKind::ProcessTree, AnalysisKind::TraceIp]
    }

    fn analyse(&self, kind: AnalysisKind, target: &Target) -> Result<Value, String> {
        match kind {
            AnalysisKind::HashExecutable => self.hash(target),
            AnalysisKind::ProcessTree => self.tree(target),
            AnalysisKind::TraceIp => self.trace_ip(target),
        }
    }
}

/// A built trigger.
struct Trigger {
    name: String,
    config: TriggerConfig,
    pattern: Option<Regex>,
    analyzer: Arc<dyn Analyzer>,
    rate: Bucket,
    slots: Slots,
    stats: TriggerCounters,
}

#[derive(Default)]
struct TriggerCounters {
    matched: AtomicU64,
    ran: AtomicU64,
    rate_limited: AtomicU64,
    busy: AtomicU64,
}

/// Counters of one trigger.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct TriggerStats {
    /// Events that met the condition.
    pub matched: u64,
    /// Analyses run.
    pub ran: u64,
    /// Analyses skipped by a rate limit (the trigger's or the global one).
    pub rate_limited: u64,
    /// Analyses skipped by a concurrency limit.
    pub busy: u64,
}

impl Trigger {
    fn matches(&self, event: &Event) -> bool {
        let above = |field: &str| {
            let bound = u64::from(self.config.bound.unwrap_or(100));
            event.enrichment.fields.get(field).and_then(Value::as_u64).is_some_and(|it| it > bound)
        };
        match self.config.condition {
            ConditionKind::ProcessName => match (&event.payload, &self.pattern) {
                (Payload::Process(it), Some(pattern)) => {
                    it.process.name.as_deref().is_some_and(|name| pattern.is_match(name))
                        || it
                            .process
                            .exe
                            .as_deref()
                            .map(vigil_collect::exe_file_name)
                            .is_some_and(|exe| pattern.is_match(exe))
                }
                _ => false,
            },
            ConditionKind::ExecutableMissing => {
                matches!(&event.payload, Payload::Process(it) if it.process.exe_deleted == Some(true))
            }
            ConditionKind::IpScoreAbove => above("threat_score"),
            ConditionKind::ErrorSeverityAbove => above("error_severity"),
        }
    }
}

/// Why an analysis did not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The trigger's or the global rate limit.
    RateLimited,
    /// The trigger's or the global concurrency limit.
    Busy,
}

impl Refusal {
    fn as_str(self) -> &'static str {
        match self {
            Refusal::RateLimited => "rate_limited",
            Refusal::Busy => "busy",
        }
    }
}

/// The trigger engine, an [`Enricher`] registered after the tracers whose fields it reads.
pub struct TriggerEngine {
    triggers: Vec<Trigger>,
    global_rate: Bucket,
    global_slots: Slots,
}

impl std::fmt::Debug for TriggerEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TriggerEngine").field("triggers", &self.triggers.len()).finish()
    }
}

/// The trace's tracer name.
pub const TRIGGER_TRACER: &str = "trigger";

impl TriggerEngine {
    /// Builds the enabled triggers of `configs`, each served by the first of `analyzers` that
    /// has its analysis. Fails on a missing or invalid pattern or bound, or an analysis no
    /// analyzer can run.
    pub fn build(
        configs: &BTreeMap<String, TriggerConfig>,
        analyzers: &[Arc<dyn Analyzer>],
        limits: GlobalLimits,
    ) -> Result<TriggerEngine, EnrichError> {
        let mut triggers = Vec::new();
        for (name, config) in configs.iter().filter(|(_, it)| it.enabled) {
            let err = |text: &str| EnrichError::Config(format!("triggers.{name}: {text}"));
            let pattern = match (config.condition, &config.pattern) {
                (ConditionKind::ProcessName, None) => {
                    return Err(err("`pattern` is required by the condition process_name"));
                }
                (_, Some(text)) => Some(
                    regex::RegexBuilder::new(text)
                        .case_insensitive(true)
                        .size_limit(1 << 20)
                        .build()
                        .map_err(|it| err(&format!("invalid pattern: {it}")))?,
                ),
                (_, None) => None,
            };
            if matches!(
                config.condition,
                ConditionKind::IpScoreAbove | ConditionKind::ErrorSeverityAbove
            ) && config.bound.is_none_or(|it| it > 100)
            {
                return Err(err("`bound` (0–100) is required by the condition"));
            }
            if config.max_per_minute == 0 || config.max_concurrent == 0 {
                return Err(err("max_per_minute and max_concurrent must be at least 1"));
            }
            let analyzer = analyzers
                .iter()
                .find(|it| it.capabilities().contains(&config.analysis))
                .cloned()
                .ok_or_else(|| {
                    err(&format!("no component can run the analysis {}", config.analysis.as_str()))
                })?;
            triggers.push(Trigger {
                name: name.clone(),
                config: config.clone(),
                pattern,
                analyzer,
                rate: Bucket::per_minute(config.max_per_minute),
                slots: Slots::new(config.max_concurrent),
                stats: TriggerCounters::default(),
            });
        }
        // Highest priority first: when one event meets several conditions, the most important
        // analysis gets the budget first.
        triggers.sort_by_key(|it| std::cmp::Reverse(it.config.priority));
        Ok(TriggerEngine {
            triggers,
            global_rate: Bucket::per_minute(limits.max_per_minute.max(1)),
            global_slots: Slots::new(limits.max_concurrent.max(1)),
        })
    }

    /// Whether no trigger is enabled.
    pub fn is_empty(&self) -> bool {
        self.triggers.is_empty()
    }

    /// Admits one analysis of trigger `index` now: slots first, then rate tokens (given back if
    /// they cannot be used), so a refused analysis costs no budget.
    fn admit(&self, index: usize, now: Instant) -> Result<(SlotGuard, SlotGuard), Refusal> {
        let trigger = &self.triggers[index];
        let own = trigger.slots.try_acquire().ok_or(Refusal::Busy)?;
        let global = self.global_slots.try_acquire().ok_or(Refusal::Busy)?;
        if !trigger.rate.try_take(0.0, now) {
            return Err(Refusal::RateLimited);
        }
        if !self.global_rate.try_take(trigger.config.priority.reserve(), now) {
            trigger.rate.give_back();
            return Err(Refusal::RateLimited);
        }
        Ok((own, global))
    }

    /// Admits one analysis of the trigger named `name` now, holding its slots until the guards
    /// drop: what [`enrich`](Enricher::enrich) does around each analysis (for tests of the
    /// limits).
    pub fn try_admit(&self, name: &str) -> Result<(SlotGuard, SlotGuard), Refusal> {
        let index = self.triggers.iter().position(|it| it.name == name).ok_or(Refusal::Busy)?;
        self.admit(index, Instant::now())
    }

    /// Counters per trigger.
    pub fn stats(&self) -> BTreeMap<String, TriggerStats> {
        self.triggers
            .iter()
            .map(|it| {
                let load = |n: &AtomicU64| n.load(Ordering::Relaxed);
                (
                    it.name.clone(),
                    TriggerStats {
                        matched: load(&it.stats.matched),
                        ran: load(&it.stats.ran),
                        rate_limited: load(&it.stats.rate_limited),
                        busy: load(&it.stats.busy),
                    },
                )
            })
            .collect()
    }
}

impl Enricher for TriggerEngine {
    fn name(&self) -> &str {
        TRIGGER_TRACER
    }

    fn wants(&self, event: &Event) -> bool {
        let process = matches!(event.payload, Payload::Process(_));
        let fields = !event.enrichment.fields.is_empty();
        self.triggers.iter().any(|it| match it.config.condition {
            ConditionKind::ProcessName | ConditionKind::ExecutableMissing => process,
            ConditionKind::IpScoreAbove | ConditionKind::ErrorSeverityAbove => fields,
        })
    }

    fn enrich(&self, event: &mut Event, _extra: &mut Vec<Event>) {
        let mut target: Option<Target> = None;
        for (index, trigger) in self.triggers.iter().enumerate() {
            if !trigger.matches(event) {
                continue;
            }
            trigger.stats.matched.fetch_add(1, Ordering::Relaxed);
            let target = target.get_or_insert_with(|| Target::of(event));
            let mut found = json!({
                "trigger": trigger.name,
                "analysis": trigger.config.analysis.as_str(),
                "priority": trigger.config.priority.as_str(),
            });
            match self.admit(index, Instant::now()) {
                Ok(guards) => {
                    trigger.stats.ran.fetch_add(1, Ordering::Relaxed);
                    found["analyzer"] = trigger.analyzer.name().into();
                    match trigger.analyzer.analyse(trigger.config.analysis, target) {
                        Ok(result) => found["result"] = result,
                        Err(error) => found["error"] = error.into(),
                    }
                    drop(guards);
                }
                Err(refusal) => {
                    let counter = match refusal {
                        Refusal::RateLimited => &trigger.stats.rate_limited,
                        Refusal::Busy => &trigger.stats.busy,
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                    found["skipped"] = refusal.as_str().into();
                }
            }
            crate::record(&mut event.enrichment, TRIGGER_TRACER, found);
        }
    }
}

/// Priorities in order, for documentation and tests.
pub const PRIORITIES: [Priority; 4] =
    [Priority::Low, Priority::Normal, Priority::High, Priority::Critical];
