//! Django logs: the development server's request lines (`[23/Nov/2026 12:00:00] "GET / HTTP/1.1"
//! 404 179`) and logger lines in the formats Django's documentation shows
//! (`ERROR 2026-11-23 12:00:00,123 log 812 1400 Not Found: /x`, `2026-11-23 12:00:00,123 ERROR
//! django.request Not Found: /x`, with or without brackets around the time and logger).
//!
//! Actions come from Django's own messages: `Invalid HTTP_HOST header` (`disallowed_host`),
//! `Forbidden (CSRF …)` (`csrf_failure`), `Forbidden (…)` (`access_forbidden`), `Not Found`,
//! `Bad Request` and `Internal Server Error`, or from the status of a request line.

use std::sync::LazyLock;

use regex::Regex;

use crate::{Action, Clock, Level, Parsed, time};

static SERVER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"^\[(\d{2})/([A-Za-z]{3})/(\d{4}) (\d{2}):(\d{2}):(\d{2})\] "((?:[^"\\]|\\.)*)" (\d{3}) (?:\d+|-)"#)
        .expect("the request line pattern is valid")
});

static LOGGER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^(?:(?P<l1>[A-Z]+) \[?(?P<t1>\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?)\]? (?:\S+ \d+ \d+ )?|\[?(?P<t2>\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?)\]? \[?(?P<l2>[A-Z]+)\]? (?:\[?(?P<logger>[A-Za-z_][\w.]*)\]?:? )?)",
    )
    .expect("the logger pattern is valid")
});

/// Parses a Django log line.
pub fn parse<'a>(line: &'a str, clock: &Clock) -> Option<Parsed<'a>> {
    if line.starts_with('[')
        && let Some(caps) = SERVER.captures(line)
    {
        let num = |idx: usize| time::digits(caps[idx].as_bytes());
        let month = time::month(caps[2].as_bytes())?;
        let year = i16::try_from(num(3)?).ok()?;
        let (h, m, s) = (num(4)? as u8, num(5)? as u8, num(6)? as u8);
        let stamp = clock.local(year, month, num(1)? as u8, h, m, s, 0)?;
        let mut p = Parsed { timestamp: Some(stamp), ..Parsed::new("django", line) };
        let request = caps.get(7).map_or("", |it| it.as_str());
        let mut parts = request.splitn(3, ' ');
        if let (Some(method), Some(path)) = (parts.next(), parts.next()) {
            p.method = Some(method);
            p.path = Some(path);
            p.protocol = parts.next();
        }
        let status = time::digits(caps[8].as_bytes()).and_then(|it| u16::try_from(it).ok())?;
        p.status = Some(status);
        p.action = Some(match status {
            400 => Action::BadRequest,
            403 => Action::AccessForbidden,
            404 => Action::NotFound,
            500..=599 => Action::ServerError,
            _ => Action::HttpRequest,
        });
        return Some(p);
    }
    let caps = LOGGER.captures(line)?;
    let level = caps.name("l1").or_else(|| caps.name("l2"))?.as_str();
    let level = Level::from_keyword(level)?;
    let stamp_text = caps.name("t1").or_else(|| caps.name("t2"))?.as_str();
    let (stamp, _) = time::parse_iso(stamp_text, clock)?;
    let message = &line[caps.get(0)?.end()..];
    let logger = caps.name("logger").map(|it| it.as_str());
    let mut p =
        Parsed { timestamp: Some(stamp), level: Some(level), ..Parsed::new("django", message) };
    p.service = logger;
    let known = message_action(&mut p, message);
    // Without a django logger name or a Django message this is some other program's log.
    (known || logger.is_some_and(|it| it.starts_with("django"))).then_some(p)
}

fn message_action<'a>(p: &mut Parsed<'a>, msg: &'a str) -> bool {
    let path_after = |prefix: &str| msg.strip_prefix(prefix);
    let (action, path) = if msg.starts_with("Invalid HTTP_HOST header: ") {
        (Action::DisallowedHost, None)
    } else if let Some(rest) = msg.strip_prefix("Forbidden (CSRF") {
        (Action::CsrfFailure, rest.split_once("): ").map(|it| it.1))
    } else if let Some(rest) = msg.strip_prefix("Forbidden (") {
        (Action::AccessForbidden, rest.split_once("): ").map(|it| it.1))
    } else if let Some(path) = path_after("Not Found: ") {
        (Action::NotFound, Some(path))
    } else if let Some(path) = path_after("Bad Request: ") {
        (Action::BadRequest, Some(path))
    } else if let Some(path) = path_after("Internal Server Error: ") {
        (Action::ServerError, Some(path))
    } else {
        return false;
    };
    p.action = Some(action);
    p.path = path;
    true
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
    fn request_lines() {
        check(
            r#"[23/Nov/2026 11:58:01] "GET /admin/login/?next=/admin/ HTTP/1.1" 200 4158"#,
            &expect![[r#"
                source=django time=2026-11-23T11:58:01Z action=http_request method=GET protocol=HTTP/1.1 status=200 path="/admin/login/?next=/admin/"
                message="[23/Nov/2026 11:58:01] \"GET /admin/login/?next=/admin/ HTTP/1.1\" 200 4158""#]],
        );
        check(
            r#"[23/Nov/2026 11:58:02] "GET /.git/config HTTP/1.1" 404 179"#,
            &expect![[r#"
                source=django time=2026-11-23T11:58:02Z action=not_found method=GET protocol=HTTP/1.1 status=404 path=/.git/config
                message="[23/Nov/2026 11:58:02] \"GET /.git/config HTTP/1.1\" 404 179""#]],
        );
    }

    #[test]
    fn logger_lines() {
        check(
            "ERROR 2026-11-23 11:58:03,120 log 812 140245 Internal Server Error: /api/orders/",
            &expect![[r#"
                source=django time=2026-11-23T11:58:03.120Z level=error action=server_error path=/api/orders/
                message="Internal Server Error: /api/orders/""#]],
        );
        check(
            "2026-11-23 11:58:04,001 ERROR django.security.DisallowedHost Invalid HTTP_HOST header: 'evil.example'. You may need to add 'evil.example' to ALLOWED_HOSTS.",
            &expect![[r#"
                source=django time=2026-11-23T11:58:04.001Z level=error action=disallowed_host service=django.security.DisallowedHost
                message="Invalid HTTP_HOST header: 'evil.example'. You may need to add 'evil.example' to ALLOWED_HOSTS.""#]],
        );
        check(
            "[2026-11-23 11:58:05,002] WARNING [django.security.csrf] Forbidden (CSRF cookie not set.): /accounts/login/",
            &expect![[r#"
                source=django time=2026-11-23T11:58:05.002Z level=warning action=csrf_failure service=django.security.csrf path=/accounts/login/
                message="Forbidden (CSRF cookie not set.): /accounts/login/""#]],
        );
        check(
            "2026-11-23 11:58:06,003 WARNING django.request Not Found: /wp-admin/",
            &expect![[r#"
                source=django time=2026-11-23T11:58:06.003Z level=warning action=not_found service=django.request path=/wp-admin/
                message="Not Found: /wp-admin/""#]],
        );
        check(
            "2026-11-23 11:58:06,003 WARNING myapp.views something odd",
            &expect!["not recognised"],
        );
    }
}
