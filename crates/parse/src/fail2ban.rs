//! fail2ban's own log: `2026-11-01 00:00:10,456 fail2ban.actions        [812]: NOTICE  [sshd]
//! Ban 203.0.113.7` — Found, Ban, Unban, Restore Ban and Ignore, with the jail as `service`.
//! fail2ban logging to syslog (`fail2ban.actions[812]: NOTICE [sshd] Ban …`) reads the same.

use crate::{Action, Clock, Level, Parsed, time};

/// Parses a line of fail2ban's log file.
pub fn parse<'a>(line: &'a str, clock: &Clock) -> Option<Parsed<'a>> {
    let (stamp, used) = time::parse_iso(line, clock)?;
    let rest = line.get(used..)?.strip_prefix(" fail2ban.")?;
    // `fail2ban.actions        [812]: ` (older versions: `fail2ban.actions: `).
    let colon = memchr::memchr(b':', rest.as_bytes())?;
    let module = rest[..colon].trim_end();
    let (module, pid) = match module.split_once(' ') {
        Some((module, pid)) => {
            let pid = pid.trim().strip_prefix('[')?.strip_suffix(']')?;
            (module, time::digits(pid.as_bytes()))
        }
        None => (module, None),
    };
    let _ = module;
    let message = rest[colon + 1..].trim_start();
    let mut p = Parsed { timestamp: Some(stamp), pid, ..Parsed::new("fail2ban", message) };
    self::message(&mut p);
    Some(p)
}

/// Reads `[LEVEL] [jail] Verb IP …` from `p.message`; returns whether it was a jail event.
/// A leading level keyword sets `p.level`.
pub fn message(p: &mut Parsed<'_>) -> bool {
    let mut msg = p.message;
    let word_end = memchr::memchr(b' ', msg.as_bytes()).unwrap_or(msg.len());
    if let Some(level) = Level::from_keyword(&msg[..word_end]) {
        p.level = Some(level);
        msg = msg[word_end..].trim_start();
    }
    let Some(rest) = msg.strip_prefix('[') else { return false };
    let Some(close) = memchr::memchr(b']', rest.as_bytes()) else { return false };
    let jail = &rest[..close];
    let rest = rest[close + 1..].trim_start();
    let (action, rest) = if let Some(rest) = rest.strip_prefix("Found ") {
        (Action::Found, rest)
    } else if let Some(rest) = rest.strip_prefix("Ban ") {
        (Action::Ban, rest)
    } else if let Some(rest) = rest.strip_prefix("Unban ") {
        (Action::Unban, rest)
    } else if let Some(rest) = rest.strip_prefix("Restore Ban ") {
        (Action::RestoreBan, rest)
    } else if let Some(rest) = rest.strip_prefix("Ignore ") {
        (Action::Ignore, rest)
    } else {
        p.service = Some(jail);
        return false;
    };
    let end = memchr::memchr(b' ', rest.as_bytes()).unwrap_or(rest.len());
    p.set_ip(&rest[..end]);
    if p.ip.is_none() {
        return false;
    }
    p.service = Some(jail);
    p.action = Some(action);
    true
}

#[cfg(test)]
mod tests {
    use expect_test::{Expect, expect};

    use super::*;

    fn check(line: &str, expect: &Expect) {
        let clock = crate::tests_support::test_clock();
        crate::tests_support::assert_parsed(
            parse(line, &clock).or_else(|| crate::syslog::parse(line, &clock)),
            expect,
        );
    }

    #[test]
    fn jail_events() {
        check(
            "2026-11-01 00:00:03,123 fail2ban.filter         [812]: INFO    [sshd] Found 203.0.113.7 - 2026-11-01 00:00:03",
            &expect![[r#"
                source=fail2ban time=2026-11-01T00:00:03.123Z level=info action=found ip=203.0.113.7 service=sshd pid=812
                message="INFO    [sshd] Found 203.0.113.7 - 2026-11-01 00:00:03""#]],
        );
        check(
            "2026-11-01 00:00:10,456 fail2ban.actions        [812]: NOTICE  [sshd] Ban 203.0.113.7",
            &expect![[r#"
                source=fail2ban time=2026-11-01T00:00:10.456Z level=notice action=ban ip=203.0.113.7 service=sshd pid=812
                message="NOTICE  [sshd] Ban 203.0.113.7""#]],
        );
        check(
            "2026-11-01 00:10:10,456 fail2ban.actions        [812]: NOTICE  [nginx-http-auth] Unban 2001:db8::7",
            &expect![[r#"
                source=fail2ban time=2026-11-01T00:10:10.456Z level=notice action=unban ip=2001:db8::7 service=nginx-http-auth pid=812
                message="NOTICE  [nginx-http-auth] Unban 2001:db8::7""#]],
        );
        check(
            "2026-11-01 00:00:01,001 fail2ban.actions        [812]: NOTICE  [sshd] Restore Ban 198.51.100.3",
            &expect![[r#"
                source=fail2ban time=2026-11-01T00:00:01.001Z level=notice action=restore_ban ip=198.51.100.3 service=sshd pid=812
                message="NOTICE  [sshd] Restore Ban 198.51.100.3""#]],
        );
        check(
            "2026-11-01 00:00:01,001 fail2ban.filter         [812]: INFO    [sshd] Ignore 10.0.0.1 by ip",
            &expect![[r#"
                source=fail2ban time=2026-11-01T00:00:01.001Z level=info action=ignore ip=10.0.0.1 service=sshd pid=812
                message="INFO    [sshd] Ignore 10.0.0.1 by ip""#]],
        );
        check(
            "Nov  1 00:00:10 web1 fail2ban.actions[812]: NOTICE [sshd] Ban 203.0.113.7",
            &expect![[r#"
                source=fail2ban time=2026-11-01T00:00:10Z level=notice action=ban ip=203.0.113.7 host=web1 service=sshd pid=812
                message="NOTICE [sshd] Ban 203.0.113.7""#]],
        );
    }

    #[test]
    fn other_lines() {
        check(
            "2026-11-01 00:00:00,001 fail2ban.server         [812]: INFO    Starting Fail2ban v1.0.2",
            &expect![[r#"
                source=fail2ban time=2026-11-01T00:00:00.001Z level=info pid=812
                message="INFO    Starting Fail2ban v1.0.2""#]],
        );
        check(
            "2026-11-01 00:00:00,001 fail2ban.actions        [812]: WARNING [sshd] 203.0.113.7 already banned",
            &expect![[r#"
                source=fail2ban time=2026-11-01T00:00:00.001Z level=warning service=sshd pid=812
                message="WARNING [sshd] 203.0.113.7 already banned""#]],
        );
        check("2026-11-01 00:00:00,001 something else", &expect!["not recognised"]);
    }
}
