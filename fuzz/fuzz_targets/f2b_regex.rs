//! Fuzzes the Python-to-Rust regex translation and the fail2ban tag expansion: the input's first
//! line is a failregex (and, with `|DATE|`, a datepattern), the rest are log lines matched
//! against it. Nothing may panic; runaway backtracking is cut by the backtrack limit.

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
    for l in lines.take(8) {
        let _ = filter.process_line(l, &clock);
        let _ = filter.process_journal_line(l, clock.now);
    }
});
