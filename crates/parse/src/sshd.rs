//! sshd messages (OpenSSH wording as Debian and Ubuntu ship it).
//!
//! Each message kind is recognised by its fixed opening words, then read with the rule that
//! keeps attackers from choosing the address we report:
//!
//! - where sshd writes the address *before* anything a client controls (`Connection reset by
//!   IP port P`, `Received disconnect from IP port P:11: <client text>`), it is read forwards;
//! - where the user name (client-controlled, any bytes but newline) comes first, the address is
//!   read from the *end*: the line must end with `<ip> port <n>` (plus sshd's own fixed suffixes
//!   such as ` ssh2` or ` [preauth]`), and the user is everything between the opening words and
//!   that tail. A user name such as `root from 198.51.100.7 port 22` stays the user name.
//!
//! IPv4-mapped addresses are normalised to IPv4 (see [`crate::parse_ip`]).

use crate::{Action, Clock, Level, Parsed, scan, syslog, time};

/// Parses an sshd line: a syslog line from program `sshd` (or `sshd-session`), or a bare sshd
/// message as the journal stores it (recognised only when it is a known message kind).
pub fn parse<'a>(line: &'a str, clock: &Clock) -> Option<Parsed<'a>> {
    match syslog::header(line, clock) {
        Some(header) => {
            if !header.program?.starts_with("sshd") {
                return None;
            }
            let mut p = syslog::from_header("sshd", &header);
            message(&mut p);
            Some(p)
        }
        None => {
            let mut p = Parsed::new("sshd", line);
            message(&mut p).then_some(p)
        }
    }
}

/// Reads `p.message` as an sshd message, setting action, ip, user, port and method; returns
/// whether it was a known kind.
pub fn message(p: &mut Parsed<'_>) -> bool {
    let msg = p.message;
    let Some(&first) = msg.as_bytes().first() else { return false };
    let ok = match first {
        b'F' => failed(p, msg),
        b'I' => msg.strip_prefix("Invalid user ").is_some_and(|rest| {
            p.action = Some(Action::InvalidUser);
            user_from_ip_port(p, rest, "")
        }),
        b'A' => accepted(p, msg),
        b'p' => pam(p, msg),
        b'e' => msg.strip_prefix("error: ").is_some_and(|rest| {
            p.level = Some(Level::Error);
            error(p, rest)
        }),
        b'D' => disconnect(p, msg),
        b'C' => connection(p, msg),
        b'R' => msg.strip_prefix("Received disconnect from ").is_some_and(|rest| {
            p.action = Some(Action::ReceivedDisconnect);
            ip_port_forward(p, rest).is_some()
        }),
        b'b' => msg.strip_prefix("banner exchange: Connection from ").is_some_and(|rest| {
            p.action = Some(Action::BannerInvalid);
            ip_port_forward(p, rest).is_some_and(|tail| tail.starts_with(": invalid format"))
        }),
        b'U' => {
            if let Some(rest) = msg.strip_prefix("Unable to negotiate with ") {
                p.action = Some(Action::NegotiationFailed);
                ip_port_forward(p, rest).is_some()
            } else if let Some(rest) = msg.strip_prefix("User ") {
                user_not_allowed(p, rest)
            } else {
                false
            }
        }
        _ => false,
    };
    if !ok {
        // A half-read line must not carry fields from the part that was read.
        *p = Parsed {
            action: None,
            ip: None,
            ip_raw: None,
            user: None,
            port: None,
            method: None,
            ..p.clone()
        };
    }
    ok
}

/// `Failed password for [invalid user ]USER from IP port P ssh2`, and other methods.
fn failed<'a>(p: &mut Parsed<'a>, msg: &'a str) -> bool {
    let Some(rest) = msg.strip_prefix("Failed ") else { return false };
    let Some(space) = memchr::memchr(b' ', rest.as_bytes()) else { return false };
    let method = &rest[..space];
    let Some(rest) = rest[space..].strip_prefix(" for ") else { return false };
    p.method = Some(method);
    let (rest, invalid) = match rest.strip_prefix("invalid user ") {
        Some(rest) => (rest, true),
        None => (rest, false),
    };
    p.action = Some(match (method == "password", invalid) {
        (true, false) => Action::FailedPassword,
        (true, true) => Action::FailedPasswordInvalid,
        (false, _) => Action::FailedAuth,
    });
    user_from_ip_port(p, strip_key_suffix(rest), " ssh2")
}

