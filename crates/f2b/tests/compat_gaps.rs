//! fail2ban behaviours beyond the sample logs: tuple failure IDs (`<F-TUPLE_…>`), `usedns`
//! (`yes`/`warn`/`no`/`raw`) and `logtimezone`, each checked against what fail2ban 1.0.2 does
//! (its own tests in `fail2banregextestcase.py`, or its code where no test covers the case).

use std::{
    collections::BTreeMap,
    net::IpAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use vigil_f2b::{
    Clock, Filter, FilterDefinition, Resolver, UseDns, chrono_tz, parse_filter, parse_log_timezone,
};

fn clock() -> Clock {
    Clock { now: 1_600_000_000.0, zone: chrono_tz::Europe::Zurich, real_year: 2026 }
}

fn filter(failregex: &str, datepattern: Option<&str>, usedns: Option<&str>) -> Filter {
    let def = FilterDefinition {
        failregex: vec![failregex.to_owned()],
        maxlines: 1,
        datepattern: datepattern.map(str::to_owned),
        usedns: usedns.map(str::to_owned),
        ..FilterDefinition::default()
    };
    let f = Filter::new(&def, 2026);
    assert!(f.problems().is_empty(), "{:?}", f.problems());
    f
}

fn host(f: &mut Filter, line: &str) -> Option<String> {
    let r = f.process_line(line, &clock());
    r.matched.then_some(r.host).flatten()
}

#[test]
fn tuple_groups_build_the_failure_id_like_fail2ban_regex() {
    // fail2banregextestcase.py, testFrmtOutput (`-o id`).
    let epoch = Some("{^LN-BEG}EPOCH");
    let mut f = filter(r"^\s*<F-ID/> <F-TUPLE_ID>\S+</F-TUPLE_ID>", epoch, None);
    assert_eq!(
        host(&mut f, "1591983743.667 192.0.2.1 192.0.2.2").as_deref(),
        Some("('192.0.2.1', '192.0.2.2')")
    );
    let mut f = filter(
        r"^\s*<F-TUPLE_ID_1>\S+</F-TUPLE_ID_1> <F-ID/> <F-TUPLE_ID_2>\S+</F-TUPLE_ID_2>",
        epoch,
        None,
    );
    assert_eq!(
        host(&mut f, "1591983743.667 left 192.0.2.3 right").as_deref(),
        Some("('192.0.2.3', 'left', 'right')")
    );
    // The ID has precedence over the address it contains.
    let mut f = filter(
        r"^\s*<F-TUPLE_ID_1>\S+</F-TUPLE_ID_1> <F-ID><ADDR>:<F-PORT/></F-ID> <F-TUPLE_ID_2>\S+</F-TUPLE_ID_2>",
        epoch,
        None,
    );
    assert_eq!(
        host(&mut f, "1591983743.667 left [192.0.2.4]:12345 right").as_deref(),
        Some("('[192.0.2.4]:12345', 'left', 'right')")
    );
}

#[test]
fn tuple_ids_without_a_base_group_or_with_quotes_print_like_python() {
    let epoch = Some("{^LN-BEG}EPOCH");
    // No `fid`: the tuple starts with None, and differs from the address, so it is the ID.
    let mut f = filter(r"^\s*<HOST> <F-TUPLE_ID>\S+</F-TUPLE_ID>", epoch, None);
    assert_eq!(
        host(&mut f, "1591983743 192.0.2.5 it's").as_deref(),
        Some("(None, \"it's\")"),
        "Python's repr picks double quotes for a text with a single quote"
    );
    // A tuple part that did not take part in the match is None.
    let mut f = filter(r"^\s*<F-ID/>(?: <F-TUPLE_ID>x</F-TUPLE_ID>)?$", epoch, None);
    assert_eq!(host(&mut f, "1591983743 a\\b").as_deref(), Some("('a\\\\b', None)"));
}

#[test]
fn usedns_no_matches_addresses_only_and_drops_names() {
    let mut f = filter(r"from <HOST>$", None, Some("no"));
    assert_eq!(f.usedns(), UseDns::No);
    assert_eq!(host(&mut f, "from 192.0.2.1").as_deref(), Some("192.0.2.1"));
    assert_eq!(host(&mut f, "from [2001:db8::1]").as_deref(), Some("2001:db8::1"));
    assert_eq!(host(&mut f, "from host.example"), None, "<HOST> is <ADDR> with usedns=no");
    // `<DNS>` still matches a name, which then is no failure.
    let mut f = filter(r"from <DNS>$", None, Some("no"));
    assert_eq!(host(&mut f, "from host.example"), None);
    assert_eq!(host(&mut f, "from 192.0.2.9").as_deref(), Some("192.0.2.9"));
}

#[test]
fn usedns_raw_and_the_default_report_names_as_they_are() {
    for usedns in [Some("raw"), Some("RAW"), None] {
        let mut f = filter(r"from <HOST>$", None, usedns);
        assert_eq!(f.usedns(), UseDns::Raw);
        let r = f.process_line("from host.example", &clock());
        assert!(r.matched);
        assert_eq!(r.host.as_deref(), Some("host.example"));
        assert_eq!(r.resolved_from, None);
    }
}

fn resolver(answer: &'static [&'static str], calls: &Arc<AtomicUsize>) -> Arc<Resolver> {
    let calls = Arc::clone(calls);
    Arc::new(Resolver::with_lookup(
        move |name| {
            calls.fetch_add(1, Ordering::SeqCst);
            if name == "gone.example" {
                return Err(std::io::Error::new(std::io::ErrorKind::NotFound, "no such host"));
            }
            Ok(answer.iter().map(|a| a.parse::<IpAddr>().unwrap()).collect())
        },
        Duration::from_secs(2),
    ))
}

