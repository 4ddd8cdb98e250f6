//! Fuzzes the Python-to-Rust regex translation and the fail2ban tag expansion: the input's first
//! line is a failregex (and, with `|DATE|`, a datepattern), the rest are log lines matched
//! against it. Nothing may panic; runaway backtracking is cut by the backtrack limit.
//!
//! The capture search remembers recent results by the shape of their text and cuts branches
//! whose literals a text lacks (`shape_memo.rs`, `prune.rs`): a long-lived matcher, fed each
//! line, then the line again and with its digits changed, must scan exactly as a new one does.

#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil_f2b::{Clock, Filter, FilterDefinition, chrono_tz};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut lines = text.split('\n');
    let first = lines.next().unwrap_or("");
    let (regex, datepattern) = match first.split_once("|DATE|") {
        Some((r, d)) => (r, Some(d.to_owned())),
        None => (first, None),
    };
    let def = FilterDefinition {
        failregex: vec![regex.to_owned()],
        ignoreregex: vec![format!("{regex}x")],
        maxlines: if regex.len() % 3 == 0 { 2 } else { 1 },
        datepattern,
        ..FilterDefinition::default()
    };
    let mut filter = Filter::new(&def, 2026);
    let clock = Clock { now: 1_124_013_600.0, zone: chrono_tz::UTC, real_year: 2026 };
    let lines: Vec<&str> = lines.take(8).collect();
    for l in &lines {
        let _ = filter.process_line(l, &clock);
        let _ = filter.process_journal_line(l, clock.now);
    }
    if !filter.single_line() {
        return;
    }
    let warm = filter.matcher();
    for l in &lines {
        let shifted: String =
            l.chars().map(|c| c.to_digit(10).map_or(c, |d| char::from(b'0' + (d as u8 + 1) % 10))).collect();
        for text in [l.to_string(), l.to_string(), shifted] {
            let buf = format!("{text}\n");
            let cold = Filter::new(&def, 2026).matcher().scan(&buf);
            assert_eq!(format!("{:?}", warm.scan(&buf)), format!("{cold:?}"), "{text:?}");
        }
    }
});
