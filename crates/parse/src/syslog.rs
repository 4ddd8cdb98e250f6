//! Syslog envelopes: RFC 3164 (`Nov  1 00:00:03 web1 sshd[4242]: …`, with or without `<PRI>`,
//! or with an RFC 3339 time as rsyslog's high-precision format writes), and RFC 5424
//! (`<34>1 2003-10-11T22:14:15.003Z host app 4242 ID47 [sd] message`).
//!
//! [`parse`] reads the envelope and hands the message to the parser of the program that wrote
//! it: sshd, the kernel (firewall `LOG` lines) and fail2ban. Other programs' lines are
//! recognised with their envelope fields and no action.

use crate::{Clock, Level, Parsed, Stamp, fail2ban, firewall, sshd, time};

/// The envelope fields of a syslog line.
#[derive(Debug, Clone, PartialEq)]
pub struct Header<'a> {
    /// Time written in the line.
    pub stamp: Option<Stamp>,
    /// Severity from `<PRI>`, when present.
    pub level: Option<Level>,
    /// HOSTNAME.
    pub host: Option<&'a str>,
    /// TAG / APP-NAME.
    pub program: Option<&'a str>,
    /// The pid in `TAG[pid]` / PROCID.
    pub pid: Option<u32>,
    /// The message.
    pub message: &'a str,
}

/// Parses a syslog line and the message of known programs.
pub fn parse<'a>(line: &'a str, clock: &Clock) -> Option<Parsed<'a>> {
    let header = header(line, clock)?;
    let mut p = from_header("syslog", &header);
    let Some(program) = header.program else { return Some(p) };
    match program.as_bytes().first() {
        Some(b's') if program.starts_with("sshd") => {
            p.source = "sshd";
            sshd::message(&mut p);
        }
        Some(b'k') if program == "kernel" && firewall::message(&mut p) => p.source = "firewall",
        Some(b'f') if program.starts_with("fail2ban") && fail2ban::message(&mut p) => {
            p.source = "fail2ban";
        }
        _ => {}
    }
    Some(p)
}

/// A [`Parsed`] holding a header's fields.
pub(crate) fn from_header<'a>(source: &'static str, h: &Header<'a>) -> Parsed<'a> {
    Parsed {
        source,
        timestamp: h.stamp,
        level: h.level,
        host: h.host,
        service: h.program,
        pid: h.pid,
        message: h.message,
        ..Parsed::default()
    }
}

/// Reads the envelope of an RFC 3164 or RFC 5424 line.
pub fn header<'a>(line: &'a str, clock: &Clock) -> Option<Header<'a>> {
    let mut rest = line;
    let mut level = None;
    if rest.as_bytes().first() == Some(&b'<') {
        let end = rest.as_bytes().iter().take(5).position(|&it| it == b'>')?;
        let pri = time::digits(&rest.as_bytes()[1..end])?;
        if end < 2 || pri > 191 {
            return None;
        }
        level = Level::from_severity((pri % 8) as u8);
        rest = &rest[end + 1..];
        if let Some(after) = rest.strip_prefix("1 ") {
            return rfc5424(after, level, clock);
        }
    }
    let b = rest.as_bytes();
    let (stamp, used) = match b.first() {
        Some(b'0'..=b'9') => time::parse_iso(rest, clock)?,
        _ => time::parse_bsd(rest, clock)?,
    };
    rest = rest.get(used..)?.strip_prefix(' ')?;
    // HOSTNAME, unless the next token is already the tag (`<13>Oct 11 22:14:15 su: …`).
    let token_end = memchr::memchr(b' ', rest.as_bytes()).unwrap_or(rest.len());
    let token = &rest[..token_end];
    if Level::from_keyword(token).is_some() {
        // `2026-11-23T11:00:00Z ERROR worker: …` is an application's log, not a host `ERROR`.
        return None;
    }
    let mut host = None;
    if !token.ends_with(':') && !token.ends_with(']') && !token.contains("]:") {
        host = Some(token);
        rest = rest.get(token_end + 1..).unwrap_or("");
    }
    let (program, pid, message) = tag(rest);
    if program.is_none() && !b.first().is_some_and(u8::is_ascii_alphabetic) {
        // An ISO time, a word and text without a tag is more likely an application's own log.
        return None;
    }
    Some(Header { stamp: Some(stamp), level, host, program, pid, message })
}

/// `TAG[pid]: message` or `TAG: message`; anything else is all message.
fn tag(rest: &str) -> (Option<&str>, Option<u32>, &str) {
    let b = rest.as_bytes();
    let limit = b.len().min(64);
    let Some(end) = b[..limit].iter().position(|&it| matches!(it, b':' | b'[' | b' ')) else {
        return (None, None, rest);
    };
    if end == 0 {
        return (None, None, rest);
    }
    let program = &rest[..end];
    match b[end] {
        b':' => (Some(program), None, strip_space(&rest[end + 1..])),
        b'[' => {
            let Some(close) = b[end..limit.max(end)].iter().position(|&it| it == b']') else {
                return (None, None, rest);
            };
            let close = end + close;
            if b.get(close + 1) != Some(&b':') {
                return (None, None, rest);
            }
            let pid = time::digits(&b[end + 1..close]);
            (Some(program), pid, strip_space(&rest[close + 2..]))
        }
        _ => (None, None, rest),
    }
}

