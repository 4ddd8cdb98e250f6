//! The filter loader on a small filter that uses every configuration feature fail2ban filters
//! rely on (fixtures in `test_data/filter.d`), and the matcher on lines for it.

use std::{collections::BTreeMap, path::Path};

use vigil_f2b::{Clock, Filter, chrono_tz, read_filter};

fn demo(opts: &[(&str, &str)]) -> vigil_f2b::FilterDefinition {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("test_data/filter.d/demo.conf");
    let opts: BTreeMap<String, String> =
        opts.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    read_filter(&path, &opts).unwrap()
}

fn clock() -> Clock {
    Clock { now: 1_124_013_600.0, zone: chrono_tz::UTC, real_year: 2026 }
}

#[test]
fn includes_defaults_init_known_and_tags_resolve_like_fail2ban() {
    let def = demo(&[]);
    assert_eq!(def.files.len(), 2, "base.conf then demo.conf; the missing .local is skipped");
    assert_eq!(
        def.failregex,
        vec![
            r"^\s*demo\[\d+\]:\s+login failed for <F-USER>\S+</F-USER> from <HOST>$".to_owned(),
            r"^\s*demo\[\d+\]:\s+word=base-word+demo id=<F-ID>\d+</F-ID>".to_owned(),
        ]
    );
    assert_eq!(def.ignoreregex, vec!["for <F-USER>trusted</F-USER>".to_owned()]);
    assert_eq!(def.datepattern.as_deref(), Some("^%Y-%m-%d %H:%M:%S"));
    assert_eq!(def.maxlines, 1);

    // Options override [Init] values in tags and [Definition] values in interpolation.
    let def = demo(&[("mode", "strict"), ("word", "opt")]);
    assert!(def.failregex[0].contains("bad login for"), "{:?}", def.failregex);
    assert!(def.failregex[1].contains("word=opt id="), "{:?}", def.failregex);
}

#[test]
fn the_loaded_filter_matches_ignores_and_dates_lines() {
    let mut f = Filter::new(&demo(&[]), 2026);
    assert!(f.problems().is_empty(), "{:?}", f.problems());
    let c = clock();
    let r = f.process_line("2005-08-14 09:00:00 demo[1]: login failed for bob from 192.0.2.1", &c);
    assert!(r.matched && !r.ignored);
    assert_eq!(r.host.as_deref(), Some("192.0.2.1"));
    assert_eq!(r.time, Some(1_124_010_000.0));
    let r = f.process_line("2005-08-14 09:00:01 demo[1]: word=base-wordddemo id=42", &c);
    assert!(r.matched);
    assert_eq!(r.host.as_deref(), Some("42"), "<F-ID> is the failure ID");
    let r =
        f.process_line("2005-08-14 09:00:02 demo[1]: login failed for trusted from 192.0.2.2", &c);
    assert!(!r.matched && r.ignored);
    let r = f.process_line("2005-08-14 09:00:03 other[1]: login failed for x from 192.0.2.3", &c);
    assert!(!r.matched && !r.ignored);
}

#[test]
fn broken_filters_are_errors_or_problems_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let none = BTreeMap::new();
    for text in [
        "no section header\n",
        "[Definition]\nfailregex = %(missing)s\n",
        "[Definition]\nfailregex = 100%\n",
        "[Definition]\na = <b>\nb = <a>\nfailregex = <a>\n",
        "[Definition]\nx = 1\nx = 2\n",
    ] {
        let p = write("bad.conf", text);
        assert!(read_filter(&p, &none).is_err(), "{text:?} must not load");
    }
    // Regexes that do not compile, or lack a failure ID, are reported per item.
    let p = write(
        "items.conf",
        "[Definition]\nfailregex = (unclosed <HOST>\n    no id here\n    ok <HOST>\ndatepattern = %%Q\n",
    );
    let f = Filter::new(&read_filter(&p, &none).unwrap(), 2026);
    let options: Vec<_> = f.problems().iter().map(|p| (p.option, p.index)).collect();
    assert_eq!(options, vec![("failregex", 1), ("failregex", 2), ("datepattern", 0)]);
    assert_eq!(f.failregex_count(), 1);
}
