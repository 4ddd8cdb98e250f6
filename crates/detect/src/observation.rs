//! One log line as the detectors read it: a borrowed view built either from the parser's
//! zero-copy [`Parsed`] (the `vigil replay` fast path) or from a [`LogEvent`] on the bus (the
//! agent), so both paths run the same detector code and no event is built for lines that no
//! detector cares about.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use vigil_event::LogEvent;
use vigil_parse::{Action, Level, Parsed};

use crate::net::canonical;

/// What detectors read from one log line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Observation<'a> {
    /// When it happened (the line's own time, else when it was read), in milliseconds since the
    /// epoch.
    pub at_ms: i64,
    /// Offset from UTC of the zone the line was written in, in seconds (for daily statistics).
    pub utc_offset_seconds: i32,
    /// The format or program (`sshd`, `firewall`, …).
    pub source: &'a str,
    /// What happened.
    pub action: Option<Action>,
    /// The level keyword.
    pub level: Option<Level>,
    /// The remote address, IPv4-mapped addresses folded to IPv4.
    pub ip: Option<IpAddr>,
    /// The user name.
    pub user: Option<&'a str>,
    /// Authentication method.
    pub method: Option<&'a str>,
    /// Destination port (firewall lines).
    pub dport: Option<u16>,
    /// The message part.
    pub message: &'a str,
    /// The whole line, the evidence kept for findings and bans.
    pub line: &'a str,
}

impl<'a> Observation<'a> {
    /// The view of a parsed line; `fallback_ms` is used when the line has no time.
    pub fn from_parsed(p: &Parsed<'a>, line: &'a str, fallback_ms: i64) -> Observation<'a> {
        let (at_ms, utc_offset_seconds) = match p.timestamp {
            Some(t) => (t.seconds.saturating_mul(1000) + i64::from(t.nanos / 1_000_000), t.offset),
            None => (fallback_ms, 0),
        };
        Observation {
            at_ms,
            utc_offset_seconds,
            source: p.source,
            action: p.action,
            level: p.level,
            ip: p.ip.map(canonical),
            user: p.user,
            method: p.method,
            dport: p.dport,
            message: p.message,
            line,
        }
    }

    /// The view of a log event on the bus; `received` is the envelope's time, used when the
    /// line has none.
    pub fn from_log(log: &'a LogEvent, received: DateTime<Utc>) -> Observation<'a> {
        let at = log.timestamp.unwrap_or(received);
        Observation {
            at_ms: at.timestamp_millis(),
            utc_offset_seconds: log.utc_offset_seconds.unwrap_or(0),
            source: &log.source,
            action: log.action.as_deref().and_then(action_named),
            level: log.level.as_deref().and_then(Level::from_keyword),
            ip: log.ip.map(canonical),
            user: log.user.as_deref(),
            method: log.method.as_deref(),
            dport: log.dport,
            message: &log.message,
            line: log.raw.as_deref().unwrap_or(&log.message),
        }
    }

    /// The time as a chrono UTC time.
    pub fn at(&self) -> DateTime<Utc> {
        utc(self.at_ms)
    }
}

/// The action a snake_case name stands for.
pub fn action_named(name: &str) -> Option<Action> {
    Action::ALL.iter().copied().find(|it| it.as_str() == name)
}

/// Milliseconds since the epoch as a chrono UTC time (the epoch when out of range).
pub fn utc(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsed_lines_and_bus_events_give_the_same_view() {
        let clock = vigil_parse::Clock::utc_at("2026-11-23T12:00:00Z".parse().unwrap());
        let parser = vigil_parse::Format::Auto.parser(clock);
        let line = "Nov  1 00:00:03 web1 sshd[4242]: Failed password for invalid user pi from \
                    ::ffff:203.0.113.7 port 51234 ssh2";
        let parsed = parser.parse(line).unwrap();
        let fast = Observation::from_parsed(&parsed, line, 0);
        let log = parser.parse_line(line).unwrap();
        let slow = Observation::from_log(&log, utc(0));
        assert_eq!(fast, slow);
        assert_eq!(fast.action, Some(Action::FailedPasswordInvalid));
        assert_eq!(fast.ip, Some("203.0.113.7".parse().unwrap()));
        assert_eq!(fast.at().to_rfc3339(), "2026-11-01T00:00:03+00:00");
        assert_eq!(action_named("no_such_action"), None);
    }
}
