//! Vigil's built-in log parsers: each line becomes a structured [`LogEvent`].
//!
//! # The model
//!
//! A log line is parsed in two layers. The *envelope* is the format a logger wrote around the
//! message: an RFC 3164 or RFC 5424 syslog header (time, host, program, pid), an nginx access
//! or error line, a fail2ban or Django log line. The *message* is then read by the parser of the
//! program that wrote it: sshd's messages become `failed_password`, `accepted`, … actions with
//! the source address, user and port; kernel firewall lines become `fw_block` with SRC, DST,
//! PROTO, SPT and DPT.
//!
//! Every parser implements [`Parser`]. The hot path is [`Parser::parse`], which borrows from
//! the line and returns a [`Parsed`] without allocating; [`Parser::parse_line`] builds the owned
//! [`LogEvent`] that travels on the bus. [`Format::Auto`] detects the format line by line.
//!
//! Parsers are linear in the length of the line (hand-written scanners, `memchr` and the `regex`
//! crate, whose matching is linear) and never panic on any input: fuzz targets in `fuzz/` check
//! every parser.
//!
//! Addresses are read from the position the program writes them in, never from text an
//! attacker controls: sshd writes ` from <ip> port <n>` *after* the user name, so a user name
//! such as `root from 203.0.113.9 port 22` cannot plant a decoy address. IPv4-mapped IPv6
//! addresses (`::ffff:192.0.2.1`) are normalised to IPv4; the text as written stays in
//! [`Parsed::ip_raw`].
//!
//! Times without a year or zone are completed by a [`Clock`]: a zone (the system's by default)
//! and a reference "now" (see [`time`]).
//!
//! ```
//! use vigil_parse::{Clock, Format, Parser};
//!
//! let clock = Clock::utc_at("2026-11-23T12:00:00Z".parse().unwrap());
//! let parser = Format::Auto.parser(clock);
//! let line = "Nov  1 00:00:03 web1 sshd[4242]: Failed password for invalid user \
//!             root from 198.51.100.7 port 22 from 203.0.113.9 port 51234 ssh2";
//! let event = parser.parse_line(line).unwrap();
//! assert_eq!(event.action.as_deref(), Some("failed_password_invalid"));
//! assert_eq!(event.ip.unwrap().to_string(), "203.0.113.9");
//! assert_eq!(event.user.as_deref(), Some("root from 198.51.100.7 port 22"));
//! assert_eq!(event.timestamp.unwrap().to_rfc3339(), "2026-11-01T00:00:03+00:00");
//! ```

#![deny(missing_docs)]

mod action;
mod addr;
pub mod django;
pub mod fail2ban;
pub mod firewall;
pub mod generic;
pub mod multiline;
pub mod nginx;
mod scan;
pub mod sshd;
pub mod syslog;
#[cfg(test)]
mod tests_support;
pub mod time;

use std::{net::IpAddr, str::FromStr};

use vigil_event::LogEvent;

pub use crate::{
    action::{Action, Level},
    addr::parse_ip,
    time::{Clock, Stamp},
};

/// One parsed line, borrowing from it. Fields a format does not carry are `None`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Parsed<'a> {
    /// The format that recognised the line (`sshd`, `syslog`, `firewall`, `nginx_access`, …).
    pub source: &'static str,
    /// When the line says it happened.
    pub timestamp: Option<Stamp>,
    /// Normalised level keyword.
    pub level: Option<Level>,
    /// What happened; `None` for recognised lines that carry no security evidence.
    pub action: Option<Action>,
    /// Remote (source) address, IPv4-mapped addresses normalised to IPv4.
    pub ip: Option<IpAddr>,
    /// The address as written, when it differs from `ip`'s text.
    pub ip_raw: Option<&'a str>,
    /// User name.
    pub user: Option<&'a str>,
    /// Remote (source) port.
    pub port: Option<u16>,
    /// Program, jail or service the line is about.
    pub service: Option<&'a str>,
    /// Process id.
    pub pid: Option<u32>,
    /// Host name from the envelope.
    pub host: Option<&'a str>,
    /// The message part of the line.
    pub message: &'a str,
    /// Authentication or HTTP method.
    pub method: Option<&'a str>,
    /// Destination address (firewall).
    pub dst: Option<IpAddr>,
    /// Destination port (firewall).
    pub dport: Option<u16>,
    /// Transport protocol (firewall) or HTTP version.
    pub protocol: Option<&'a str>,
    /// HTTP status.
    pub status: Option<u16>,
    /// Request path.
    pub path: Option<&'a str>,
}