/// Cuts sshd's key description (`… ssh2: ED25519 SHA256:<base64>`) off the end. The
/// description has no spaces after its type, so a ` ssh2: RSA SHA256:x` planted in a user name
/// (followed by sshd's own ` from IP port P ssh2`) is never taken for it.
fn strip_key_suffix(s: &str) -> &str {
    let Some(idx) = scan::rfind_sp(s.as_bytes(), b" ssh2: ") else { return s };
    let desc = &s[idx + 7..];
    let Some((kind, hash)) = desc.split_once(' ') else { return s };
    let well_formed = !kind.is_empty()
        && kind
            .bytes()
            .all(|it| it.is_ascii_alphanumeric() || it == b'-' || it == b'@' || it == b'.')
        && hash.contains(':')
        && !hash.contains(' ');
    if well_formed { &s[..idx + 5] } else { s }
}

/// `Accepted METHOD for USER from IP port P ssh2[: KEY-TYPE SHA256:…]`.
fn accepted<'a>(p: &mut Parsed<'a>, msg: &'a str) -> bool {
    let Some(rest) = msg.strip_prefix("Accepted ") else { return false };
    let Some(space) = memchr::memchr(b' ', rest.as_bytes()) else { return false };
    let method = &rest[..space];
    let Some(rest) = rest[space..].strip_prefix(" for ") else { return false };
    p.action = Some(Action::Accepted);
    p.method = Some(method);
    // The key (or certificate) description after ` ssh2: ` is sshd's and may contain spaces;
    // the user name, which comes before it, is an existing account's and contains none.
    let rest = match scan::find_sp(rest.as_bytes(), b" ssh2: ") {
        Some(idx) => &rest[..idx],
        None => rest,
    };
    user_from_ip_port(p, rest, " ssh2")
}

/// `pam_unix(sshd:auth): authentication failure; … rhost=IP  user=USER` and session lines.
fn pam<'a>(p: &mut Parsed<'a>, msg: &'a str) -> bool {
    if let Some(rest) = msg.strip_prefix("pam_unix(sshd:auth): authentication failure;") {
        p.action = Some(Action::PamAuthFailure);
        let Some(idx) = scan::find_sp(rest.as_bytes(), b" rhost=") else { return true };
        let after = &rest[idx + 7..];
        let end = memchr::memchr(b' ', after.as_bytes()).unwrap_or(after.len());
        p.set_ip(&after[..end]);
        // pam_unix writes `user=` last; user names of existing accounts have no spaces.
        if let Some(idx) = scan::rfind_sp(after.as_bytes(), b" user=") {
            p.user = Some(&after[idx + 6..]).filter(|it| !it.is_empty());
        }
        return true;
    }
    if let Some(rest) = msg.strip_prefix("pam_unix(sshd:session): session ") {
        if let Some(user) = rest.strip_prefix("opened for user ") {
            p.action = Some(Action::SessionOpened);
            let end = memchr::memchr2(b'(', b' ', user.as_bytes()).unwrap_or(user.len());
            p.user = Some(&user[..end]);
            return true;
        }
        if let Some(user) = rest.strip_prefix("closed for user ") {
            p.action = Some(Action::SessionClosed);
            p.user = Some(user);
            return true;
        }
    }
    false
}

/// `error: maximum authentication attempts exceeded for [invalid user ]USER from IP port P ssh2
/// [preauth]`.
fn error<'a>(p: &mut Parsed<'a>, rest: &'a str) -> bool {
    let Some(rest) = rest.strip_prefix("maximum authentication attempts exceeded for ") else {
        return false;
    };
    p.action = Some(Action::MaxAuthExceeded);
    let rest = rest.strip_prefix("invalid user ").unwrap_or(rest);
    user_from_ip_port(p, strip_preauth(rest), " ssh2")
}

