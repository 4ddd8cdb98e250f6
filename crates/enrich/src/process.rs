//! The process tracer (seed 001 `process_tracer`): for an event about a service, the processes
//! involved (the sshd processes for an sshd event) with a resource summary.
//!
//! Processes are read by vigil-collect's [`ProcessCollector`] and matched with its
//! [`find_by_name`]; the snapshot is refreshed at most every `refresh`, so a burst of sshd lines
//! costs one walk of `/proc`.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use vigil_collect::{ProcRoot, ProcessCollector, ProcessRecord, find_by_name, summarize};
use vigil_core::Enricher;
use vigil_event::{Event, Payload};

/// `[tracers.process]`: attach the processes of the service an event is about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ProcessTracerConfig {
    /// Run the tracer (it reads every process, at most once per `refresh`).
    pub enabled: bool,
    /// How old the process snapshot may get before it is read again.
    #[serde(with = "vigil_core::duration")]
    #[schemars(with = "String")]
    pub refresh: Duration,
    /// Most pids listed in one event's trace.
    pub max_listed: usize,
}

impl Default for ProcessTracerConfig {
    fn default() -> Self {
        ProcessTracerConfig { enabled: false, refresh: Duration::from_secs(5), max_listed: 8 }
    }
}

impl ProcessTracerConfig {
    /// The tracer reading `root`, or `None` when disabled.
    pub fn build(&self, root: ProcRoot) -> Option<ProcessTracer> {
        self.enabled.then(|| ProcessTracer::new(root, self.refresh, self.max_listed))
    }
}

/// The service a log event is about: its `service` field, else its source program, without a
/// `[pid]` or path.
pub fn service_of(event: &Event) -> Option<&str> {
    let Payload::Log(log) = &event.payload else { return None };
    let name = log.service.as_deref().unwrap_or(&log.source);
    let name = name.rsplit('/').next().unwrap_or(name);
    let name = name.split('[').next().unwrap_or(name).trim();
    (!name.is_empty()).then_some(name)
}

/// A collector and its last snapshot with the time it was taken.
type Snapshot = (ProcessCollector, Option<(Instant, Arc<Vec<ProcessRecord>>)>);

/// The process tracer.
pub struct ProcessTracer {
    collector: Mutex<Snapshot>,
    refresh: Duration,
    max_listed: usize,
}

impl std::fmt::Debug for ProcessTracer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessTracer").field("refresh", &self.refresh).finish_non_exhaustive()
    }
}

impl ProcessTracer {
    /// A tracer reading `root`.
    pub fn new(root: ProcRoot, refresh: Duration, max_listed: usize) -> ProcessTracer {
        ProcessTracer {
            collector: Mutex::new((ProcessCollector::new(root), None)),
            refresh,
            max_listed,
        }
    }

    /// The current process snapshot.
    pub fn processes(&self) -> Arc<Vec<ProcessRecord>> {
        let mut guard = self.collector.lock().unwrap_or_else(|it| it.into_inner());
        if let Some((at, records)) = &guard.1
            && at.elapsed() < self.refresh
        {
            return records.clone();
        }
        let records = Arc::new(guard.0.collect());
        guard.1 = Some((Instant::now(), records.clone()));
        records
    }

    /// What the tracer records for `service`: the matching processes and their resources.
    pub fn trace_service(&self, service: &str) -> serde_json::Value {
        let records = self.processes();
        let found = find_by_name(&records, service);
        let summary = summarize(found.iter().copied());
        json!({
            "service": service,
            "processes": found.len(),
            "pids": found.iter().take(self.max_listed).map(|it| it.info.pid).collect::<Vec<_>>(),
            "threads": summary.threads,
            "cpu_percent": summary.cpu_percent,
            "resident_bytes": summary.resident_bytes,
            "virtual_bytes": summary.virtual_bytes,
            "open_fds": summary.open_fds,
        })
    }
}

impl Enricher for ProcessTracer {
    fn name(&self) -> &str {
        "process"
    }

    fn wants(&self, event: &Event) -> bool {
        service_of(event).is_some()
    }

    fn enrich(&self, event: &mut Event, _extra: &mut Vec<Event>) {
        let Some(service) = service_of(event) else { return };
        let found = self.trace_service(service);
        crate::record(&mut event.enrichment, "process", found);
    }
}

#[cfg(test)]
mod tests {
    use vigil_event::LogEvent;

    use super::*;

    #[test]
    fn attaches_the_processes_of_the_service_an_event_is_about() {
        // This test binary is itself a running process with a known name.
        let me = std::fs::read_to_string("/proc/self/comm").unwrap().trim().to_owned();
        let tracer = ProcessTracer::new(ProcRoot::live(), Duration::from_secs(60), 4);
        let mut event = Event::new("h", "files.app", Payload::Log(LogEvent::new(&me, "hello")));
        assert_eq!(service_of(&event), Some(me.as_str()));
        assert!(tracer.wants(&event));
        tracer.enrich(&mut event, &mut Vec::new());
        let trace = event.enrichment.trace.unwrap();
        let found = trace.tracers[0].found.to_value();
        assert_eq!(trace.tracers[0].tracer, "process");
        assert!(found["processes"].as_u64().unwrap() >= 1, "{found}");
        let pids: Vec<u64> =
            found["pids"].as_array().unwrap().iter().filter_map(|it| it.as_u64()).collect();
        assert!(pids.contains(&u64::from(std::process::id())) || pids.len() == 4, "{found}");
        assert!(found["resident_bytes"].as_u64().unwrap() > 0);
    }
}
