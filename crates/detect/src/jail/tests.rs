//! Jail semantics against fail2ban's documented behaviour, on real parsed lines with event-time
//! ("paused") clocks: the window's edges, the reset after a ban, "already banned", increments,
//! ignoreip, saved state across a restart, and the memory bounds.

use std::time::Duration;

use proptest::prelude::*;
use vigil_core::{Detector, DetectorContext};
use vigil_event::{Ban, BanStage, Event, Payload};
use vigil_parse::{Clock, Format, Parser};

use super::*;
use crate::Observation;

fn parser() -> Box<dyn Parser> {
    Format::Auto.parser(Clock::utc_at("2026-11-23T12:00:00Z".parse().unwrap()))
}

/// An auth.log line: a failed password from `ip` at `secs` seconds after 2026-11-01T00:00:00Z.
fn failed(ip: &str, secs: u32) -> String {
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    format!(
        "Nov  1 {h:02}:{m:02}:{s:02} web1 sshd[77]: Failed password for root from {ip} port 4242 ssh2"
    )
}

fn jail(config: JailConfig) -> JailSet {
    #![allow(clippy::needless_pass_by_value)] // Tests build configurations inline.
    JailSet::new(vec![config.build("sshd").unwrap().unwrap()])
}

/// Feeds lines; returns the ban requests as `(ip, seconds after the start, bantime)`.
fn feed(set: &mut JailSet, lines: &[String]) -> Vec<(String, i64, i64)> {
    let parser = parser();
    let mut out = Vec::new();
    for line in lines {
        let parsed = parser.parse(line).expect("a parsable line");
        set.observe(&Observation::from_parsed(&parsed, line, 0), &mut out);
    }
    let start = "2026-11-01T00:00:00Z".parse::<chrono::DateTime<chrono::Utc>>().unwrap();
    out.iter()
        .map(|b: &Ban| (b.ip.clone(), (b.at - start).num_seconds(), b.bantime_seconds))
        .collect()
}

#[test]
fn maxretry_failures_within_findtime_ask_for_a_ban_at_the_crossing_line() {
    let mut set = jail(JailConfig::default());
    // Five failures spanning exactly 600 s: both ends are inside the window.
    let lines: Vec<String> = [0, 100, 200, 300, 600].map(|t| failed("203.0.113.9", t)).into();
    assert_eq!(feed(&mut set, &lines), vec![("203.0.113.9".into(), 600, 600)]);
    // 601 s apart: the first has left the window, no ban.
    let mut set = jail(JailConfig::default());
    let lines: Vec<String> = [0, 100, 200, 300, 601].map(|t| failed("203.0.113.9", t)).into();
    assert_eq!(feed(&mut set, &lines), vec![]);
    assert_eq!(set.jails()[0].stats().failures, 5);
}

#[test]
fn counting_restarts_after_a_ban_and_crossings_while_banned_ask_nothing() {
    let mut set = jail(JailConfig::default());
    // Ban at 4; five more by 9 (still banned until 604): already banned; five more by 700
    // (window restarted after the crossing at 9): banned again at 700.
    let times = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 650, 660, 670, 680, 700];
    let lines: Vec<String> = times.iter().map(|t| failed("198.51.100.7", *t)).collect();
    let bans = feed(&mut set, &lines);
    assert_eq!(bans, vec![("198.51.100.7".into(), 4, 600), ("198.51.100.7".into(), 700, 600)]);
    assert_eq!(set.jails()[0].stats().already_banned, 1);
}

#[test]
fn repeat_offenders_get_doubled_bans_up_to_maxtime() {
    let config = JailConfig {
        maxretry: 1,
        bantime_increment: BantimeIncrement {
            enabled: true,
            factor: 1.0,
            maxtime: Duration::from_secs(3000),
            ..BantimeIncrement::default()
        },
        ..JailConfig::default()
    };
    let mut set = jail(config);
    let lines: Vec<String> = [0, 1000, 3000, 10_000].map(|t| failed("192.0.2.1", t)).into();
    let bans = feed(&mut set, &lines);
    let times: Vec<i64> = bans.iter().map(|it| it.2).collect();
    assert_eq!(times, vec![600, 1200, 2400, 3000]);
}

