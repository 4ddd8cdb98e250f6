//! `vigil filter-test` against fail2ban 1.0.2's own annotated sample logs: the conformance
//! scorer (`../shared/conformance/fail2ban/score.py`, which replays fail2ban's sample-test
//! semantics) drives the real binary, and the agreement must be at least 95 % overall and 100 %
//! for sshd. Every filter in `filter.d` is also loaded once. The results are published in
//! `docs/fail2ban-compat.md`; this test fails when that page is stale — regenerate it with
//! `VIGIL_BLESS=1 cargo test -p vigil-cli --test filter_test`.

mod common;

use common::text;

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn conformance() -> PathBuf {
    root().join("../shared/conformance/fail2ban")
}

#[allow(clippy::disallowed_methods)] // Running the binary and the scorer under test is the point.
fn command(program: &str) -> Command {
    let mut cmd = Command::new(program);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("VIGIL_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

fn vigil(args: &[&str]) -> Output {
    command(env!("CARGO_BIN_EXE_vigil")).args(args).output().expect("vigil runs")
}

fn pct(ok: &Value, n: &Value) -> Option<f64> {
    let (ok, n) = (ok.as_f64()?, n.as_f64()?);
    (n > 0.0).then(|| 100.0 * ok / n)
}

fn fmt_pct(p: Option<f64>) -> String {
    p.map_or_else(|| "–".to_owned(), |p| format!("{p:.2} %"))
}

/// Loads one filter with an empty log: `Ok(backtracking notes)` or `Err(reason)`.
fn load(filter: &Path, empty_log: &Path) -> Result<Vec<String>, String> {
    let out = vigil(&["filter-test", &empty_log.to_string_lossy(), &filter.to_string_lossy()]);
    if !out.status.success() {
        let err = text(&out.stderr);
        let first = err.lines().next().unwrap_or("").trim();
        let spec = filter.to_string_lossy().into_owned();
        let reason = first.split_once(&format!("{spec}: ")).map_or(first, |(_, r)| r);
        let dir = format!("{}/", filter.parent().unwrap().to_string_lossy());
        return Err(reason.replace(&dir, ""));
    }
    let stdout = text(&out.stdout);
    Ok(stdout
        .lines()
        .skip_while(|l| !l.starts_with("Backtracking engine"))
        .skip(1)
        .take_while(|l| l.starts_with("|-"))
        .map(|l| l.trim_start_matches("|- ").to_owned())
        .collect())
}

#[test]
fn fail2ban_samples_agree_and_the_compat_page_is_current() {
    let dir = conformance();
    assert!(dir.join("score.py").is_file(), "conformance data missing at {}", dir.display());
    let tmp = tempfile::tempdir().unwrap();
    let json_out = tmp.path().join("score.json");
    let out = command("python3")
        .arg(dir.join("score.py"))
        .args(["--vigil", env!("CARGO_BIN_EXE_vigil"), "--filters"])
        .arg(dir.join("filter.d"))
        .arg("--logs")
        .arg(dir.join("logs"))
        .arg("--json-out")
        .arg(&json_out)
        .output()
        .expect("python3 runs the scorer");
    assert!(out.status.success(), "scorer failed:\n{}\n{}", text(&out.stdout), text(&out.stderr));
    let score: Value = serde_json::from_slice(&std::fs::read(&json_out).unwrap()).unwrap();
    let t = &score["totals"];
    let match_pct = pct(&t["match_ok"], &t["checks"]).unwrap();
    let host_pct = pct(&t["host_ok"], &t["host_n"]).unwrap();
    let time_pct = pct(&t["time_ok"], &t["time_n"]).unwrap();
    let report = text(&out.stdout);
    assert!(match_pct >= 95.0, "match agreement {match_pct:.2} % < 95 %\n{report}");
    assert!(host_pct >= 95.0, "host agreement {host_pct:.2} % < 95 %\n{report}");
    assert!(time_pct >= 95.0, "time agreement {time_pct:.2} % < 95 %\n{report}");
    let samples = score["samples"].as_array().unwrap();
    let sshd = samples.iter().find(|s| s["name"] == "sshd").expect("sshd scored");
    assert_eq!(sshd["errors"].as_array().map(Vec::len), Some(0), "{report}");
    for (ok, n) in [("match_ok", "checks"), ("host_ok", "host_n"), ("time_ok", "time_n")] {
        assert_eq!(sshd[ok], sshd[n], "sshd {ok} must be 100 %\n{report}");
    }

    // Every filter file, loaded once.
    let empty = tmp.path().join("empty.log");
    std::fs::write(&empty, "").unwrap();
    let mut filters: Vec<PathBuf> = std::fs::read_dir(dir.join("filter.d"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "conf"))
        .collect();
    filters.sort();
    let mut loaded = Vec::new();
    let mut failed = Vec::new();
    for f in &filters {
        let name = f.file_stem().unwrap().to_string_lossy().into_owned();
        match load(f, &empty) {
            Ok(notes) => loaded.push((name, notes)),
            Err(reason) => failed.push((name, reason)),
        }
    }

    let page = render(&score, samples, &loaded, &failed, (match_pct, host_pct, time_pct));
    let path = root().join("docs/fail2ban-compat.md");
    if std::env::var_os("VIGIL_BLESS").is_some() {
        std::fs::write(&path, &page).unwrap();
    }
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        current == page,
        "docs/fail2ban-compat.md is stale: run VIGIL_BLESS=1 cargo test -p vigil-cli --test \
         filter_test\n--- expected ---\n{page}"
    );
}

fn render(
    score: &Value,
    samples: &[Value],
    loaded: &[(String, Vec<String>)],
    failed: &[(String, String)],
    (match_pct, host_pct, time_pct): (f64, f64, f64),
) -> String {
    let t = &score["totals"];
    let mut s = String::new();
    s.push_str(
        "# fail2ban filter compatibility\n\n\
         Vigil runs fail2ban filter files unchanged (`vigil filter-test LOG FILTER`, crate \
         `vigil-f2b`). This page is generated from fail2ban 1.0.2's own annotated sample logs \
         (`../shared/conformance/fail2ban/`, see its README for the `failJSON` semantics) by the \
         test `crates/cli/tests/filter_test.rs`, which runs the conformance scorer on the built \
         binary and loads every filter; it fails when this page is stale. Regenerate with:\n\n\
         ```sh\nVIGIL_BLESS=1 cargo test -p vigil-cli --test filter_test\n```\n\n\
         The scorer alone (prints mismatches):\n\n\
         ```sh\ncargo build --release -p vigil-cli\n\
         python3 ../shared/conformance/fail2ban/score.py --vigil target/release/vigil \\\n  \
         --filters ../shared/conformance/fail2ban/filter.d --logs ../shared/conformance/fail2ban/logs\n```\n\n",
    );
    s.push_str(&format!(
        "## Totals\n\n| checks | match | host | time |\n|---|---|---|---|\n| {} | {:.2} % ({}/{}) | \
         {:.2} % ({}/{}) | {:.2} % ({}/{}) |\n\n",
        t["checks"], match_pct, t["match_ok"], t["checks"], host_pct, t["host_ok"], t["host_n"],
        time_pct, t["time_ok"], t["time_n"],
    ));
    s.push_str(
        "A check is one annotated line under one filter-option set; *match* compares whether a \
         failure is reported, *host* the failure ID and *time* the instant (only where the \
         annotation gives them). Test clock: 2005-08-14T12:00:00+02:00, zone Europe/Zurich.\n\n",
    );
    s.push_str(
        "## Per filter\n\n| sample | checks | match | host | time | option sets | errors |\n",
    );
    s.push_str("|---|---|---|---|---|---|---|\n");
    for r in samples {
        let errors = r["errors"].as_array().map_or(0, Vec::len);
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            r["name"].as_str().unwrap_or(""),
            r["checks"],
            fmt_pct(pct(&r["match_ok"], &r["checks"])),
            fmt_pct(pct(&r["host_ok"], &r["host_n"])),
            fmt_pct(pct(&r["time_ok"], &r["time_n"])),
            r["runs"],
            errors,
        ));
    }
    s.push_str("\n## Filters that fail to load\n\n");
    if failed.is_empty() {
        s.push_str(&format!(
            "None: all {} `.conf` files in `filter.d` load (including the include-only files \
             such as `common.conf`, which define no failregex).\n",
            loaded.len()
        ));
    } else {
        s.push_str(&format!(
            "{} of {} `.conf` files load. Those that do not are include-only files, meant to be \
             read from another filter that defines what they reference; fail2ban refuses them \
             alone for the same reason.\n\n",
            loaded.len(),
            loaded.len() + failed.len()
        ));
        s.push_str("| filter | reason |\n|---|---|\n");
        for (name, reason) in failed {
            s.push_str(&format!("| {name} | {} |\n", reason.replace('|', "\\|")));
        }
    }
    s.push_str(
        "\n## Regexes on the backtracking engine\n\n\
         Python patterns are translated to the `regex` crate (linear time). A pattern that needs \
         look-around, back-references, conditionals `(?(name)…)`, atomic groups or possessive \
         quantifiers runs on `fancy-regex` with a backtrack limit of 1,000,000 steps per search \
         (a search over the limit counts as no match). fail2ban's own `<HOST>` pattern contains a \
         look-behind that always holds; Vigil writes it without one, so `<HOST>` alone never \
         needs backtracking. Conditionals on a group set by an optional group or by branches of \
         an alternation, and `(?:(?!literal).)*` loops followed by the end of the line (or, lazy, \
         by that literal) have exact linear-time forms, which Vigil uses (sshd's `Failed …` \
         failregexes). `vigil filter-test` lists the remaining regexes in its summary.\n\n\
         | filter | regexes (option #index: features) |\n|---|---|\n",
    );
    for (name, notes) in loaded {
        if !notes.is_empty() {
            s.push_str(&format!("| {name} | {} |\n", notes.join("; ")));
        }
    }
    s.push_str(
        "\n## Known differences\n\n\
         - `usedns` follows fail2ban's modes: `yes` and `warn` resolve a host name matched by \
           `<HOST>` or `<DNS>` (one failure per address; `warn` also warns), `no` writes `<HOST>` \
           as `<ADDR>` and drops names, `raw` reports names as captured. It is read from the \
           filter (`[Definition]` or `name.conf[usedns=…]`, as fail2ban's server does; \
           fail2ban-regex ignores it there) and `vigil filter-test --usedns` overrides it like a \
           jail's setting. Vigil's default is `raw`, where fail2ban's jail default is `warn`: \
           without a setting no name is ever looked up (what fail2ban's sample tests and \
           `fail2ban-regex --raw` do, and what the scores above use). Lookups use the system \
           resolver with a 3 s timeout, at most 4 at once, and keep up to 1,000 answers for 5 \
           minutes (fail2ban's cache size and lifetime); only names of ASCII letters, digits, \
           `-`, `_` and `.` are looked up.\n\
         - `logtimezone` (fail2ban's jail option, fail2ban-regex's `--timezone`) is \
           `vigil filter-test --logtimezone ZONE` with fail2ban's syntax (`UTC`, `UTC+0200`, \
           `GMT-04`, `-04:00`, zone abbreviations of its table; fixed offsets only): timestamps \
           without a zone are read at that offset instead of `--tz`, which still dates \"now\" and \
           the output. As in fail2ban 1.0.2 it is not a filter setting: \
           `name.conf[logtimezone=…]` is accepted and has no effect.\n\
         - Inline flags: `(?a)` (ASCII `\\w`, `\\d`, `\\s`, `\\b` and their negations, and with \
           `i` ASCII-only case folding) and `(?x)` (verbose) are implemented by the translation, \
           scoped `(?a:…)` too; `(?L)` is refused as Python refuses it for text patterns; global \
           flags after the start of a pattern are refused as Python 3.11 (Debian 12's fail2ban \
           1.0.2) refuses them, after fail2ban's own rewrite of `((?i)…)` and `(?:(?i)…)` into \
           `(?i:…)`. Remaining: without `(?a)`, `\\w` is Unicode's word class in Rust (letters, marks, \
           decimal digits, connector punctuation) and `str.isalnum` plus `_` in Python (letters \
           and every numeric): they differ on combining marks, digits such as `²` and \
           connectors such as `‿`, and so does `\\b`. `\\s` is written with Python's extra \
           U+001C–U+001F.\n\
         - A tuple failure ID (`<F-TUPLE_…>` groups) is printed as Python prints the tuple, \
           `('192.0.2.1', 'left')`; the escapes of unprintable characters follow `str.isprintable` \
           for controls, separators and the common format characters.\n\
         - The date detector keeps fail2ban's template order, line-start preference and template \
           promotion, but searches a whole line where fail2ban narrows a repeated template's \
           search to the previous match position.\n\
         - Zone abbreviations in `%Z`/`%z` use fail2ban's fixed table; zone-less timestamps use \
           `--logtimezone` when given, else `--tz` (an IANA zone, with daylight saving time).\n",
    );
    s
}

