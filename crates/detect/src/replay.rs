//! The detection half of `vigil replay`: historic lines through the parsers and every detector,
//! as fast as one core allows, with event-time clocks so the result depends on the lines only.
//!
//! Each line is parsed once with the borrowed fast path ([`Parser::parse`]); detectors read the
//! borrowed [`Observation`], so no event is built and nothing is allocated for lines no detector
//! counts. Ban requests are handed back to the caller, which decides them (the ban manager's
//! dry run) and reports the decisions with [`Replay::ban_decided`], in line order.
//!
//! With tracers ([`Replay::with_tracers`], the agent's log tracers), each recognised line is
//! also made into an owned event before the detectors read it — one event whose buffers are
//! reused from line to line, stamped with the line's own time so the tracers' event-time
//! state (threat scores, windows) depends on the lines only — and enriched as the agent's
//! publish path enriches it. The IP tracer's block-list requests (jail `ip_tracer`) are kept
//! apart from the jails' requests: [`ReplaySummary::blocklisted`].

use std::sync::Arc;

use vigil_core::Enricher;
use vigil_event::{Ban, Event, Finding, LogEvent, Payload, Trace};
use vigil_parse::{Parsed, Parser};

use crate::{JailSet, LineDetector, Observation, SshdDetector, observation::utc};

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
    tracers: Vec<Arc<dyn Enricher>>,
    /// The event the tracers enrich, refilled for each line.
    event: Event,
    filler: Filler,
    blocklisted: Vec<Ban>,
    blocklisted_total: u64,
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
    /// The IP tracer's block-list requests (jail `ip_tracer`, the score and its reasons in the
    /// evidence's `data`), ordered by time (at most [`MAX_FINDINGS_KEPT`]); not decided by the
    /// ban manager here, so the jails' bans stay comparable with fail2ban's.
    pub blocklisted: Vec<Ban>,
    /// Block-list requests in total.
    pub blocklisted_total: u64,
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
            tracers: Vec::new(),
            event: Event::new("replay", "replay", Payload::Log(LogEvent::default())),
            filler: Filler::default(),
            blocklisted: Vec::new(),
            blocklisted_total: 0,
        }
    }

    /// The same replay, enriching each recognised line with `tracers` (in order) before the
    /// detectors read it; the events carry `host` and the source `replay`.
    #[must_use]
    pub fn with_tracers(mut self, tracers: Vec<Arc<dyn Enricher>>, host: Arc<str>) -> Replay {
        self.tracers = tracers;
        self.event.host = host;
        self
    }

    /// Reads one line (without its terminator); ban requests are pushed to `requests`.
    pub fn line(&mut self, line: &str, requests: &mut Vec<Ban>) {
        self.line_with(line, requests, None::<fn(LogEvent)>);
    }

    /// [`line`](Replay::line), also handing the line's owned event (with `raw` set) to `keep`
    /// when a parser recognised it — for a replay that back-fills a store. With tracers it is
    /// the event they read, so the line is not converted twice.
    pub fn line_keeping(
        &mut self,
        line: &str,
        requests: &mut Vec<Ban>,
        keep: impl FnOnce(LogEvent),
    ) {
        self.line_with(line, requests, Some(keep));
    }

    fn line_with(
        &mut self,
        line: &str,
        requests: &mut Vec<Ban>,
        keep: Option<impl FnOnce(LogEvent)>,
    ) {
        self.lines += 1;
        let Some(parsed) = self.parser.parse(line) else { return };
        self.events += 1;
        let obs = Observation::from_parsed(&parsed, line, self.last_ms);
        self.last_ms = obs.at_ms;
        if !self.tracers.is_empty() {
            self.enrich(&parsed, line, obs.at_ms);
            if let Some(keep) = keep
                && let Payload::Log(log) = &mut self.event.payload
            {
                keep(std::mem::take(log));
            }
        } else if let Some(keep) = keep {
            keep(parsed.to_log_event(line));
        }
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

    /// Runs the tracers over the line's event (event time `at_ms`); keeps the block-list
    /// requests they make.
    fn enrich(&mut self, parsed: &Parsed<'_>, line: &str, at_ms: i64) {
        let event = &mut self.event;
        if let Payload::Log(log) = &mut event.payload {
            self.filler.fill(log, parsed, line);
        }
        event.timestamp = match &event.payload {
            Payload::Log(LogEvent { timestamp: Some(at), .. }) => *at,
            _ => utc(at_ms),
        };
        event.enrichment.fields.clear();
        // The trace starts at the line's time (the tracers' records share the trace's time),
        // so no clock is read and the trace depends on the lines only; its buffer is reused.
        match &mut event.enrichment.trace {
            Some(trace) => {
                trace.traced_at = event.timestamp;
                trace.tracers.clear();
            }
            none => {
                *none = Some(Trace {
                    traced_at: event.timestamp,
                    tracers: vigil_event::TracerRecords::with_capacity(4),
                });
            }
        }
        for extra in vigil_core::enrich_with(&self.tracers, event) {
            if let Payload::Ban(ban) = extra.payload {
                self.blocklisted_total += 1;
                if self.blocklisted.len() < MAX_FINDINGS_KEPT {
                    self.blocklisted.push(ban);
                }
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
    pub fn finish(mut self) -> ReplaySummary {
        // Lines of several files may go back in time; the order within one time is the lines'.
        self.blocklisted.sort_by_key(|it| it.at);
        ReplaySummary {
            lines: self.lines,
            events: self.events,
            findings: self.findings,
            findings_total: self.findings_total,
            sshd: self.sshd,
            jails: self.jails,
            blocklisted: self.blocklisted,
            blocklisted_total: self.blocklisted_total,
        }
    }
}

/// Refills one [`LogEvent`] line after line: makes it what [`Parsed::to_log_event`] makes of
/// the line, reusing its buffers — an optional field the line lacks keeps its buffer aside for
/// the next line that has it — and the converted time of the last stamp.
#[derive(Debug, Default)]
struct Filler {
    spare: [String; 10],
    stamp: Option<vigil_parse::Stamp>,
}

impl Filler {
    fn fill(&mut self, log: &mut LogEvent, parsed: &Parsed<'_>, raw: &str) {
        fn text(into: &mut String, from: &str) {
            into.clear();
            into.push_str(from);
        }
        fn opt(into: &mut Option<String>, from: Option<&str>, spare: &mut String) {
            match (into.as_mut(), from) {
                (Some(buffer), Some(from)) => text(buffer, from),
                (None, Some(from)) => {
                    let mut buffer = std::mem::take(spare);
                    text(&mut buffer, from);
                    *into = Some(buffer);
                }
                (Some(_), None) => *spare = into.take().unwrap_or_default(),
                (None, None) => {}
            }
        }
        let [level, action, user, service, raw_spare, host, ip_raw, method, protocol, path] =
            &mut self.spare;
        text(&mut log.source, parsed.source);
        if parsed.timestamp != self.stamp || log.timestamp.is_none() {
            log.timestamp = parsed.timestamp.and_then(vigil_parse::Stamp::to_utc);
            self.stamp = parsed.timestamp;
        }
        opt(&mut log.level, parsed.level.map(vigil_parse::Level::as_str), level);
        opt(&mut log.action, parsed.action.map(vigil_parse::Action::as_str), action);
        log.ip = parsed.ip;
        opt(&mut log.user, parsed.user, user);
        log.port = parsed.port;
        opt(&mut log.service, parsed.service, service);
        log.pid = parsed.pid;
        text(&mut log.message, parsed.message);
        opt(&mut log.raw, Some(raw), raw_spare);
        log.utc_offset_seconds = parsed.timestamp.map(|it| it.offset);
        opt(&mut log.host, parsed.host, host);
        opt(&mut log.ip_raw, parsed.ip_raw, ip_raw);
        opt(&mut log.method, parsed.method, method);
        log.dst = parsed.dst;
        log.dport = parsed.dport;
        opt(&mut log.protocol, parsed.protocol, protocol);
        log.status = parsed.status;
        opt(&mut log.path, parsed.path, path);
        log.origin = None;
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

    const LINES: [&str; 6] = [
        "Nov  1 00:00:46 web1 sshd[4400]: Accepted publickey for deploy from 113.77.199.190 port 57189 ssh2: ED25519 SHA256:meC0GOrQg9HtcZPPVejQA+zGifi2G8pAHQFPGI9EL+o",
        "Nov  1 00:00:34 web1 kernel: [825183.288165] [UFW BLOCK] IN=eth0 OUT= MAC=52:54:00:12:34:56:fe:54:00:ab:cd:ef:08:00 SRC=93.154.122.216 DST=198.51.100.10 LEN=52 TOS=0x00 PREC=0x00 TTL=248 ID=38038 PROTO=TCP SPT=40300 DPT=80 WINDOW=29200 RES=0x00 SYN URGP=0",
        "Nov  1 00:00:00 web1 CRON[4373]: pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)",
        "Nov  1 00:01:07 web1 sshd[4403]: Failed password for invalid user user from 212.183.234.125 port 52664 ssh2",
        "2026-11-01T00:02:00Z web1 app[12]: ERROR database connection refused",
        "Nov  1 00:00:04 web1 sshd[4377]: Connection reset by 217.244.56.62 port 60395 [preauth]",
    ];

    #[test]
    fn the_reused_event_is_what_the_parser_would_build() {
        let parser = Format::Auto.parser(Clock::utc_at("2026-11-23T12:00:00Z".parse().unwrap()));
        let mut log = LogEvent::default();
        let mut filler = Filler::default();
        // Every order, so each field goes from set to unset and back.
        for first in LINES {
            for line in LINES {
                for line in [first, line] {
                    let parsed = parser.parse(line).expect(line);
                    filler.fill(&mut log, &parsed, line);
                    assert_eq!(log, parsed.to_log_event(line), "{line}");
                }
            }
        }
    }

    /// A tracer that notes what it saw: the line's time, the trace's time, the tracers before
    /// it.
    #[derive(Default)]
    struct Seen(std::sync::Mutex<Vec<(String, String, Vec<String>)>>);

    impl Enricher for Seen {
        fn name(&self) -> &str {
            "seen"
        }

        fn wants(&self, _: &Event) -> bool {
            true
        }

        fn enrich(&self, event: &mut Event, _: &mut Vec<Event>) {
            let trace = event.enrichment.trace.as_ref().unwrap();
            let before = trace.tracers.iter().map(|it| it.tracer.to_string()).collect();
            let entry = (event.timestamp.to_rfc3339(), trace.traced_at.to_rfc3339(), before);
            self.0.lock().unwrap().push(entry);
        }
    }

    fn traced_with(seen: Arc<Seen>) -> Replay {
        let ip = vigil_enrich::ip::IpTracerConfig::default().build().unwrap().unwrap();
        let event = vigil_enrich::event::EventTracerConfig::default().build().unwrap();
        let chain: Vec<Arc<dyn Enricher>> = vec![Arc::new(ip), Arc::new(event), seen];
        replay().with_tracers(chain, "web1".into())
    }

    fn traced() -> Replay {
        traced_with(Arc::default())
    }

    #[test]
    fn tracers_enrich_each_line_in_event_time_and_block_lists_stay_apart() {
        let seen = Arc::new(Seen::default());
        let mut replay = traced_with(seen.clone());
        let mut requests = Vec::new();
        replay.line(LINES[0], &mut requests);
        replay.line("not a log line", &mut requests);
        // One address failing fast, over the IP tracer's threshold: the jail asks for its
        // ban and the tracer block-lists it, each on its own list.
        for i in 0..40 {
            let line = format!(
                "Nov  1 00:01:{i:02} web1 sshd[9]: Failed password for root from 198.51.100.77 port 4000 ssh2"
            );
            replay.line(&line, &mut requests);
        }
        assert!(requests.iter().all(|it| it.jail == "sshd") && !requests.is_empty());
        let summary = replay.finish();
        // Every recognised line, in order, stamped with its own time, the trace too.
        let seen = seen.0.lock().unwrap();
        assert_eq!(seen.len(), 41);
        let t = "2026-11-01T00:00:46+00:00".to_owned();
        assert_eq!(seen[0], (t.clone(), t, vec!["ip".to_owned(), "event".to_owned()]));
        assert_eq!(seen[40].0, "2026-11-01T00:01:39+00:00");
        assert!(seen.iter().all(|it| it.0 == it.1));
        assert_eq!(summary.blocklisted_total, 1);
        let listed = &summary.blocklisted[0];
        assert_eq!((listed.ip.as_str(), listed.jail.as_str()), ("198.51.100.77", "ip_tracer"));
        assert!(listed.at.to_rfc3339().starts_with("2026-11-01T00:01:"));
        assert!(listed.evidence.data["score"].as_u64().unwrap() >= 70);
    }

    #[test]
    fn a_kept_line_is_the_event_the_tracers_read() {
        let parser = Format::Auto.parser(Clock::utc_at("2026-11-23T12:00:00Z".parse().unwrap()));
        let mut replay = traced();
        let mut requests = Vec::new();
        for line in LINES.iter().chain(LINES.iter().rev()) {
            let mut kept = None;
            replay.line_keeping(line, &mut requests, |log| kept = Some(log));
            assert_eq!(kept, Some(parser.parse(line).unwrap().to_log_event(line)), "{line}");
        }
        let mut kept = None;
        replay.line_keeping("not a log line", &mut requests, |log| kept = Some(log));
        assert_eq!(kept, None);
    }

    proptest! {
        /// Any input, including hostile user names and broken lines, is read without a panic,
        /// and text that is not an address is never taken for one.
        #[test]
        fn any_line_is_read_without_panicking(lines in proptest::collection::vec(".{0,200}", 1..20)) {
            let mut replay = traced();
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
