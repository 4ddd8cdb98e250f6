//! Fuzzes the fail2ban filter loader: arbitrary filter text (INI parsing, interpolation, tag
//! substitution, regex translation and compilation, date patterns), then one arbitrary log
//! line through the resulting matcher (a filter's `usedns = yes|warn` resolves names through a
//! fixed in-process resolver, never the network). Nothing may panic, and the speculative dating
//! of the threaded `filter-test` path must agree with line-by-line processing.
//!
//! Input layout: filter text, a NUL byte, log lines; a first log line `TZ=zone` is a
//! `logtimezone` instead.

#![no_main]

use std::{collections::BTreeMap, net::IpAddr, sync::Arc, time::Duration};

use libfuzzer_sys::fuzz_target;
use vigil_f2b::{Clock, Filter, Resolver, chrono_tz, parse_filter};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (conf, line) = text.split_once('\0').unwrap_or((text, "Aug 14 11:59:59 host sshd[1]: x"));
    let mut opts = BTreeMap::new();
    opts.insert("mode".to_owned(), "aggressive".to_owned());
    let Ok(def) = parse_filter(conf, &opts) else { return };
    let (zone, line) = match line.split_once('\n') {
        Some((tz, rest)) if tz.starts_with("TZ=") => (Some(&tz[3..]), rest),
        _ => (None, line),
    };
    // The same filter twice: line by line, then through the threaded path.
    let build = || {
        let mut filter = Filter::new(&def, 2026);
        filter.set_resolver(Arc::new(Resolver::with_lookup(
            |name| Ok(if name.len() % 2 == 0 { vec![IpAddr::from([192, 0, 2, 1])] } else { vec![] }),
            Duration::from_millis(100),
        )));
        if let Some(zone) = zone {
            let _ = filter.set_log_timezone(zone);
        }
        filter
    };
    let mut filter = build();
    let clock = Clock { now: 1_124_013_600.0, zone: chrono_tz::Europe::Zurich, real_year: 2026 };
    let mut expected = Vec::new();
    for l in line.split('\n').take(8) {
        expected.push(filter.process_line(l, &clock));
    }
    // `vigil filter-test`'s threaded path: dates guessed by two speculators that each see every
    // other line, confirmed in line order. It must give what line-by-line processing gives.
    let mut filter = build();
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
