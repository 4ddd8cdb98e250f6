//! Fuzzes the fail2ban filter loader: arbitrary filter text (INI parsing, interpolation, tag
//! substitution, regex translation and compilation, date patterns), then one arbitrary log
//! line through the resulting matcher. Nothing may panic.
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
    for l in line.split('\n').take(8) {
        let _ = filter.process_line(l, &clock);
    }
});
