//! The Report detector itself: one notice per record, and overall statistics.
//!
//! Report is seed 004's system module. It correlates nothing; it gives every record a uniform,
//! human-readable form (a notice finding with a one-line summary and the record's key fields) so
//! a listener such as the log listener can show what the agent sees, and it counts what went by.

use vigil_core::{ComponentError, Detector, DetectorContext, Filter, Statistics};
use vigil_event::{Event, Finding, FindingLevel, LogEvent, Payload, Value, one_line};

use super::{ReportConfig, statistics::ReportStatistics};

/// Dispatches a notice finding named `Report` for every event it handles and keeps overall
/// statistics: records in total and by kind, source, system, severity and action, and the
/// first and last time a record was seen.
///
/// Memory stays bounded: each statistics dimension tracks at most
/// [`MAX_DISTINCT_KEYS`](ReportDetector::MAX_DISTINCT_KEYS) keys and counts the rest under
/// `other`. Statistics survive restarts through [`save_state`](Detector::save_state) and
/// [`restore_state`](Detector::restore_state).
#[derive(Debug, Clone)]
pub struct ReportDetector {
    filter: Filter,
    summary_max_chars: usize,
    statistics: ReportStatistics,
}

impl ReportDetector {
    /// The detector's name, which is also the source of the notices it dispatches.
    pub const NAME: &'static str = "report";

    /// The name of every finding the detector dispatches.
    pub const FINDING_NAME: &'static str = "Report";

    /// The most distinct keys kept per statistics dimension; further keys count under `other`.
    pub const MAX_DISTINCT_KEYS: usize = 1000;

    /// A detector configured by `config` (its `enabled` flag is not consulted; see
    /// [`ReportConfig::build`]).
    pub fn new(config: &ReportConfig) -> ReportDetector {
        ReportDetector {
            filter: config.filter.clone(),
            summary_max_chars: config.summary_max_chars,
            statistics: ReportStatistics::default(),
        }
    }

    /// The filter the runtime registers the detector with.
    pub fn filter(&self) -> &Filter {
        &self.filter
    }

    /// The notice the detector dispatches for `event`.
    fn notice(&self, event: &Event, system: &str) -> Finding {
        let summary = one_line(&event.payload.summary(), self.summary_max_chars);
        let mut finding =
            Finding::new(FindingLevel::Notice, ReportDetector::FINDING_NAME, system, summary);
        finding.data = key_fields(event);
        if let Payload::Log(LogEvent { raw: Some(raw), .. }) = &event.payload {
            finding.record = Some(raw.clone());
        }
        finding
    }
}

impl Detector for ReportDetector {
    fn name(&self) -> &str {
        ReportDetector::NAME
    }

    fn handle(&mut self, event: &Event, ctx: &mut DetectorContext) -> Result<(), ComponentError> {
        // The detector's own notices would otherwise come back to it through a filter that
        // accepts findings, and each would dispatch another, for ever.
        if *event.source == *ReportDetector::NAME {
            return Ok(());
        }
        let system = system_of(event);
        self.statistics.record(event, system, ReportDetector::MAX_DISTINCT_KEYS);
        ctx.finding(self.notice(event, system));
        Ok(())
    }

    fn statistics(&self) -> Statistics {
        self.statistics.report()
    }

    fn save_state(&self) -> Option<Value> {
        Some(self.statistics.save())
    }

    fn restore_state(&mut self, state: Value) -> Result<(), ComponentError> {
        self.statistics = ReportStatistics::restore(state, ReportDetector::MAX_DISTINCT_KEYS)?;
        Ok(())
    }
}

#[cfg(test)]
impl ReportDetector {
    /// The largest number of distinct keys in any statistics dimension.
    pub(super) fn max_n_keys(&self) -> usize {
        self.statistics.max_n_keys()
    }
}

/// The system a record is about: the program that wrote a log line, a finding's system, an API
/// record's collector, otherwise the component that produced the event.
fn system_of(event: &Event) -> &str {
    let named = match &event.payload {
        Payload::Log(log) => Some(log.source.as_str())
            .filter(|it| !it.is_empty())
            .or(log.service.as_deref().filter(|it| !it.is_empty())),
        Payload::Finding(finding) => Some(finding.system.as_str()),
        Payload::ApiRecord(record) => Some(record.collector.as_str()),
        _ => None,
    };
    named.filter(|it| !it.is_empty()).unwrap_or(&event.source)
}

/// The record's key fields, for the notice's data: what identifies the original event and what
/// its payload says about who did what, where.
fn key_fields(event: &Event) -> vigil_event::Map {
    let mut data = vigil_event::Map::new();
    let mut put = |key: &str, value: Value| {
        data.insert(key.to_owned(), value);
    };
    put("event_id", event.id.to_string().into());
    put("kind", event.kind().as_str().into());
    put("source", event.source.to_string().into());
    put("severity", event.severity.as_str().into());
    match &event.payload {
        Payload::Log(log) => {
            if !log.source.is_empty() {
                put("log_source", log.source.clone().into());
            }
            let texts = [
                ("action", &log.action),
                ("user", &log.user),
                ("service", &log.service),
                ("level", &log.level),
            ];
            for (key, value) in texts {
                if let Some(value) = value {
                    put(key, value.clone().into());
                }
            }
            if let Some(ip) = log.ip {
                put("ip", ip.to_string().into());
            }
            if let Some(port) = log.port {
                put("port", port.into());
            }
            if let Some(pid) = log.pid {
                put("pid", pid.into());
            }
            if let Some(at) = log.timestamp {
                put("logged_at", at.to_rfc3339().into());
            }
        }
        Payload::Process(p) => {
            put("pid", p.process.pid.into());
            put("phase", p.phase.as_str().into());
            if let Some(name) = &p.process.name {
                put("name", name.clone().into());
            }
            if let Some(ppid) = p.process.ppid {
                put("ppid", ppid.into());
            }
        }
        Payload::Connection(c) => {
            put("protocol", c.protocol.clone().into());
            put("local", c.local.to_string().into());
            put("remote", c.remote.to_string().into());
            put("ip", c.remote.ip().to_string().into());
            put("state", c.state.clone().into());
            if let Some(pid) = c.pid {
                put("pid", pid.into());
            }
            if let Some(name) = &c.process_name {
                put("process_name", name.clone().into());
            }
        }
        Payload::Finding(f) => {
            put("name", f.name.clone().into());
            put("system", f.system.clone().into());
        }
        Payload::Audit(a) => put("record_type", a.record_type().into()),
        Payload::ApiRecord(r) => {
            put("collector", r.collector.clone().into());
            put("tag", r.tag.clone().into());
        }
        _ => {}
    }
    data
}