#[test]
fn a_factor_below_one_never_shortens_a_ban_below_bantime() {
    // fail2ban's formula is `max(ban.Time, ban.Time × 2^count × factor)`.
    let increment = BantimeIncrement { enabled: true, factor: 0.25, ..BantimeIncrement::default() };
    let mut set =
        jail(JailConfig { maxretry: 1, bantime_increment: increment, ..JailConfig::default() });
    let lines: Vec<String> = [0, 600, 1200, 2400].map(|t| failed("192.0.2.1", t)).into();
    let times: Vec<i64> = feed(&mut set, &lines).iter().map(|it| it.2).collect();
    assert_eq!(times, vec![600, 600, 600, 1200]);
}

fn multiplied(multipliers: &[u32], factor: f64, maxtime: u64, times: &[u32]) -> Vec<i64> {
    let increment = BantimeIncrement {
        enabled: true,
        factor,
        maxtime: Duration::from_secs(maxtime),
        multipliers: multipliers.iter().map(|it| std::num::NonZeroU32::new(*it).unwrap()).collect(),
        ..BantimeIncrement::default()
    };
    let mut set =
        jail(JailConfig { maxretry: 1, bantime_increment: increment, ..JailConfig::default() });
    let lines: Vec<String> = times.iter().map(|t| failed("198.51.100.20", *t)).collect();
    feed(&mut set, &lines).iter().map(|it| it.2).collect()
}

#[test]
fn bantime_multipliers_follow_fail2bans_documented_example() {
    // jail.conf: "bantime.multipliers = 1 2 4 8 16 32 64 … if last ban count greater as
    // multipliers count, always used last multiplier (64 in example), for factor '1' and
    // original ban time 600 - 10.6 hours". Each failure comes as the previous ban ends.
    let times = [0, 600, 1800, 4200, 9000, 18_600, 37_800, 76_200];
    let bans = multiplied(&[1, 2, 4, 8, 16, 32, 64], 1.0, 7 * 86_400, &times);
    assert_eq!(bans, vec![600, 1200, 2400, 4800, 9600, 19_200, 38_400, 38_400]);
    // A failure one second before the end of a ban is "already banned".
    assert_eq!(multiplied(&[1, 2], 1.0, 86_400, &[0, 599, 600]), vec![600, 1200]);
}

#[test]
fn bantime_multipliers_use_the_factor_cap_at_maxtime_and_leave_the_first_ban_alone() {
    // fail2ban applies the formula from the second ban (`if banCount > 0`): the first ban is
    // `bantime` whatever the first multiplier; then bantime × factor × multiplier, at most
    // maxtime.
    let bans = multiplied(&[5, 2, 4], 2.0, 3000, &[0, 600, 3000, 6000]);
    assert_eq!(bans, vec![600, 2400, 3000, 3000]);
    // Increments off: multipliers are ignored, like fail2ban without bantime.increment.
    let increment = BantimeIncrement {
        multipliers: vec![std::num::NonZeroU32::new(10).unwrap()],
        ..BantimeIncrement::default()
    };
    let mut set =
        jail(JailConfig { maxretry: 1, bantime_increment: increment, ..JailConfig::default() });
    let lines: Vec<String> = [0, 600].map(|t| failed("192.0.2.1", t)).into();
    assert_eq!(feed(&mut set, &lines).iter().map(|it| it.2).collect::<Vec<_>>(), vec![600, 600]);
}

#[test]
fn a_negative_bantime_bans_for_good_without_increments() {
    let increment = BantimeIncrement { enabled: true, ..BantimeIncrement::default() };
    let config = JailConfig {
        bantime: Bantime::Permanent,
        bantime_increment: increment,
        ..JailConfig::default()
    };
    let mut set = jail(config);
    // Banned at 4 for good; later crossings, even days later, ask for nothing.
    let times = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 80_000, 80_001, 80_002, 80_003, 80_004];
    let lines: Vec<String> = times.iter().map(|t| failed("203.0.113.50", *t)).collect();
    assert_eq!(feed(&mut set, &lines), vec![("203.0.113.50".into(), 4, -1)]);
    assert_eq!(set.jails()[0].stats().already_banned, 2);
    // The permanent ban survives a restart of the jail.
    let saved = set.save();
    let mut again = jail(JailConfig { bantime: Bantime::Permanent, ..JailConfig::default() });
    again.restore(&saved).unwrap();
    let later: Vec<String> = (0..5).map(|i| failed("203.0.113.50", 86_000 + i)).collect();
    assert_eq!(feed(&mut again, &later), vec![]);
}