/// `Disconnecting …` and `Disconnected from …`.
fn disconnect<'a>(p: &mut Parsed<'a>, msg: &'a str) -> bool {
    if let Some(rest) = msg.strip_prefix("Disconnected from ") {
        let rest = strip_preauth(rest);
        if let Some(rest) = rest.strip_prefix("user ") {
            p.action = Some(Action::DisconnectedUser);
            return user_ip_port(p, rest);
        }
        p.action = Some(Action::DisconnectedPreauth);
        if let Some(rest) =
            rest.strip_prefix("authenticating user ").or_else(|| rest.strip_prefix("invalid user "))
        {
            return user_ip_port(p, rest);
        }
        return ip_port_forward(p, rest).is_some_and(str::is_empty);
    }
    if let Some(user) = msg.strip_prefix("Disconnecting: Too many authentication failures for ") {
        p.action = Some(Action::TooManyAuthFailures);
        let user = strip_preauth(user);
        p.user = Some(user.strip_prefix("invalid user ").unwrap_or(user));
        return true;
    }
    let Some(rest) = msg.strip_prefix("Disconnecting ") else { return false };
    let rest = strip_preauth(rest);
    if let Some(rest) =
        rest.strip_prefix("authenticating user ").or_else(|| rest.strip_prefix("invalid user "))
    {
        // `USER IP port P: Too many authentication failures`: the reason is sshd's own text.
        let Some(body) = rest.strip_suffix(": Too many authentication failures") else {
            return false;
        };
        p.action = Some(Action::TooManyAuthFailures);
        return user_ip_port(p, body);
    }
    false
}

/// `Connection closed by …`, `Connection reset by …`.
fn connection<'a>(p: &mut Parsed<'a>, msg: &'a str) -> bool {
    let (rest, closed) = if let Some(rest) = msg.strip_prefix("Connection closed by ") {
        (rest, true)
    } else if let Some(rest) = msg.strip_prefix("Connection reset by ") {
        (rest, false)
    } else {
        return false;
    };
    let preauth = rest.ends_with(" [preauth]");
    let body = strip_preauth(rest);
    if let Some(user) = body.strip_prefix("authenticating user ") {
        p.action = Some(if closed { Action::ClosedPreauth } else { Action::ConnectionReset });
        return user_ip_port(p, user);
    }
    if let Some(user) = body.strip_prefix("invalid user ") {
        p.action =
            Some(if closed { Action::ClosedPreauthInvalid } else { Action::ConnectionReset });
        return user_ip_port(p, user);
    }
    p.action = Some(match (closed, preauth) {
        (true, true) => Action::ClosedPreauth,
        (true, false) => Action::ConnectionClosed,
        (false, _) => Action::ConnectionReset,
    });
    ip_port_forward(p, body).is_some_and(str::is_empty)
}

/// `User USER from IP not allowed because …`: the reason is sshd's, so the address is the
/// last ` from ` before ` not allowed because `.
fn user_not_allowed<'a>(p: &mut Parsed<'a>, rest: &'a str) -> bool {
    let Some(idx) = scan::rfind_sp(rest.as_bytes(), b" not allowed because ") else {
        return false;
    };
    let head = &rest[..idx];
    let Some(from) = scan::rfind_sp(head.as_bytes(), b" from ") else { return false };
    p.action = Some(Action::UserNotAllowed);
    p.user = Some(&head[..from]);
    p.set_ip(&head[from + 6..]);
    p.ip.is_some()
}

fn strip_preauth(s: &str) -> &str {
    s.strip_suffix(" [preauth]").unwrap_or(s)
}

/// `USER from IP port P<suffix>` read from the end (suffix optional). Older sshd versions leave
/// out ` port P`, which is accepted too.
fn user_from_ip_port<'a>(p: &mut Parsed<'a>, s: &'a str, suffix: &str) -> bool {
    let s = if suffix.is_empty() { s } else { s.strip_suffix(suffix).unwrap_or(s) };
    let Some(head) = tail_ip_port(p, s) else {
        // `USER from IP`.
        let Some(idx) = scan::rfind_sp(s.as_bytes(), b" from ") else { return false };
        p.set_ip(&s[idx + 6..]);
        if p.ip.is_none() {
            return false;
        }
        p.user = Some(&s[..idx]);
        return true;
    };
    // `head` is `USER from`; an empty user name leaves just `from` (sshd writes two spaces).
    let user =
        head.strip_suffix(" from").or_else(|| head.strip_suffix("from").filter(|it| it.is_empty()));
    match user {
        Some(user) => {
            p.user = Some(user);
            true
        }
        None => false,
    }
}

/// `USER IP port P` read from the end.
fn user_ip_port<'a>(p: &mut Parsed<'a>, s: &'a str) -> bool {
    match tail_ip_port(p, s) {
        Some(user) => {
            p.user = Some(user);
            true
        }
        None => false,
    }
}