impl<'a> Parsed<'a> {
    /// An empty result for `source` with `message`.
    pub fn new(source: &'static str, message: &'a str) -> Parsed<'a> {
        Parsed { source, message, ..Parsed::default() }
    }

    /// Sets `ip` (and `ip_raw` when normalised) from address text; ignores text that is not an
    /// address.
    pub fn set_ip(&mut self, text: &'a str) {
        if let Some((ip, normalised)) = addr::parse_ip_flag(text) {
            self.ip = Some(ip);
            self.ip_raw = normalised.then_some(text);
        }
    }

    /// The owned event for the bus; `raw` is the whole line.
    pub fn to_log_event(&self, raw: &str) -> LogEvent {
        let owned = |it: Option<&str>| it.map(str::to_owned);
        LogEvent {
            source: self.source.to_owned(),
            timestamp: self.timestamp.and_then(Stamp::to_utc),
            level: self.level.map(|it| it.as_str().to_owned()),
            action: self.action.map(|it| it.as_str().to_owned()),
            ip: self.ip,
            user: owned(self.user),
            port: self.port,
            service: owned(self.service),
            pid: self.pid,
            message: self.message.to_owned(),
            raw: Some(raw.to_owned()),
            utc_offset_seconds: self.timestamp.map(|it| it.offset),
            host: owned(self.host),
            ip_raw: owned(self.ip_raw),
            method: owned(self.method),
            dst: self.dst,
            dport: self.dport,
            protocol: owned(self.protocol),
            status: self.status,
            path: owned(self.path),
            origin: None,
        }
    }
}

/// A log format's parser.
///
/// Parsers keep a small cache (the last converted local hour), so they are `Send` but not
/// `Sync`: give each thread its own.
pub trait Parser: Send {
    /// The format's name, as `vigil parse --parser` spells it.
    fn name(&self) -> &'static str;

    /// Parses one line (without its line terminator), borrowing from it; `None` when the line
    /// is not in this format.
    fn parse<'a>(&self, line: &'a str) -> Option<Parsed<'a>>;

    /// Parses one line into an owned [`LogEvent`] (with `raw` set to the line).
    fn parse_line(&self, line: &str) -> Option<LogEvent> {
        self.parse(line).map(|it| it.to_log_event(line))
    }
}

/// The built-in formats, as `vigil parse --parser` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Detect the format of each line.
    Auto,
    /// sshd messages (syslog-wrapped, as in auth.log, or bare, as in the journal).
    Sshd,
    /// RFC 3164 / RFC 5424 syslog, messages of known programs read by their parsers.
    Syslog,
    /// nginx access log, `combined` format.
    NginxAccess,
    /// nginx error log.
    NginxError,
    /// Django's default logging format.
    Django,
    /// fail2ban's own log.
    Fail2ban,
    /// Kernel firewall (UFW / iptables `LOG`) lines.
    Firewall,
    /// Any line with a timestamp and a level keyword.
    Generic,
}

impl Format {
    /// Every format, in the order `--parser` lists them.
    pub const ALL: [Format; 9] = [
        Format::Auto,
        Format::Sshd,
        Format::Syslog,
        Format::NginxAccess,
        Format::NginxError,
        Format::Django,
        Format::Fail2ban,
        Format::Firewall,
        Format::Generic,
    ];

    /// The name `--parser` takes.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Auto => "auto",
            Format::Sshd => "sshd",
            Format::Syslog => "syslog",
            Format::NginxAccess => "nginx-access",
            Format::NginxError => "nginx-error",
            Format::Django => "django",
            Format::Fail2ban => "fail2ban",
            Format::Firewall => "firewall",
            Format::Generic => "generic",
        }
    }

    /// A parser for this format using `clock` for zone-less and year-less times.
    pub fn parser(self, clock: Clock) -> Box<dyn Parser> {
        Box::new(FormatParser { format: self, clock })
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of [`Format::from_str`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownFormat(pub String);

impl std::fmt::Display for UnknownFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "unknown format `{}`", self.0)
    }
}

impl std::error::Error for UnknownFormat {}

impl FromStr for Format {
    type Err = UnknownFormat;

    fn from_str(s: &str) -> Result<Format, UnknownFormat> {
        Format::ALL.into_iter().find(|it| it.as_str() == s).ok_or_else(|| UnknownFormat(s.into()))
    }
}

struct FormatParser {
    format: Format,
    clock: Clock,
}