#[test]
fn json_output_has_one_object_per_line_and_exit_codes_follow_the_contract() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("auth.log");
    std::fs::write(
        &log,
        "# a comment\n\
         Aug 14 11:58:59 host sshd[1]: Failed password for root from 192.0.2.7 port 22 ssh2\n\
         \n\
         Aug 14 11:59:00 host sshd[2]: Accepted password for bob from 192.0.2.8 port 22 ssh2\n",
    )
    .unwrap();
    let sshd = conformance().join("filter.d/sshd.conf");
    let now = "2005-08-14T12:00:00+02:00";
    let out = vigil(&[
        "filter-test",
        &log.to_string_lossy(),
        &sshd.to_string_lossy(),
        "--json",
        "--tz",
        "Europe/Zurich",
        "--now",
        now,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let lines: Vec<Value> =
        text(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[0]["line"], 1);
    assert_eq!(lines[0]["matched"], false);
    assert_eq!(lines[1]["matched"], true);
    assert_eq!(lines[1]["host"], "192.0.2.7");
    assert_eq!(lines[1]["time"], "2005-08-14T11:58:59+02:00");
    assert_eq!(lines[3]["matched"], false);
    assert_eq!(lines[3]["host"], Value::Null);

    // A bare regex with fail2ban tags and the default date detection.
    let out = vigil(&["filter-test", &log.to_string_lossy(), r"Failed \S+ for \S+ from <HOST>"]);
    assert_eq!(out.status.code(), Some(0));
    let summary = text(&out.stdout);
    assert!(summary.contains("Lines: 4 lines, 0 ignored, 1 matched, 3 missed"), "{summary}");

    // Options select the mode; a broken option list or a missing filter is a usage error.
    let spec = format!("{}[mode=aggressive]", sshd.to_string_lossy());
    let out = vigil(&["filter-test", &log.to_string_lossy(), &spec, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = vigil(&["filter-test", &log.to_string_lossy(), "/nonexistent/sshd.conf"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("not found"));
    let out = vigil(&["filter-test", &log.to_string_lossy(), "x(<HOST>"]);
    assert_eq!(out.status.code(), Some(2), "an uncompilable regex fails to load");
    let out = vigil(&["filter-test", &log.to_string_lossy(), "<HOST>", "--tz", "Mars/Olympus"]);
    assert_eq!(out.status.code(), Some(2));

    // A filter whose interpolation fails does not load.
    let bad = tmp.path().join("bad.conf");
    std::fs::write(&bad, "[Definition]\nfailregex = %(missing)s <HOST>\n").unwrap();
    let out = vigil(&["filter-test", &log.to_string_lossy(), &bad.to_string_lossy()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("missing"), "{}", text(&out.stderr));

    // Invalid UTF-8 is read lossily, reported, and makes the run exit 1.
    let raw = tmp.path().join("raw.log");
    std::fs::write(&raw, b"Aug 14 11:58:59 x: from 192.0.2.9 \xff\n").unwrap();
    let out = vigil(&["filter-test", &raw.to_string_lossy(), "from <HOST>", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_str(text(&out.stdout).trim()).unwrap();
    assert_eq!(v["host"], "192.0.2.9");
}

#[test]
fn long_logs_keep_line_order_and_multi_line_state_across_threads() {
    // More lines than one unit of parallel work (256 KiB), and failures that need an
    // earlier line: `Disconnecting: Too many authentication failures` has no address; fail2ban
    // takes it from the `Connection from` line of the same session (`<F-MLFID>`, the pid).
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("auth.log");
    let mut text_in = String::new();
    let n = 9_000;
    for i in 0..n {
        let session = i / 3;
        let line = match i % 3 {
            0 => format!(
                "Connection from 10.0.{}.{} port 22 on 192.0.2.1 port 22",
                session / 250,
                session % 250
            ),
            1 => "Disconnecting: Too many authentication failures for root [preauth]".to_owned(),
            _ => "pam_unix(sshd:session): session closed for user bob".to_owned(),
        };
        let (m, s) = (i / 60 % 60, i % 60);
        text_in.push_str(&format!("Aug 14 11:{m:02}:{s:02} host sshd[{session}]: {line}\n"));
    }
    std::fs::write(&log, text_in).unwrap();
    let sshd = conformance().join("filter.d/sshd.conf");
    let out = vigil(&[
        "filter-test",
        &log.to_string_lossy(),
        &sshd.to_string_lossy(),
        "--json",
        "--tz",
        "UTC",
        "--now",
        "2005-08-14T12:00:00Z",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let lines: Vec<Value> =
        text(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), n);
    for (i, v) in lines.iter().enumerate() {
        assert_eq!(v["line"], i + 1);
        let session = i / 3;
        let expected = (i % 3 == 1).then(|| format!("10.0.{}.{}", session / 250, session % 250));
        assert_eq!(v["matched"], expected.is_some(), "line {}", i + 1);
        assert_eq!(v["host"].as_str().map(str::to_owned), expected, "line {}", i + 1);
    }
}