#[test]
fn usedns_yes_and_warn_resolve_names_to_every_address() {
    for mode in ["yes", "warn"] {
        let calls = Arc::new(AtomicUsize::new(0));
        let mut f = filter(r"from <HOST>$", None, Some(mode));
        f.set_resolver(resolver(&["2001:db8::7", "192.0.2.7", "::ffff:192.0.2.8"], &calls));
        let r = f.process_line("from host.example", &clock());
        assert!(r.matched, "{mode}");
        assert_eq!(r.resolved_from.as_deref(), Some("host.example"));
        assert_eq!(r.hosts, ["192.0.2.7", "192.0.2.8", "2001:db8::7"]);
        assert_eq!(r.host.as_deref(), Some("192.0.2.7"));
        // Cached: the second line does not look the name up again.
        assert!(f.process_line("from host.example", &clock()).matched);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // A name that does not resolve is no failure.
        assert!(!f.process_line("from gone.example", &clock()).matched);
        // Addresses are never looked up.
        assert_eq!(host(&mut f, "from 192.0.2.1").as_deref(), Some("192.0.2.1"));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }
}

#[test]
fn resolvers_are_not_used_unless_usedns_asks_for_it() {
    for mode in ["no", "raw"] {
        let calls = Arc::new(AtomicUsize::new(0));
        let mut f = filter(r"from <F-DNS/>$", None, Some(mode));
        f.set_resolver(resolver(&["192.0.2.7"], &calls));
        let _ = f.process_line("from host.example", &clock());
        assert_eq!(calls.load(Ordering::SeqCst), 0, "{mode}");
    }
}

#[test]
fn usedns_comes_from_the_filter_file_or_its_options() {
    let text = "[Definition]\nfailregex = from <HOST>$\nusedns = no\n";
    let def = parse_filter(text, &BTreeMap::new()).unwrap();
    assert_eq!(def.usedns.as_deref(), Some("no"));
    let opts: BTreeMap<String, String> = [("usedns".to_owned(), "raw".to_owned())].into();
    let def = parse_filter(text, &opts).unwrap();
    assert_eq!(def.usedns.as_deref(), Some("raw"));
    // fail2ban logs an error and uses `no`; Vigil reports the problem too.
    let def = FilterDefinition {
        failregex: vec!["from <HOST>$".into()],
        maxlines: 1,
        usedns: Some("maybe".into()),
        ..FilterDefinition::default()
    };
    let mut f = Filter::new(&def, 2026);
    assert_eq!(f.problems().len(), 1);
    assert_eq!(f.problems()[0].option, "usedns");
    assert_eq!(f.usedns(), UseDns::No);
    assert_eq!(host(&mut f, "from host.example"), None);
}

#[test]
fn logtimezone_values_are_validated_like_fail2ban() {
    for (tz, minutes) in [
        ("UTC", 0),
        ("", 0),
        ("Z", 0),
        ("GMT", 0),
        ("UTC+0200", 120),
        ("UTC-04", -240),
        ("UTC+01:30", 90),
        ("-0400", -240),
        ("+19", 1140),
        ("CET", 60),
        ("CEST+0100", 180),
        ("UTC+0200\n", 120),
    ] {
        assert_eq!(parse_log_timezone(tz), Ok(minutes), "{tz:?}");
    }
    for bad in ["Europe/Paris", "UTC+2", "UTC+2000", "utc", "XYZ", "UTC+02x0", "UTC+0+30", "CET "] {
        assert!(parse_log_timezone(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn logtimezone_reads_zone_less_timestamps_and_leaves_explicit_zones_alone() {
    let dp = Some("^%Y-%m-%d %H:%M:%S(?: %z)?");
    let mut f = filter(r"^ from <HOST>$", dp, None);
    // Without logtimezone: the clock's zone (Zurich, UTC+2 in August).
    let r = f.process_line("2005-08-14 09:00:00 from 192.0.2.1", &clock());
    assert_eq!(r.time, Some(1_124_002_800.0));
    f.set_log_timezone("UTC+0500").unwrap();
    let r = f.process_line("2005-08-14 09:00:00 from 192.0.2.1", &clock());
    assert_eq!(r.time, Some(1_124_010_000.0 - 5.0 * 3600.0));
    // A timestamp with its own offset keeps it.
    let r = f.process_line("2005-08-14 09:00:00 -0100 from 192.0.2.1", &clock());
    assert_eq!(r.time, Some(1_124_010_000.0 + 3600.0));
    assert!(f.set_log_timezone("Mars/Olympus").is_err());
}

#[test]
fn subnets_and_addresses_are_reported_in_fail2bans_normal_form() {
    // fail2banregextestcase.py, testRegexSubnet.
    let mut f = filter(r"^<SUBNET> FAIL\b", Some(r"^\[{LEPOCH}\]\s+"), None);
    let ids: Vec<Option<String>> = [
        "[1516469849] 192.0.2.1 FAIL: failure",
        "[1516469849] 192.0.2.1/24 FAIL: failure",
        "[1516469849] 2001:DB8:FF:FF::1 FAIL: failure",
        "[1516469849] 2001:DB8:FF:FF::1/60 FAIL: failure",
    ]
    .iter()
    .map(|l| host(&mut f, l))
    .collect();
    assert_eq!(
        ids,
        [
            Some("192.0.2.1"),
            Some("192.0.2.0/24"),
            Some("2001:db8:ff:ff::1"),
            Some("2001:db8:ff:f0::/60")
        ]
        .map(|s| s.map(str::to_owned))
    );
}
