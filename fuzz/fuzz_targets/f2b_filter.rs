//! Fuzzes the fail2ban filter loader: arbitrary filter text (INI parsing, interpolation, tag
//! substitution, regex translation and compilation, date patterns), then one arbitrary log
//! line through the resulting matcher. Nothing may panic, and the speculative dating of the
//! threaded `filter-test` path must agree with line-by-line processing.
//!
//! Input layout: filter text, a NUL byte, a log line.

#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use vigil_f2b::{Clock, Filter, chrono_tz, parse_filter};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (conf, line) = text.split_once('\0').unwrap_or((text, "Aug 14 11:59:59 host sshd[1]: x"));
    let mut opts = BTreeMap::new();
    opts.insert("mode".to_owned(), "aggressive".to_owned());
    let Ok(def) = parse_filter(conf, &opts) else { return };
    let mut filter = Filter::new(&def, 2026);
    let clock = Clock { now: 1_124_013_600.0, zone: chrono_tz::Europe::Zurich, real_year: 2026 };
    let mut expected = Vec::new();
    for l in line.split('\n').take(8) {
        expected.push(filter.process_line(l, &clock));
    }
    // `vigil filter-test`'s threaded path: dates guessed by two speculators that each see every
    // other line, confirmed in line order. It must give what line-by-line processing gives.
    let mut filter = Filter::new(&def, 2026);
    if filter.single_line() {
        let mut specs = [filter.speculator(), filter.speculator()];
        let matcher = filter.matcher();
        for (i, l) in line.split('\n').take(8).enumerate() {
            let mut buf = String::new();
            let got = match specs[i % 2].prepare_line(l, &clock, &mut buf).and_then(|g| filter.accept(&g)) {
                Some(date) => filter.apply(matcher.scan(&buf), date),
                None => filter.process_line(l, &clock),
            };
            assert_eq!(got, expected[i], "line {i}");
        }
    }
});