fn strip_space(s: &str) -> &str {
    s.strip_prefix(' ').unwrap_or(s)
}

/// `TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA [MSG]` after `<PRI>1 `.
fn rfc5424<'a>(rest: &'a str, level: Option<Level>, clock: &Clock) -> Option<Header<'a>> {
    let mut fields = rest.splitn(6, ' ');
    let ts = fields.next()?;
    let stamp = if ts == "-" {
        None
    } else {
        let (stamp, used) = time::parse_iso(ts, clock)?;
        if used != ts.len() {
            return None;
        }
        Some(stamp)
    };
    let nil = |it: &'a str| if it == "-" { None } else { Some(it) };
    let host = nil(fields.next()?);
    let program = nil(fields.next()?);
    let pid = nil(fields.next()?).and_then(|it| time::digits(it.as_bytes()));
    let _msgid = fields.next()?;
    let sd_and_msg = fields.next().unwrap_or("");
    let message = skip_structured_data(sd_and_msg)?;
    let message = message.strip_prefix('\u{feff}').unwrap_or(message);
    Some(Header { stamp, level, host, program, pid, message })
}

/// Skips `-` or one or more `[id param="value" …]` elements (with `\]` escapes) and the space
/// after them.
fn skip_structured_data(s: &str) -> Option<&str> {
    if let Some(rest) = s.strip_prefix('-') {
        return Some(strip_space(rest));
    }
    let b = s.as_bytes();
    let mut idx = 0;
    while b.get(idx) == Some(&b'[') {
        idx += 1;
        let mut in_quotes = false;
        loop {
            match *b.get(idx)? {
                b'\\' => idx += 1,
                b'"' => in_quotes = !in_quotes,
                b']' if !in_quotes => break,
                _ => {}
            }
            idx += 1;
        }
        idx += 1;
    }
    if idx == 0 {
        return None;
    }
    Some(strip_space(s.get(idx..)?))
}

#[cfg(test)]
mod tests {
    use expect_test::{Expect, expect};

    use super::*;

    fn check(line: &str, expect: &Expect) {
        let clock = crate::tests_support::test_clock();
        crate::tests_support::assert_parsed(parse(line, &clock), expect);
    }

    #[test]
    fn rfc3164() {
        check(
            "Nov  1 00:00:03 web1 CRON[1234]: pam_unix(cron:session): session closed for user root",
            &expect![[r#"
                source=syslog time=2026-11-01T00:00:03Z host=web1 service=CRON pid=1234
                message="pam_unix(cron:session): session closed for user root""#]],
        );
        check(
            "<86>Nov 11 09:01:02 web1 sudo:   alice : TTY=pts/0 ; PWD=/home/alice ; USER=root",
            &expect![[r#"
                source=syslog time=2026-11-11T09:01:02Z level=info host=web1 service=sudo
                message="  alice : TTY=pts/0 ; PWD=/home/alice ; USER=root""#]],
        );
        check(
            "<13>Oct 11 22:14:15 su: 'su root' failed for lonvick on /dev/pts/8",
            &expect![[r#"
                source=syslog time=2026-10-11T22:14:15Z level=notice service=su
                message="'su root' failed for lonvick on /dev/pts/8""#]],
        );
        check(
            "2026-11-01T00:00:03.123456+01:00 web1 systemd[1]: Started session-4.scope.",
            &expect![[r#"
                source=syslog time=2026-11-01T00:00:03.123456+01:00 host=web1 service=systemd pid=1
                message="Started session-4.scope.""#]],
        );
        check("Nov  1 00:00:03", &expect!["not recognised"]);
        check("hello world", &expect!["not recognised"]);
    }

    #[test]
    fn rfc5424() {
        check(
            "<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - \u{feff}'su root' failed for lonvick on /dev/pts/8",
            &expect![[r#"
                source=syslog time=2003-10-11T22:14:15.003Z level=critical host=mymachine.example.com service=su
                message="'su root' failed for lonvick on /dev/pts/8""#]],
        );
        check(
            r#"<165>1 2003-10-11T22:14:15.003000-07:00 host evntslog 77 ID47 [exampleSDID@32473 iut="3" eventID="1011" note="a \"]\" b"][x@1 y="z"] An application event"#,
            &expect![[r#"
                source=syslog time=2003-10-11T22:14:15.003-07:00 level=notice host=host service=evntslog pid=77
                message="An application event""#]],
        );
        check(
            "<38>1 2026-11-01T00:00:03Z web1 sshd 4242 - - Failed password for root from ::ffff:192.0.2.7 port 50022 ssh2",
            &expect![[r#"
                source=sshd time=2026-11-01T00:00:03Z level=info action=failed_password ip=192.0.2.7 ip_raw=::ffff:192.0.2.7 user=root port=50022 host=web1 service=sshd pid=4242 method=password
                message="Failed password for root from ::ffff:192.0.2.7 port 50022 ssh2""#]],
        );
        check(
            "<34>1 2003-10-11T22:14:15.003Z host app - - [unterminated",
            &expect!["not recognised"],
        );
    }
}