#[test]
fn bantime_and_multipliers_are_read_like_fail2bans_and_bad_values_rejected() {
    let jails: JailsConfig = toml::from_str(
        "[a]\nbantime = -1\n[b]\nbantime = \"-1\"\n[c]\nbantime = \"2h\"\n\
         [c.bantime_increment]\nenabled = true\nmultipliers = [1, 5, 30]\n",
    )
    .unwrap();
    assert_eq!(jails.0["a"].bantime, Bantime::Permanent);
    assert_eq!(jails.0["b"].bantime, Bantime::Permanent);
    assert_eq!(jails.0["c"].bantime, Bantime::For(Duration::from_secs(7200)));
    let multipliers: Vec<u32> =
        jails.0["c"].bantime_increment.multipliers.iter().map(|it| it.get()).collect();
    assert_eq!(multipliers, [1, 5, 30]);
    // Written back as read: -1 and the duration text.
    let text = toml::to_string(&jails).unwrap();
    assert!(text.contains("bantime = -1"), "{text}");
    assert!(text.contains("multipliers = [1, 5, 30]"), "{text}");
    let back: JailsConfig = toml::from_str(&text).unwrap();
    assert_eq!(back, jails);
    for (bad, says) in [
        ("bantime = \"-5m\"", "invalid duration"),
        ("bantime = 600", "invalid bantime 600"),
        ("bantime = \"soon\"", "invalid duration"),
        ("bantime_increment = { multipliers = [1, 0] }", "nonzero"),
        ("bantime_increment = { multipliers = [-2] }", "invalid value"),
        ("bantime_increment = { multiplier = [2] }", "unknown field"),
    ] {
        let err = toml::from_str::<JailsConfig>(&format!("[sshd]\n{bad}\n")).unwrap_err();
        assert!(err.to_string().contains(says), "{bad}: {err}");
    }
}

#[test]
fn evidence_holds_the_counted_lines_the_rule_and_the_window() {
    let mut set = jail(JailConfig { maxretry: 3, ..JailConfig::default() });
    let lines: Vec<String> = [10, 20, 30, 40].map(|t| failed("2001:db8::5", t)).into();
    let parser = parser();
    let mut out = Vec::new();
    for line in &lines {
        let parsed = parser.parse(line).unwrap();
        set.observe(&Observation::from_parsed(&parsed, line, 0), &mut out);
    }
    assert_eq!(out.len(), 1);
    let ban = &out[0];
    assert_eq!(ban.stage, BanStage::Requested);
    assert_eq!((ban.ip.as_str(), ban.jail.as_str(), ban.failures), ("2001:db8::5", "sshd", 3));
    assert_eq!(ban.evidence.lines, lines[..3].to_vec());
    assert_eq!(ban.evidence.count, 3);
    assert_eq!(ban.evidence.window_seconds, 600);
    assert_eq!(ban.evidence.rule, "jail sshd: 3 failures within findtime 600s (filter sshd)");
    assert_eq!(ban.evidence.first_seen.unwrap().to_rfc3339(), "2026-11-01T00:00:10+00:00");
    assert_eq!(ban.evidence.last_seen, Some(ban.at));
}

