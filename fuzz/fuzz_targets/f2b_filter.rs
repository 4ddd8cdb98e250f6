//! Fuzzes the fail2ban filter loader: arbitrary filter text (INI parsing, interpolation, tag
//! substitution, regex translation and compilation, date patterns), then one arbitrary log
//! line through the resulting matcher (a filter's `usedns = yes|warn` resolves names through a
//! fixed in-process resolver, never the network). Nothing may panic.
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
    let mut filter = Filter::new(&def, 2026);
    filter.set_resolver(Arc::new(Resolver::with_lookup(
        |name| Ok(if name.len() % 2 == 0 { vec![IpAddr::from([192, 0, 2, 1])] } else { vec![] }),
        Duration::from_millis(100),
    )));
    let line = match line.split_once('\n') {
        Some((tz, rest)) if tz.starts_with("TZ=") => {
            let _ = filter.set_log_timezone(&tz[3..]);
            rest
        }
        _ => line,
    };
    let clock = Clock { now: 1_124_013_600.0, zone: chrono_tz::Europe::Zurich, real_year: 2026 };
    for l in line.split('\n').take(8) {
        let _ = filter.process_line(l, &clock);
    }
});
