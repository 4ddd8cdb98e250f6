//! The detection half of `vigil replay`: historic lines through the parsers and every detector,
//! as fast as one core allows, with event-time clocks so the result depends on the lines only.
//!
//! Each line is parsed once with the borrowed fast path ([`Parser::parse`]); detectors read the
//! borrowed [`Observation`], so no event is built and nothing is allocated for lines no detector
//! counts. Ban requests are handed back to the caller, which decides them (the ban manager's
//! dry run) and reports the decisions with [`Replay::ban_decided`], in line order.

use vigil_event::{Ban, Finding};
use vigil_parse::Parser;

use crate::{JailSet, LineDetector, Observation, SshdDetector};

/// Findings kept for the summary; beyond it they are only counted.
pub const MAX_FINDINGS_KEPT: usize = 100_000;

/// The detectors of a replay, fed one line at a time.
pub struct Replay {
    parser: Box<dyn Parser>,
    jails: JailSet,
    sshd: Option<SshdDetector>,
    others: Vec<Box<dyn LineDetector>>,
    lines: u64,
    events: u64,
    findings: Vec<Finding>,
    findings_total: u64,
    /// The last line time seen, for lines without one.
    last_ms: i64,
    scratch: Vec<Finding>,
}

impl std::fmt::Debug for Replay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replay").field("lines", &self.lines).field("events", &self.events).finish()
    }
}

/// What a replay found.
#[derive(Debug, Default)]
pub struct ReplaySummary {
    /// Lines read.
    pub lines: u64,
    /// Lines a parser recognised (each would be one structured event in the agent).
    pub events: u64,
    /// Findings, in line order (at most [`MAX_FINDINGS_KEPT`]).
    pub findings: Vec<Finding>,
    /// Findings in total.
    pub findings_total: u64,
    /// The sshd detector, for its statistics.
    pub sshd: Option<SshdDetector>,
    /// The jails, for their statistics.
    pub jails: JailSet,
}

impl Replay {
    /// A replay reading lines with `parser` into `jails`, the sshd detector when given, and the
    /// other line detectors.
    pub fn new(
        parser: Box<dyn Parser>,
        jails: JailSet,
        sshd: Option<SshdDetector>,
        others: Vec<Box<dyn LineDetector>>,
    ) -> Replay {
        Replay {
            parser,
            jails,
            sshd,
            others,
            lines: 0,
            events: 0,
            findings: Vec::new(),
            findings_total: 0,
            last_ms: 0,
            scratch: Vec::new(),
        }
    }

    /// Reads one line (without its terminator); ban requests are pushed to `requests`.
    pub fn line(&mut self, line: &str, requests: &mut Vec<Ban>) {
        self.line_with(line, requests, |_| ());
    }

    /// [`line`](Replay::line), also handing the line's owned event (with `raw` set) to `keep`
    /// when a parser recognised it — for a replay that back-fills a store.
    pub fn line_keeping(
        &mut self,
        line: &str,
        requests: &mut Vec<Ban>,
        keep: impl FnOnce(vigil_event::LogEvent),
    ) {
        self.line_with(line, requests, |parsed| keep(parsed.to_log_event(line)));
    }

    fn line_with(
        &mut self,
        line: &str,
        requests: &mut Vec<Ban>,
        on_parsed: impl FnOnce(&vigil_parse::Parsed<'_>),
    ) {
        self.lines += 1;
        let Some(parsed) = self.parser.parse(line) else { return };
        on_parsed(&parsed);
        self.events += 1;
        let obs = Observation::from_parsed(&parsed, line, self.last_ms);
        self.last_ms = obs.at_ms;
        self.jails.observe(&obs, requests);
        if let Some(sshd) = &mut self.sshd {
            sshd.observe(&obs, &mut self.scratch);
        }
        for detector in &mut self.others {
            detector.observe(&obs, &mut self.scratch);
        }
        for finding in self.scratch.drain(..) {
            self.findings_total += 1;
            if self.findings.len() < MAX_FINDINGS_KEPT {
                self.findings.push(finding);
            }
        }
    }

    /// Reports a ban decision back to the detectors that count blocked addresses.
    pub fn ban_decided(&mut self, ban: &Ban) {
        if let Some(sshd) = &mut self.sshd {
            sshd.ban_decided(&ban.ip, ban.at);
        }
    }

    /// Lines read so far.
    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// The summary.
    pub fn finish(self) -> ReplaySummary {
        ReplaySummary {
            lines: self.lines,
            events: self.events,
            findings: self.findings,
            findings_total: self.findings_total,
            sshd: self.sshd,
            jails: self.jails,
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use vigil_parse::{Clock, Format};

    use super::*;
    use crate::{
        IpSweepConfig, JailsConfig, PortScanConfig, RecurringErrorsConfig, SshdConfig, net::IpNet,
    };

    fn replay() -> Replay {
        let parser = Format::Auto.parser(Clock::utc_at("2026-11-23T12:00:00Z".parse().unwrap()));
        let jails = JailSet::build(&JailsConfig::default().effective()).unwrap();
        let others: Vec<Box<dyn LineDetector>> = vec![
            Box::new(PortScanConfig::default().build().unwrap()),
            Box::new(IpSweepConfig::default().build().unwrap()),
            Box::new(RecurringErrorsConfig::default().build().unwrap()),
        ];
        Replay::new(parser, jails, SshdConfig::default().build(), others)
    }

    proptest! {
        /// Any input, including hostile user names and broken lines, is read without a panic,
        /// and text that is not an address is never taken for one.
        #[test]
        fn any_line_is_read_without_panicking(lines in proptest::collection::vec(".{0,200}", 1..20)) {
            let mut replay = replay();
            let mut requests = Vec::new();
            for line in &lines {
                replay.line(line, &mut requests);
                let _ = line.parse::<IpNet>();
                let _ = crate::signature("x", line);
            }
            prop_assert_eq!(replay.lines(), lines.len() as u64);
            prop_assert!(requests.iter().all(|it| it.ip.parse::<std::net::IpAddr>().is_ok()));
        }

        /// Hostile sshd lines with arbitrary user names: only the address in sshd's own position
        /// is ever banned.
        #[test]
        fn user_names_never_plant_an_address(user in "[ -~]{0,60}") {
            let mut replay = replay();
            let mut requests = Vec::new();
            for i in 0..6 {
                let line = format!(
                    "Nov  1 00:00:0{i} web1 sshd[9]: Failed password for invalid user {user} from 203.0.113.9 port 4000 ssh2"
                );
                replay.line(&line, &mut requests);
            }
            prop_assert!(requests.iter().all(|it| it.ip == "203.0.113.9"), "{:?}", requests);
        }
    }
}