/// Reads `<ip> port <digits>` at the very end of `s`, sets ip and port, and returns what comes
/// before the address (without the space in between).
fn tail_ip_port<'a>(p: &mut Parsed<'a>, s: &'a str) -> Option<&'a str> {
    let b = s.as_bytes();
    let idx = scan::rfind_sp(b, b" port ")?;
    let port = time::digits(&b[idx + 6..]).and_then(|it| u16::try_from(it).ok())?;
    let head = &s[..idx];
    let space = memchr::memrchr(b' ', head.as_bytes());
    let (before, ip) = match space {
        Some(sp) => (&head[..sp], &head[sp + 1..]),
        None => ("", head),
    };
    p.set_ip(ip);
    p.ip?;
    p.port = Some(port);
    Some(before)
}

/// Reads `<ip> port <digits>` at the start of `s`; returns what follows the digits.
fn ip_port_forward<'a>(p: &mut Parsed<'a>, s: &'a str) -> Option<&'a str> {
    let space = memchr::memchr(b' ', s.as_bytes())?;
    p.set_ip(&s[..space]);
    p.ip?;
    let rest = s[space..].strip_prefix(" port ")?;
    let len = rest.bytes().take_while(u8::is_ascii_digit).count();
    p.port = Some(time::digits(&rest.as_bytes()[..len]).and_then(|it| u16::try_from(it).ok())?);
    Some(&rest[len..])
}

#[cfg(test)]
mod tests {
    use expect_test::{Expect, expect};

    use super::*;

    fn check(message_text: &str, expect: &Expect) {
        let mut p = Parsed::new("sshd", message_text);
        let known = message(&mut p);
        let got = if known { crate::tests_support::render(&p) } else { "unknown".into() };
        expect.assert_eq(&got);
    }