#[test]
fn only_the_filters_failures_count() {
    let mut set = jail(JailConfig { maxretry: 2, ..JailConfig::default() });
    let ip = "203.0.113.50";
    let lines = vec![
        format!(
            "Nov  1 00:00:01 web1 sshd[9]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost={ip}  user=root"
        ),
        format!(
            "Nov  1 00:00:02 web1 sshd[9]: Received disconnect from {ip} port 4242:11: Bye Bye [preauth]"
        ),
        format!(
            "Nov  1 00:00:03 web1 sshd[9]: Connection closed by authenticating user root {ip} port 4242 [preauth]"
        ),
        format!(
            "Nov  1 00:00:04 web1 sshd[9]: Disconnecting authenticating user root {ip} port 4242: Too many authentication failures [preauth]"
        ),
        format!(
            "Nov  1 00:00:05 web1 sshd[9]: Accepted publickey for root from {ip} port 4242 ssh2: ED25519 SHA256:x"
        ),
    ];
    assert_eq!(feed(&mut set, &lines), vec![]);
    let mut aggressive =
        jail(JailConfig { maxretry: 2, filter: "sshd-aggressive".into(), ..JailConfig::default() });
    let more = vec![lines[2].clone(), lines[2].replace("00:00:03", "00:00:06")];
    assert_eq!(feed(&mut aggressive, &more), vec![(ip.into(), 6, 600)]);
}

#[test]
fn unknown_filters_and_bad_settings_are_configuration_errors() {
    let err = JailConfig { filter: "ssh".into(), ..JailConfig::default() }.build("x").unwrap_err();
    assert!(err.to_string().starts_with("jail x: unknown filter \"ssh\""), "{err}");
    let err = JailConfig { maxretry: 0, ..JailConfig::default() }.build("x").unwrap_err();
    assert_eq!(err.to_string(), "jail x: maxretry must be at least 1");
    let err = JailConfig { ignoreip: vec!["localhost".into()], ..JailConfig::default() }
        .build("x")
        .unwrap_err();
    assert!(err.to_string().contains("invalid address or prefix \"localhost\""), "{err}");
    let missing =
        JailConfig { filter_file: Some("/nonexistent/sshd.conf".into()), ..JailConfig::default() };
    assert!(missing.build("x").unwrap_err().to_string().contains("/nonexistent/sshd.conf"));
    assert!(JailConfig { enabled: false, ..JailConfig::default() }.build("x").unwrap().is_none());
}

#[test]
fn a_fail2ban_filter_file_gives_the_same_bans_as_the_builtin_set() {
    let file = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/conformance/fail2ban/filter.d/sshd.conf"
    );
    if !std::path::Path::new(file).is_file() {
        // The shared conformance files sit beside the repository in development and CI.
        panic!("missing {file}");
    }
    let mut from_file =
        jail(JailConfig { filter_file: Some(file.into()), ..JailConfig::default() });
    let mut builtin = jail(JailConfig::default());
    let mut lines: Vec<String> = (0..12).map(|t| failed("203.0.113.77", t * 20)).collect();
    lines.push("Nov  1 00:05:00 web1 sshd[9]: Invalid user admin from 198.51.100.1 port 22".into());
    assert_eq!(feed(&mut from_file, &lines), feed(&mut builtin, &lines));
    assert_eq!(from_file.jails()[0].stats().failures, 13);
}

#[test]
fn a_restart_in_the_middle_of_a_window_keeps_counting() {
    let lines: Vec<String> = [0, 10, 20, 30, 40].map(|t| failed("203.0.113.9", t)).into();
    let mut before = JailsDetector::new(jail(JailConfig::default()));
    let mut ctx = DetectorContext::new("web1", "jails");
    let parser = parser();
    let event =
        |line: &str| Event::new("web1", "auth", Payload::Log(parser.parse_line(line).unwrap()));
    for line in &lines[..3] {
        before.handle(&event(line), &mut ctx).unwrap();
    }
    let saved = serde_json::to_string(&before.save_state().unwrap()).unwrap();
    drop(before);
    let mut after = JailsDetector::new(jail(JailConfig::default()));
    after.restore_state(serde_json::from_str(&saved).unwrap()).unwrap();
    for line in &lines[3..] {
        after.handle(&event(line), &mut ctx).unwrap();
    }
    let out = ctx.take();
    assert_eq!(out.len(), 1, "the fifth failure after the restart crosses the threshold");
    let Payload::Ban(ban) = &out[0].payload else { panic!("not a ban: {:?}", out[0]) };
    assert_eq!((ban.ip.as_str(), ban.failures, ban.evidence.lines.len()), ("203.0.113.9", 5, 5));
    assert_eq!(&*out[0].source, "jails");
    assert!(after.restore_state(serde_json::json!({"version": 9})).is_err());
}

