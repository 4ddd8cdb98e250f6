//! The fallback: any line that starts with a timestamp (ISO 8601 / RFC 3339, `YYYY/MM/DD`,
//! RFC 3164, or the access-log `[dd/Mon/yyyy:HH:MM:SS +zzzz]`, bracketed or not), and the
//! level keyword among the next few words (`ERROR`, `[warn]`, `level=info`, `<E>` is not one).
//! A line with no timestamp is recognised only when it starts with a level keyword.

use crate::{Clock, Level, Parsed, time};

/// How many words after the timestamp are searched for a level keyword.
const LEVEL_WORDS: usize = 4;

/// Parses a line with a timestamp and an optional level keyword.
pub fn parse<'a>(line: &'a str, clock: &Clock) -> Option<Parsed<'a>> {
    let (stamp, rest) = match timestamp(line, clock) {
        Some((stamp, rest)) => (Some(stamp), rest),
        None => (None, line),
    };
    let mut p = Parsed { timestamp: stamp, ..Parsed::new("generic", rest.trim_start()) };
    for word in rest.split_ascii_whitespace().take(LEVEL_WORDS) {
        let word = word.strip_prefix("level=").unwrap_or(word);
        let word =
            word.trim_matches(|it: char| matches!(it, '[' | ']' | '(' | ')' | ':' | '"' | ','));
        if let Some(level) = Level::from_keyword(word) {
            p.level = Some(level);
            break;
        }
        if stamp.is_none() {
            break;
        }
    }
    (p.timestamp.is_some() || p.level.is_some()).then_some(p)
}

fn timestamp<'a>(line: &'a str, clock: &Clock) -> Option<(crate::Stamp, &'a str)> {
    let bracketed = line.strip_prefix('[');
    let text = bracketed.unwrap_or(line);
    let first = *text.as_bytes().first()?;
    let (stamp, used) = if first.is_ascii_digit() {
        if text.as_bytes().get(2) == Some(&b'/') {
            let stamp = time::parse_clf(text.get(..26)?)?;
            (stamp, 26)
        } else {
            time::parse_iso(text, clock)?
        }
    } else {
        time::parse_bsd(text, clock)?
    };
    let mut rest = &text[used..];
    if bracketed.is_some() {
        rest = rest.strip_prefix(']')?;
    }
    Some((stamp, rest))
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
    fn timestamps_and_levels() {
        check(
            "2026-11-23T11:00:00.5Z ERROR worker 3: queue full",
            &expect![[r#"
                source=generic time=2026-11-23T11:00:00.500Z level=error
                message="ERROR worker 3: queue full""#]],
        );
        check(
            "[2026-11-23 11:00:00] app.WARNING: disk almost full",
            &expect![[r#"
                source=generic time=2026-11-23T11:00:00Z
                message="app.WARNING: disk almost full""#]],
        );
        check(
            "2026-11-23 11:00:00 myapp [warn] retrying",
            &expect![[r#"
                source=generic time=2026-11-23T11:00:00Z level=warning
                message="myapp [warn] retrying""#]],
        );
        check("time=x 2026 level=info", &expect!["not recognised"]);
        check(
            "[10/Oct/2000:13:55:36 -0700] level=info started",
            &expect![[r#"
                source=generic time=2000-10-10T13:55:36-07:00 level=info
                message="level=info started""#]],
        );
        check(
            "WARNING: no timestamp here",
            &expect![[r#"
                source=generic level=warning
                message="WARNING: no timestamp here""#]],
        );
        check("just text", &expect!["not recognised"]);
    }
}
