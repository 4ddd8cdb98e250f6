//! A compact text rendering of [`Parsed`] for the parsers' `expect!` snapshot tests, and the
//! shared pieces of each parser's `check` helper.

use std::fmt::Write;

use expect_test::Expect;

use crate::{Clock, Parsed};

/// The frozen clock every parser test uses: UTC, 2026-11-23 12:00.
pub(crate) fn test_clock() -> Clock {
    Clock::utc_at("2026-11-23T12:00:00Z".parse().expect("a valid timestamp"))
}

/// Compares a parse result, rendered, with its snapshot.
pub(crate) fn assert_parsed(got: Option<Parsed<'_>>, expect: &Expect) {
    let got = got.map_or_else(|| "not recognised".to_owned(), |it| render(&it));
    expect.assert_eq(&got);
}

/// `key=value` for every field that is set, then the message on its own line.
pub(crate) fn render(p: &Parsed<'_>) -> String {
    let mut out = format!("source={}", p.source);
    let mut put = |key: &str, value: Option<String>| {
        if let Some(value) = value {
            let _ = write!(out, " {key}={value}");
        }
    };
    let text = |it: Option<&str>| {
        it.map(|it| {
            if it.is_empty() || it.contains([' ', '"', '=']) {
                format!("{it:?}")
            } else {
                it.into()
            }
        })
    };
    put("time", p.timestamp.and_then(|it| it.to_rfc3339()));
    put("level", p.level.map(|it| it.as_str().into()));
    put("action", p.action.map(|it| it.as_str().into()));
    put("ip", p.ip.map(|it| it.to_string()));
    put("ip_raw", text(p.ip_raw));
    put("user", text(p.user));
    put("port", p.port.map(|it| it.to_string()));
    put("host", text(p.host));
    put("service", text(p.service));
    put("pid", p.pid.map(|it| it.to_string()));
    put("method", text(p.method));
    put("dst", p.dst.map(|it| it.to_string()));
    put("dport", p.dport.map(|it| it.to_string()));
    put("protocol", text(p.protocol));
    put("status", p.status.map(|it| it.to_string()));
    put("path", text(p.path));
    let _ = write!(out, "\nmessage={:?}", p.message);
    out
}
