//! `vigil filter-test` on the fail2ban behaviours the sample logs do not exercise: `--usedns`
//! (names resolved, dropped or kept raw), `--logtimezone` against `--tz`, tuple failure IDs and
//! Python's `(?a)` flag, as fail2ban-regex 1.0.2 reports them.

mod common;

use common::{text, vigil};

use serde_json::Value;

fn run(log: &str, filter: &str, extra: &[&str]) -> (Option<i32>, Vec<Value>, String) {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("test.log");
    std::fs::write(&path, log).unwrap();
    let path = path.to_string_lossy().into_owned();
    let mut args = vec!["filter-test", &path, filter, "--json", "--tz", "Europe/Zurich"];
    args.extend_from_slice(extra);
    let out = vigil(&args).output().expect("vigil runs");
    let lines = text(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    (out.status.code(), lines, text(&out.stderr))
}

#[test]
fn usedns_decides_what_a_host_name_becomes() {
    let log = "2005-08-14 09:00:00 from localhost\n2005-08-14 09:00:01 from 192.0.2.1\n";
    // Default: the name as captured (fail2ban's test mode), no lookup.
    let (code, lines, err) = run(log, "from <HOST>$", &[]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(lines[0]["host"], "localhost");
    assert!(lines[0].get("hosts").is_none());
    let (_, lines, _) = run(log, "from <HOST>$", &["--usedns", "raw"]);
    assert_eq!(lines[0]["host"], "localhost");
    // no: <HOST> matches addresses only.
    let (_, lines, _) = run(log, "from <HOST>$", &["--usedns", "no"]);
    assert_eq!(lines[0]["matched"], false);
    assert_eq!(lines[1]["host"], "192.0.2.1");
    // yes: resolved by the system resolver, here from /etc/hosts (no network); fail2ban-regex
    // reports the loopback address too (the ban manager refuses to ban it).
    let (code, lines, err) = run(log, "from <HOST>$", &["--usedns", "yes"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(lines[0]["matched"], true);
    assert_eq!(lines[0]["host"], "127.0.0.1");
    let hosts = lines[0]["hosts"].as_array().unwrap();
    assert!(hosts.iter().all(|h| h == "127.0.0.1" || h == "::1"), "{hosts:?}");
    assert_eq!(lines[1]["host"], "192.0.2.1");
    // warn: the same, with a warning.
    let (_, lines, err) = run(log, "from <HOST>$", &["--usedns", "warn"]);
    assert_eq!(lines[0]["host"], "127.0.0.1");
    assert!(err.contains("determined IP using DNS lookup: localhost"), "{err}");
    let (code, _, err) = run(log, "from <HOST>$", &["--usedns", "maybe"]);
    assert_eq!(code, Some(2), "{err}");
}

#[test]
fn logtimezone_reads_zone_less_timestamps_and_tz_still_formats_them() {
    let log = "2005-08-14 09:00:00 from 192.0.2.1\n";
    let (_, lines, _) = run(log, "from <HOST>$", &[]);
    assert_eq!(lines[0]["time"], "2005-08-14T09:00:00+02:00");
    let (_, lines, _) = run(log, "from <HOST>$", &["--logtimezone", "UTC"]);
    assert_eq!(lines[0]["time"], "2005-08-14T11:00:00+02:00");
    let (_, lines, _) = run(log, "from <HOST>$", &["--logtimezone", "UTC-0430"]);
    assert_eq!(lines[0]["time"], "2005-08-14T15:30:00+02:00");
    let (code, _, err) = run(log, "from <HOST>$", &["--logtimezone", "Europe/Paris"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("unknown or unsupported time zone"), "{err}");
}

#[test]
fn tuple_ids_and_the_ascii_flag_show_in_the_output() {
    let log = "2005-08-14 09:00:00 user jörg from 192.0.2.1\n";
    let (code, lines, err) =
        run(log, r"user <F-ID>\w+</F-ID> from <F-TUPLE_ID><HOST></F-TUPLE_ID>", &[]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(lines[0]["host"], "('jörg', '192.0.2.1')");
    let (_, lines, _) = run(log, r"(?a)user <F-ID>\w+</F-ID>", &[]);
    assert_eq!(lines[0]["host"], "j", "with (?a) \\w is ASCII-only, as in Python");
    let (code, _, _) = run(log, r"user (?a)<F-ID>\w+</F-ID>", &[]);
    assert_eq!(code, Some(2), "Python refuses global flags after the start");
}