    #[test]
    fn failures() {
        check(
            "Failed password for root from 203.0.113.7 port 51234 ssh2",
            &expect![[r#"
                source=sshd action=failed_password ip=203.0.113.7 user=root port=51234 method=password
                message="Failed password for root from 203.0.113.7 port 51234 ssh2""#]],
        );
        check(
            "Failed password for invalid user x from 1.2.3.4 port 22 from 203.0.113.9 port 40022 ssh2",
            &expect![[r#"
                source=sshd action=failed_password_invalid ip=203.0.113.9 user="x from 1.2.3.4 port 22" port=40022 method=password
                message="Failed password for invalid user x from 1.2.3.4 port 22 from 203.0.113.9 port 40022 ssh2""#]],
        );
        check(
            "Failed password for invalid user from 1.2.3.4 port 22 ssh2: RSA SHA256:x from 2001:db8::7 port 40022 ssh2",
            &expect![[r#"
                source=sshd action=failed_password_invalid ip=2001:db8::7 user="from 1.2.3.4 port 22 ssh2: RSA SHA256:x" port=40022 method=password
                message="Failed password for invalid user from 1.2.3.4 port 22 ssh2: RSA SHA256:x from 2001:db8::7 port 40022 ssh2""#]],
        );
        check(
            "Failed publickey for git from ::ffff:45.1.2.3 port 50000 ssh2: ED25519 SHA256:abc",
            &expect![[r#"
                source=sshd action=failed_auth ip=45.1.2.3 ip_raw=::ffff:45.1.2.3 user=git port=50000 method=publickey
                message="Failed publickey for git from ::ffff:45.1.2.3 port 50000 ssh2: ED25519 SHA256:abc""#]],
        );
        check(
            "Invalid user  from 198.51.100.4 port 4000",
            &expect![[r#"
                source=sshd action=invalid_user ip=198.51.100.4 user="" port=4000
                message="Invalid user  from 198.51.100.4 port 4000""#]],
        );
        check(
            "Invalid user admin from 198.51.100.4",
            &expect![[r#"
                source=sshd action=invalid_user ip=198.51.100.4 user=admin
                message="Invalid user admin from 198.51.100.4""#]],
        );
        check(
            "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=::ffff:61.2.3.4  user=root",
            &expect![[r#"
                source=sshd action=pam_auth_failure ip=61.2.3.4 ip_raw=::ffff:61.2.3.4 user=root
                message="pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=::ffff:61.2.3.4  user=root""#]],
        );
        check(
            "error: maximum authentication attempts exceeded for invalid user oracle from 203.0.113.7 port 51234 ssh2 [preauth]",
            &expect![[r#"
                source=sshd level=error action=max_auth_exceeded ip=203.0.113.7 user=oracle port=51234
                message="error: maximum authentication attempts exceeded for invalid user oracle from 203.0.113.7 port 51234 ssh2 [preauth]""#]],
        );
        check(
            "Disconnecting invalid user admin port 22 203.0.113.7 port 51234: Too many authentication failures [preauth]",
            &expect![[r#"
                source=sshd action=too_many_auth_failures ip=203.0.113.7 user="admin port 22" port=51234
                message="Disconnecting invalid user admin port 22 203.0.113.7 port 51234: Too many authentication failures [preauth]""#]],
        );
        check(
            "Disconnecting: Too many authentication failures for root [preauth]",
            &expect![[r#"
                source=sshd action=too_many_auth_failures user=root
                message="Disconnecting: Too many authentication failures for root [preauth]""#]],
        );
    }

    #[test]
    fn sessions_and_disconnects() {
        check(
            "Accepted publickey for alice from 2001:db8::1 port 50022 ssh2: ED25519 SHA256:AAAA from 1.2.3.4 port 1",
            &expect![[r#"
                source=sshd action=accepted ip=2001:db8::1 user=alice port=50022 method=publickey
                message="Accepted publickey for alice from 2001:db8::1 port 50022 ssh2: ED25519 SHA256:AAAA from 1.2.3.4 port 1""#]],
        );
        check(
            "pam_unix(sshd:session): session opened for user alice(uid=1000) by (uid=0)",
            &expect![[r#"
                source=sshd action=session_opened user=alice
                message="pam_unix(sshd:session): session opened for user alice(uid=1000) by (uid=0)""#]],
        );
        check(
            "Received disconnect from 203.0.113.7 port 51234:11: from 1.2.3.4 port 22 [preauth]",
            &expect![[r#"
                source=sshd action=received_disconnect ip=203.0.113.7 port=51234
                message="Received disconnect from 203.0.113.7 port 51234:11: from 1.2.3.4 port 22 [preauth]""#]],
        );
        check(
            "Connection closed by invalid user root from 1.2.3.4 port 22 203.0.113.7 port 51234 [preauth]",
            &expect![[r#"
                source=sshd action=closed_preauth_invalid ip=203.0.113.7 user="root from 1.2.3.4 port 22" port=51234
                message="Connection closed by invalid user root from 1.2.3.4 port 22 203.0.113.7 port 51234 [preauth]""#]],
        );
        check(
            "Connection closed by 203.0.113.7 port 51234 [preauth]",
            &expect![[r#"
                source=sshd action=closed_preauth ip=203.0.113.7 port=51234
                message="Connection closed by 203.0.113.7 port 51234 [preauth]""#]],
        );
        check(
            "Disconnected from user alice 2001:db8::1 port 50022",
            &expect![[r#"
                source=sshd action=disconnected_user ip=2001:db8::1 user=alice port=50022
                message="Disconnected from user alice 2001:db8::1 port 50022""#]],
        );
        check(
            "Connection reset by ::ffff:45.1.2.3 port 50000 [preauth]",
            &expect![[r#"
                source=sshd action=connection_reset ip=45.1.2.3 ip_raw=::ffff:45.1.2.3 port=50000
                message="Connection reset by ::ffff:45.1.2.3 port 50000 [preauth]""#]],
        );
        check(
            "banner exchange: Connection from 203.0.113.7 port 51234: invalid format",
            &expect![[r#"
                source=sshd action=banner_invalid ip=203.0.113.7 port=51234
                message="banner exchange: Connection from 203.0.113.7 port 51234: invalid format""#]],
        );
        check(
            "User bob from 203.0.113.7 not allowed because not listed in AllowUsers",
            &expect![[r#"
                source=sshd action=user_not_allowed ip=203.0.113.7 user=bob
                message="User bob from 203.0.113.7 not allowed because not listed in AllowUsers""#]],
        );
    }

    #[test]
    fn malformed_lines_carry_no_half_read_fields() {
        check("Failed password for root from 203.0.113.7 port 99999 ssh2", &expect!["unknown"]);
        check("Failed password for root from nowhere port 22 ssh2", &expect!["unknown"]);
        check("Connection reset by 203.0.113.7", &expect!["unknown"]);
        check("Invalid user", &expect!["unknown"]);
        check("Server listening on 0.0.0.0 port 22.", &expect!["unknown"]);
        check("", &expect!["unknown"]);
    }
}
