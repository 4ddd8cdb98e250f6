//! An error message's signature: what stays the same when the same error recurs.
//!
//! A leading level keyword (`ERROR`, `[crit]`, `warning:`) is dropped, so the same error logged
//! at two levels has one signature. Every whitespace-separated word that contains a digit (numbers, ids, addresses, ports,
//! timestamps, hex, UUIDs, durations) becomes `<*>`; runs of such words collapse into one. The
//! signature is prefixed with the program and cut to [`MAX_SIGNATURE_CHARS`]. Errors the error
//! tracer recognises (`vigil_enrich::error::analyse`) are grouped by the tracer's signature
//! instead; this small one covers the rest.

use crate::bounded::truncate_chars;

/// Longest signature, in characters.
pub const MAX_SIGNATURE_CHARS: usize = 200;

/// The signature of `message` logged by `source`.
pub fn signature(source: &str, message: &str) -> String {
    let mut out = String::with_capacity(message.len().min(MAX_SIGNATURE_CHARS) + source.len() + 2);
    out.push_str(source);
    out.push(':');
    let mut last_wild = false;
    let mut words = message.split_whitespace().peekable();
    if let Some(first) = words.peek()
        && vigil_parse::Level::from_keyword(first.trim_matches(|c| "[]:<>".contains(c))).is_some()
    {
        words.next();
    }
    for word in words {
        let wild = word.bytes().any(|b| b.is_ascii_digit());
        if wild && last_wild {
            continue;
        }
        out.push(' ');
        out.push_str(if wild { "<*>" } else { word });
        last_wild = wild;
        if out.len() > MAX_SIGNATURE_CHARS * 4 {
            break;
        }
    }
    truncate_chars(&out, MAX_SIGNATURE_CHARS).to_owned()
}
