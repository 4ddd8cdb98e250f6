//! nginx logs: the access log in the `combined` format and the error log.
//!
//! Access: `$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent
//! "$http_referer" "$http_user_agent"` (the referer and agent may be missing, as in `common`).
//! nginx escapes `"` in access log fields, so the quoted fields are read exactly. The action
//! follows the status: 400 `bad_request`, 401 `auth_failed`, 403 `access_forbidden`, 404
//! `not_found`, 429 `rate_limited`, 5xx `server_error`, anything else `http_request`.
//!
//! Error: `2026/11/01 00:00:03 [error] 812#812: *5 MESSAGE, client: IP, server: NAME, request:
//! "GET / HTTP/1.1", host: "example.com"`. nginx does not escape the text it interpolates
//! (a basic-auth user name, the request line), so the `client:` field is taken as the first
//! `, client: ` that lies outside the message's quoted strings.

use std::sync::LazyLock;

use regex::Regex;

use crate::{Action, Clock, Level, Parsed, time};

static ACCESS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"^(\S+) \S+ (\S+) \[([^\]]*)\] "((?:[^"\\]|\\.)*)" (\d{3}) (?:\d+|-)(?: "(?:[^"\\]|\\.)*" "(?:[^"\\]|\\.)*")?"#,
    )
    .expect("the access log pattern is valid")
});

/// Parses a `combined` (or `common`) access log line.
pub fn parse_access(line: &str) -> Option<Parsed<'_>> {
    let caps = ACCESS.captures(line)?;
    let text = |idx: usize| caps.get(idx).map_or("", |it| it.as_str());
    let mut p = Parsed::new("nginx_access", line);
    p.set_ip(text(1));
    p.ip?;
    p.user = Some(text(2)).filter(|it| *it != "-");
    p.timestamp = Some(time::parse_clf(text(3))?);
    request(&mut p, text(4));
    let status = time::digits(text(5).as_bytes()).and_then(|it| u16::try_from(it).ok())?;
    p.status = Some(status);
    p.action = Some(match status {
        400 => Action::BadRequest,
        401 => Action::AuthFailed,
        403 => Action::AccessForbidden,
        404 => Action::NotFound,
        429 => Action::RateLimited,
        500..=599 => Action::ServerError,
        _ => Action::HttpRequest,
    });
    Some(p)
}

/// `METHOD PATH PROTOCOL` of a request line.
fn request<'a>(p: &mut Parsed<'a>, line: &'a str) {
    let mut parts = line.splitn(3, ' ');
    if let (Some(method), Some(path)) = (parts.next(), parts.next()) {
        p.method = Some(method).filter(|it| !it.is_empty());
        p.path = Some(path);
        p.protocol = parts.next();
    }
}

/// Parses an error log line.
pub fn parse_error<'a>(line: &'a str, clock: &Clock) -> Option<Parsed<'a>> {
    let (stamp, used) = time::parse_iso(line, clock)?;
    if line.as_bytes().get(4) != Some(&b'/') {
        return None;
    }
    let rest = line.get(used..)?.strip_prefix(" [")?;
    let close = memchr::memchr(b']', rest.as_bytes())?;
    let level = Level::from_keyword(&rest[..close])?;
    let rest = rest[close + 1..].strip_prefix(' ')?;
    // `PID#TID: ` then an optional `*CONNECTION ` .
    let colon = memchr::memchr(b':', rest.as_bytes())?;
    let (pid, _tid) = rest[..colon].split_once('#')?;
    let mut msg = rest[colon + 1..].trim_start();
    if let Some(after) = msg.strip_prefix('*') {
        let end = after.bytes().take_while(u8::is_ascii_digit).count();
        msg = after[end..].trim_start();
    }
    let mut p = Parsed {
        timestamp: Some(stamp),
        level: Some(level),
        pid: time::digits(pid.as_bytes()),
        ..Parsed::new("nginx_error", msg)
    };
    let (text, fields) = split_client(msg);
    if let Some(fields) = fields {
        let end = memchr::memchr(b',', fields.as_bytes()).unwrap_or(fields.len());
        p.set_ip(&fields[..end]);
        if let Some(idx) = memchr::memmem::find(fields.as_bytes(), b", request: \"") {
            let req = &fields[idx + 12..];
            let end = memchr::memchr(b'"', req.as_bytes()).unwrap_or(req.len());
            request(&mut p, &req[..end]);
        }
    }
    error_action(&mut p, text);
    Some(p)
}

/// Splits `MESSAGE, client: …` at the first `, client: ` outside double quotes.
fn split_client(msg: &str) -> (&str, Option<&str>) {
    let b = msg.as_bytes();
    let mut quoted = false;
    let mut idx = 0;
    while idx < b.len() {
        match b[idx] {
            b'"' => quoted = !quoted,
            b',' if !quoted && b[idx..].starts_with(b", client: ") => {
                return (&msg[..idx], Some(&msg[idx + 10..]));
            }
            _ => {}
        }
        idx += 1;
    }
    (msg, None)
}

