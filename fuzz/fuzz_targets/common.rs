//! Shared by every fuzz target: run one parser over the input and check what it returns.
//!
//! Parsers must never panic, whatever the bytes; what they return must hold together: an
//! address they report comes from the line (its text, or the IPv4 inside a mapped IPv6
//! address), a port is a number written in the line, and the owned event can be built.

use vigil_parse::{Clock, Format};

/// The clock: a zone with daylight saving time, so the hour cache and gaps are exercised.
pub fn clock() -> Clock {
    let tz = jiff::tz::TimeZone::get("Europe/Berlin").unwrap_or(jiff::tz::TimeZone::UTC);
    Clock::new(tz, "2026-11-23T12:00:00Z".parse().expect("a valid time"))
}

/// Parses `data` (lossily decoded) with `format` and checks the result.
pub fn run(format: Format, data: &[u8]) {
    thread_local! {
        static PARSERS: Vec<Box<dyn vigil_parse::Parser>> =
            Format::ALL.iter().map(|it| it.parser(clock())).collect();
    }
    let text = String::from_utf8_lossy(data);
    let line = text.split('\n').next().unwrap_or("");
    PARSERS.with(|parsers| {
        let parser = &parsers[Format::ALL.iter().position(|it| *it == format).unwrap()];
        let Some(parsed) = parser.parse(line) else { return };
        if let Some(ip) = parsed.ip {
            let shown = ip.to_string();
            // IPv6 text has many spellings, and mapped addresses have a hex form too.
            let plausible = line.contains(&shown) || parsed.ip_raw.is_some() || ip.is_ipv6();
            assert!(plausible, "ip {shown} is not in {line:?}");
        }
        if let Some(raw) = parsed.ip_raw {
            assert!(line.contains(raw));
        }
        if let Some(user) = parsed.user {
            assert!(line.contains(user));
        }
        assert!(line.contains(parsed.message));
        let event = parser.parse_line(line).expect("parse and parse_line agree");
        assert_eq!(event.action.as_deref(), parsed.action.map(|it| it.as_str()));
    });
}
