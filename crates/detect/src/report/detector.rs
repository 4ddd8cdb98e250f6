//! The Report detector itself: one notice per record, and overall statistics.
//!
//! Report is seed 004's system module. It correlates nothing; it gives every record a uniform,
//! human-readable form (a notice finding with a one-line summary and the record's key fields) so
//! a listener such as the log listener can show what the agent sees, and it counts what went by.

use std::fmt::Write as _;

use vigil_core::{ComponentError, Detector, DetectorContext, Filter, Statistics};
use vigil_event::{Event, Finding, FindingLevel, LogEvent, Payload, ProcessPhase, Value};

use super::{ReportConfig, statistics::ReportStatistics};
use crate::bounded::truncate_chars;

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
        let summary = one_line(&summarize(&event.payload), self.summary_max_chars);
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

/// A short description of a payload, possibly spanning lines; see [`one_line`].
fn summarize(payload: &Payload) -> String {
    match payload {
        Payload::Log(log) => {
            [Some(log.message.as_str()), log.raw.as_deref(), log.action.as_deref()]
                .into_iter()
                .flatten()
                .find(|it| !it.trim().is_empty())
                .unwrap_or("empty log record")
                .to_owned()
        }
        Payload::SystemMetric(m) => {
            let mut parts = Vec::new();
            if let Some(cpu) = m.cpu_percent {
                parts.push(format!("cpu {cpu:.1}%"));
            }
            if let (Some(total), Some(available)) = (m.memory_total_bytes, m.memory_available_bytes)
                && total > 0
            {
                let used = total.saturating_sub(available) as f64 * 100.0 / total as f64;
                parts.push(format!("memory {used:.1}% used"));
            }
            if let Some([one, five, fifteen]) = m.load {
                parts.push(format!("load {one:.2} {five:.2} {fifteen:.2}"));
            }
            if parts.is_empty() { "system metrics sample".to_owned() } else { parts.join(", ") }
        }
        Payload::NetworkMetric(m) => format!(
            "{} interfaces, {} tcp sockets, {} listening ports",
            m.interfaces.len(),
            m.tcp_states.values().fold(0u64, |acc, it| acc.saturating_add(*it)),
            m.listening_ports.len()
        ),
        Payload::Process(p) => {
            let mut text = format!("process {} pid {}", phase_name(p.phase), p.process.pid);
            if let Some(name) = &p.process.name {
                let _ = write!(text, " ({name})");
            }
            text
        }
        Payload::Connection(c) => {
            let mut text = format!("{} {} -> {} {}", c.protocol, c.local, c.remote, c.state);
            match (&c.process_name, c.pid) {
                (Some(name), Some(pid)) => {
                    let _ = write!(text, " by {name} (pid {pid})");
                }
                (Some(name), None) => {
                    let _ = write!(text, " by {name}");
                }
                (None, Some(pid)) => {
                    let _ = write!(text, " by pid {pid}");
                }
                (None, None) => {}
            }
            text
        }
        Payload::Finding(f) => format!("{}: {}", f.name, f.summary),
        Payload::Audit(a) => {
            format!("{} audit record with {} fields", a.record_type(), a.columns().len())
        }
        Payload::ApiRecord(r) => format!("{} record ({})", r.collector, r.tag),
        Payload::AgentStatus(s) => format!(
            "agent {} up {}s, {} events published, {} dropped",
            s.version, s.uptime_seconds, s.events_published, s.events_dropped
        ),
        other => format!("{} event", other.kind()),
    }
}

/// `text` on one line, cut to `max_chars` characters (0 means no limit). Line breaks and tabs
/// become spaces and other control characters are escaped, so a crafted record cannot forge
/// lines in a log that shows the summary.
fn one_line(text: &str, max_chars: usize) -> String {
    let mut line = String::with_capacity(text.len());
    for c in text.trim().chars() {
        match c {
            '\n' | '\r' | '\t' => line.push(' '),
            c if c.is_control() => line.extend(c.escape_default()),
            c => line.push(c),
        }
    }
    if max_chars == 0 {
        return line;
    }
    let cut = truncate_chars(&line, max_chars);
    if cut.len() == line.len() {
        return line;
    }
    // Leave room for the ellipsis that marks the cut.
    let mut cut = truncate_chars(cut, max_chars - 1).trim_end().to_owned();
    cut.push('…');
    cut
}

fn phase_name(phase: ProcessPhase) -> &'static str {
    match phase {
        ProcessPhase::Snapshot => "snapshot",
        ProcessPhase::Start => "start",
        ProcessPhase::Exit => "exit",
    }
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
            put("phase", phase_name(p.phase).into());
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_are_one_line_and_cut_at_a_char_boundary() {
        assert_eq!(one_line("  a\nb\tc\u{7}  ", 0), "a b c\\u{7}");
        assert_eq!(one_line("héllo wörld", 5), "héll…");
        assert_eq!(one_line("héllo", 5), "héllo");
        assert_eq!(one_line("ab cd", 4), "ab…");
        assert_eq!(one_line("日本語のテキスト", 1), "…");
    }
}