impl Parser for FormatParser {
    fn name(&self) -> &'static str {
        self.format.as_str()
    }

    fn parse<'a>(&self, line: &'a str) -> Option<Parsed<'a>> {
        let clock = &self.clock;
        match self.format {
            Format::Auto => auto(line, clock),
            Format::Sshd => sshd::parse(line, clock),
            Format::Syslog => syslog::parse(line, clock),
            Format::NginxAccess => nginx::parse_access(line),
            Format::NginxError => nginx::parse_error(line, clock),
            Format::Django => django::parse(line, clock),
            Format::Fail2ban => fail2ban::parse(line, clock),
            Format::Firewall => firewall::parse(line, clock),
            Format::Generic => generic::parse(line, clock),
        }
    }
}

/// Detects the format of one line from its first bytes, cheapest checks first.
fn auto<'a>(line: &'a str, clock: &Clock) -> Option<Parsed<'a>> {
    if let Some(it) = syslog::parse(line, clock) {
        return Some(it);
    }
    let b = line.as_bytes();
    let first = *b.first()?;
    if first.is_ascii_digit() && b.len() >= 19 {
        if b[4] == b'-' && b.get(23..33) == Some(b" fail2ban.") {
            if let Some(it) = fail2ban::parse(line, clock) {
                return Some(it);
            }
        } else if b[4] == b'/'
            && let Some(it) = nginx::parse_error(line, clock)
        {
            return Some(it);
        }
    }
    if (first.is_ascii_hexdigit() || first == b':')
        && memchr::memmem::find(b, b"] \"").is_some()
        && let Some(it) = nginx::parse_access(line)
    {
        return Some(it);
    }
    if let Some(it) = django::parse(line, clock) {
        return Some(it);
    }
    if let Some(it) = firewall::parse(line, clock) {
        return Some(it);
    }
    generic::parse(line, clock)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_names_round_trip() {
        for format in Format::ALL {
            assert_eq!(format.as_str().parse::<Format>(), Ok(format));
        }
        assert!("nginx".parse::<Format>().is_err());
    }

    #[test]
    fn auto_detects_every_format() {
        let parser = Format::Auto.parser(Clock::utc_at("2026-11-23T12:00:00Z".parse().unwrap()));
        let lines = [
            "Nov  1 00:00:03 web1 sshd[4242]: Invalid user pi from 203.0.113.7 port 40000",
            "<38>1 2026-11-01T00:00:03Z web1 sshd 4242 - - Connection reset by 203.0.113.7 port 1",
            "Nov  1 00:00:09 web1 kernel: [ 1.5] [UFW BLOCK] IN=eth0 OUT= SRC=203.0.113.7 DST=198.51.100.10 PROTO=TCP SPT=1 DPT=23",
            "[ 1.5] [UFW BLOCK] IN=eth0 OUT= SRC=203.0.113.7 DST=198.51.100.10 PROTO=UDP SPT=1 DPT=53",
            "2026-11-01 00:00:10,456 fail2ban.actions        [812]: NOTICE  [sshd] Ban 203.0.113.7",
            r#"203.0.113.7 - - [01/Nov/2026:00:00:03 +0000] "GET /.env HTTP/1.1" 404 153 "-" "curl/8""#,
            r#"2026/11/01 00:00:04 [error] 812#812: *6 limiting requests, excess: 1.5 by zone "one", client: 203.0.113.7, server: x, request: "GET / HTTP/1.1""#,
            "2026-11-23 11:58:06,003 WARNING django.request Not Found: /wp-admin/",
            "2026-11-23T11:00:00Z ERROR worker: queue full",
            "Nov  1 00:00:02 web1 CRON[77]: pam_unix(cron:session): session closed for user root",
        ];
        let got: Vec<String> = lines
            .iter()
            .map(|line| match parser.parse(line) {
                Some(p) => format!(
                    "{} {} {}",
                    p.source,
                    p.action.map_or("-", |it| it.as_str()),
                    p.ip.map_or("-".into(), |it| it.to_string())
                ),
                None => "not recognised".into(),
            })
            .collect();
        expect_test::expect![[r#"
            sshd invalid_user 203.0.113.7
            sshd connection_reset 203.0.113.7
            firewall fw_block 203.0.113.7
            firewall fw_block 203.0.113.7
            fail2ban ban 203.0.113.7
            nginx_access not_found 203.0.113.7
            nginx_error rate_limited 203.0.113.7
            django not_found -
            generic - -
            syslog - -"#]]
        .assert_eq(&got.join("\n"));
        assert!(parser.parse("just some words").is_none());
    }

    #[test]
    fn parsers_are_send() {
        fn is_send<T: Send>() {}
        is_send::<Box<dyn Parser>>();
        is_send::<Clock>();
    }
}