#[test]
fn memory_stays_bounded_and_evictions_are_counted() {
    let mut set = jail(JailConfig { max_tracked: 100, ..JailConfig::default() });
    let lines: Vec<String> = (0..1000u32)
        .map(|i| failed(&format!("10.{}.{}.1", i / 250, i % 250), 1000 + i % 10))
        .collect();
    feed(&mut set, &lines);
    let jail = &set.jails()[0];
    assert!(jail.tracked() <= 100, "{}", jail.tracked());
    assert!(jail.stats().evicted_failures >= 900, "{:?}", jail.stats());
}

proptest! {
    /// Addresses in `ignoreip` (by default loopback) are never banned, whatever the failures.
    #[test]
    fn ignored_addresses_are_never_banned(
        last in 0u8..=255,
        v6 in any::<bool>(),
        extra in 0u16..=255,
        times in proptest::collection::vec(0u32..3000, 1..40),
    ) {
        let config = JailConfig {
            maxretry: 1,
            ignoreip: vec!["127.0.0.1/8".into(), "::1".into(), "192.0.2.0/24".into()],
            ..JailConfig::default()
        };
        let mut set = jail(config);
        let ip = match (v6, extra % 3) {
            (true, _) => "::1".to_owned(),
            (false, 0) => format!("127.{}.{}.{last}", extra % 256, last),
            (false, 1) => format!("192.0.2.{last}"),
            (false, _) => format!("::ffff:192.0.2.{last}"),
        };
        let mut sorted = times.clone();
        sorted.sort_unstable();
        let lines: Vec<String> = sorted.iter().map(|t| failed(&ip, *t)).collect();
        prop_assert_eq!(feed(&mut set, &lines), vec![]);
        prop_assert_eq!(set.jails()[0].stats().ignored, lines.len() as u64);
    }
}

#[test]
fn the_toml_shape_with_durations_and_the_default_sshd_jail() {
    let text = r#"
        [web]
        filter = "nginx-http-auth"
        maxretry = 3
        findtime = "1h"
        bantime = "1d"
        ignoreip = ["10.0.0.0/8"]
        bantime_increment = { enabled = true, factor = 2.0, maxtime = "4w" }
    "#;
    let jails: JailsConfig = toml::from_str(text).unwrap();
    let web = &jails.0["web"];
    let bantime = web.bantime.duration().map(|it| it.as_secs());
    assert_eq!((web.maxretry, web.findtime.as_secs(), bantime), (3, 3600, Some(86_400)));
    assert_eq!(web.bantime_increment.maxtime.as_secs(), 28 * 86_400);
    // Declaring another jail keeps fail2ban's default sshd jail.
    let effective = jails.effective();
    assert_eq!(effective.keys().collect::<Vec<_>>(), ["sshd", "web"]);
    assert_eq!(effective["sshd"], JailConfig::default());
    let err = toml::from_str::<JailsConfig>("[sshd]\nmax_retry = 3\n").unwrap_err();
    assert!(err.to_string().contains("unknown field `max_retry`"), "{err}");
    let err = toml::from_str::<JailsConfig>("[sshd]\nfindtime = \"10 parsecs\"\n").unwrap_err();
    assert!(err.to_string().contains("invalid duration"), "{err}");
    assert_eq!(JailSet::build(&effective).unwrap().jails().len(), 2);
}

#[test]
fn restored_state_is_cut_to_the_configured_bounds() {
    let mut big = jail(JailConfig { max_tracked: 1000, ..JailConfig::default() });
    let lines: Vec<String> = (0..50u32).map(|i| failed(&format!("192.0.2.{i}"), i)).collect();
    feed(&mut big, &lines);
    let saved = big.save();
    let mut small = jail(JailConfig { max_tracked: 10, ..JailConfig::default() });
    small.restore(&saved).unwrap();
    assert_eq!(small.jails()[0].tracked(), 10);
    assert!(
        small
            .restore(&serde_json::json!({"version": 1, "jails": {"sshd": {"failures": 3}}}))
            .is_err()
    );
}