fn error_action<'a>(p: &mut Parsed<'a>, text: &'a str) {
    let b = text.as_bytes();
    let has = |needle: &[u8]| memchr::memmem::find(b, needle).is_some();
    p.action = if let Some(user) = text.strip_prefix("user \"") {
        // `user "NAME" was not found in "FILE"` / `user "NAME": password mismatch`.
        let end = memchr::memmem::rfind(user.as_bytes(), b"\" was not found in \"")
            .or_else(|| memchr::memmem::rfind(user.as_bytes(), b"\": password mismatch"));
        p.user = end.map(|end| &user[..end]);
        end.map(|_| Action::AuthFailed)
    } else if has(b"no user/password was provided for basic authentication") {
        Some(Action::AuthFailed)
    } else if has(b"access forbidden by rule") || has(b"directory index of") && has(b"forbidden") {
        Some(Action::AccessForbidden)
    } else if text.starts_with("limiting requests") || text.starts_with("limiting connections") {
        Some(Action::RateLimited)
    } else if has(b"(2: No such file or directory)") {
        Some(Action::NotFound)
    } else if has(b"upstream") || has(b"connect() failed") || has(b"no live upstreams") {
        Some(Action::ServerError)
    } else {
        None
    };
}

#[cfg(test)]
mod tests {
    use expect_test::{Expect, expect};

    use super::*;

    fn check(line: &str, expect: &Expect) {
        let clock = crate::tests_support::test_clock();
        crate::tests_support::assert_parsed(
            parse_access(line).or_else(|| parse_error(line, &clock)),
            expect,
        );
    }

    #[test]
    fn access() {
        check(
            r#"203.0.113.7 - - [01/Nov/2026:00:00:03 +0100] "GET /wp-login.php HTTP/1.1" 404 153 "-" "Mozilla/5.0 (X11; Linux x86_64)""#,
            &expect![[r#"
                source=nginx_access time=2026-11-01T00:00:03+01:00 action=not_found ip=203.0.113.7 method=GET protocol=HTTP/1.1 status=404 path=/wp-login.php
                message="203.0.113.7 - - [01/Nov/2026:00:00:03 +0100] \"GET /wp-login.php HTTP/1.1\" 404 153 \"-\" \"Mozilla/5.0 (X11; Linux x86_64)\"""#]],
        );
        check(
            r#"2001:db8::7 - alice [01/Nov/2026:00:00:04 +0000] "POST /api/login?next=%22x HTTP/2.0" 200 17 "https://example.com/" "curl/8.5.0""#,
            &expect![[r#"
                source=nginx_access time=2026-11-01T00:00:04Z action=http_request ip=2001:db8::7 user=alice method=POST protocol=HTTP/2.0 status=200 path="/api/login?next=%22x"
                message="2001:db8::7 - alice [01/Nov/2026:00:00:04 +0000] \"POST /api/login?next=%22x HTTP/2.0\" 200 17 \"https://example.com/\" \"curl/8.5.0\"""#]],
        );
        check(
            r#"198.51.100.9 - - [01/Nov/2026:00:00:05 +0000] "\x16\x03\x01\x00" 400 157 "-" "-""#,
            &expect![[r#"
                source=nginx_access time=2026-11-01T00:00:05Z action=bad_request ip=198.51.100.9 status=400
                message="198.51.100.9 - - [01/Nov/2026:00:00:05 +0000] \"\\x16\\x03\\x01\\x00\" 400 157 \"-\" \"-\"""#]],
        );
        check(r#"not an address - - [x] "GET / HTTP/1.1" 200 1"#, &expect!["not recognised"]);
    }

    #[test]
    fn error() {
        check(
            r#"2026/11/01 00:00:03 [error] 812#812: *5 user "admin, client: 1.2.3.4, server: x" was not found in "/etc/nginx/.htpasswd", client: 203.0.113.7, server: example.com, request: "GET /admin HTTP/1.1", host: "example.com""#,
            &expect![[r#"
                source=nginx_error time=2026-11-01T00:00:03Z level=error action=auth_failed ip=203.0.113.7 user="admin, client: 1.2.3.4, server: x" pid=812 method=GET protocol=HTTP/1.1 path=/admin
                message="user \"admin, client: 1.2.3.4, server: x\" was not found in \"/etc/nginx/.htpasswd\", client: 203.0.113.7, server: example.com, request: \"GET /admin HTTP/1.1\", host: \"example.com\"""#]],
        );
        check(
            r#"2026/11/01 00:00:04 [error] 812#812: *6 limiting requests, excess: 10.520 by zone "one", client: 198.51.100.9, server: example.com, request: "POST /login HTTP/1.1", host: "example.com""#,
            &expect![[r#"
                source=nginx_error time=2026-11-01T00:00:04Z level=error action=rate_limited ip=198.51.100.9 pid=812 method=POST protocol=HTTP/1.1 path=/login
                message="limiting requests, excess: 10.520 by zone \"one\", client: 198.51.100.9, server: example.com, request: \"POST /login HTTP/1.1\", host: \"example.com\"""#]],
        );
        check(
            r#"2026/11/01 00:00:05 [error] 812#812: *7 open() "/var/www/html/.env" failed (2: No such file or directory), client: 2001:db8::9, server: _, request: "GET /.env HTTP/1.1", host: "203.0.113.1""#,
            &expect![[r#"
                source=nginx_error time=2026-11-01T00:00:05Z level=error action=not_found ip=2001:db8::9 pid=812 method=GET protocol=HTTP/1.1 path=/.env
                message="open() \"/var/www/html/.env\" failed (2: No such file or directory), client: 2001:db8::9, server: _, request: \"GET /.env HTTP/1.1\", host: \"203.0.113.1\"""#]],
        );
        check(
            "2026/11/01 00:00:00 [notice] 811#811: signal process started",
            &expect![[r#"
                source=nginx_error time=2026-11-01T00:00:00Z level=notice pid=811
                message="signal process started""#]],
        );
        check("2026/11/01 00:00:00 [loud] 811#811: x", &expect!["not recognised"]);
    }
}
