//! One-line, human-readable summaries of events, shared by everything that shows events to people
//! (the Report detector's notices, the log listener, CLI tables).
//!
//! Summaries of untrusted text are made safe to print with [`one_line`]: a crafted log line or
//! user name cannot forge extra lines or terminal escapes in the output.

use std::fmt::Write as _;

use crate::{Payload, ProcessPhase};

impl ProcessPhase {
    /// The snake_case name used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            ProcessPhase::Snapshot => "snapshot",
            ProcessPhase::Start => "start",
            ProcessPhase::Exit => "exit",
        }
    }
}

impl Payload {
    /// A short description of the payload. It may contain line breaks from the record itself;
    /// pass it through [`one_line`] before printing.
    pub fn summary(&self) -> String {
        match self {
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
                if let (Some(total), Some(available)) =
                    (m.memory_total_bytes, m.memory_available_bytes)
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
                let mut text = format!("process {} pid {}", p.phase.as_str(), p.process.pid);
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
                let fields: Vec<String> = a
                    .columns()
                    .iter()
                    .zip(a.values())
                    .map(|(column, value)| match value {
                        crate::Value::String(s) => format!("{column}={s}"),
                        other => format!("{column}={other}"),
                    })
                    .collect();
                format!("{} {}", a.record_type(), fields.join(" "))
            }
            Payload::ApiRecord(r) => format!("{} record ({})", r.collector, r.tag),
            Payload::AgentStatus(s) => format!(
                "agent {} up {}s, {} events published, {} dropped",
                s.version, s.uptime_seconds, s.events_published, s.events_dropped
            ),
            Payload::Ban(b) => {
                let mut text = format!("{} {} in jail {}", b.stage.as_str(), b.ip, b.jail);
                if b.failures > 0 {
                    let _ = write!(text, " after {} failures", b.failures);
                }
                if let Some(until) = b.until {
                    let _ = write!(text, " until {}", until.to_rfc3339());
                }
                if b.dry_run && b.stage == crate::BanStage::Banned {
                    text.push_str(" (dry run)");
                }
                if let Some(reason) = &b.reason {
                    let _ = write!(text, ": {reason}");
                }
                text
            }
        }
    }
}

/// `text` on one line, cut to `max_chars` characters (0 means no limit). Line breaks and tabs
/// become spaces and other control characters are escaped, so a crafted record cannot forge
/// lines or terminal escapes where the text is shown; a cut ends with `…`.
pub fn one_line(text: &str, max_chars: usize) -> String {
    let text = text.trim();
    let cut = max_chars != 0 && text.chars().nth(max_chars).is_some();
    let keep = if cut { max_chars - 1 } else { usize::MAX };
    let mut line = String::with_capacity(text.len().min(keep.saturating_mul(4)));
    for c in text.chars().take(keep) {
        match c {
            '\n' | '\r' | '\t' => line.push(' '),
            c if c.is_control() => line.extend(c.escape_default()),
            c => line.push(c),
        }
    }
    if cut {
        line.truncate(line.trim_end().len());
        line.push('…');
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_escapes_and_cuts_at_a_char_boundary() {
        assert_eq!(one_line("  a\nb\tc\u{7}  ", 0), "a b c\\u{7}");
        assert_eq!(one_line("a\nb\r\n\tc\u{1b}[31m\n", 100), "a b   c\\u{1b}[31m");
        assert_eq!(one_line("héllo wörld", 5), "héll…");
        assert_eq!(one_line("héllo", 5), "héllo");
        assert_eq!(one_line("ab cd", 4), "ab…");
        assert_eq!(one_line("日本語のテキスト", 1), "…");
    }
}
