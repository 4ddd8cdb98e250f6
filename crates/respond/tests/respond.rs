//! The ban manager's behaviour and its actions against the real programs: nftables and ipset
//! inside a network namespace each test creates (root only; skipped loudly otherwise), and the
//! exec action with a real program.

use std::{
    net::IpAddr,
    path::Path,
    process::{Command, Output},
    time::{Duration, Instant},
};

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use proptest::prelude::*;
use serde_json::Value;
use vigil_core::{Detector, DetectorContext};
use vigil_event::{Ban, BanStage, Event, Payload};
use vigil_respond::{
    Action, BanDetector, BanManager, BanState, BansConfig, Change, Control, Entry, ExecAction,
    ExecConfig, Guard, IpNet, IpsetAction, IpsetConfig, NftablesAction, NftablesConfig,
};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap()
}

fn secs(n: i64) -> TimeDelta {
    TimeDelta::seconds(n)
}

fn request(ip: &str, at: DateTime<Utc>, bantime: i64) -> Ban {
    Ban { failures: 5, bantime_seconds: bantime, ..Ban::request(ip, "sshd", at) }
}

fn config() -> BansConfig {
    BansConfig { detect_own_addresses: false, ..BansConfig::default() }
}

fn manager(config: &BansConfig) -> BanManager {
    BanManager::new(config, ["192.0.2.1".parse::<IpAddr>().unwrap()]).unwrap()
}

#[test]
fn a_request_is_banned_extended_when_repeated_and_lifted_on_expiry() {
    let mut bans = manager(&config());
    let out = bans.decide(&request("203.0.113.9", t0(), 600), t0());
    assert_eq!(out.events.len(), 1);
    let ban = &out.events[0];
    assert_eq!(ban.stage, BanStage::Banned);
    assert_eq!(ban.until, Some(t0() + secs(600)));
    assert!(ban.dry_run, "dry-run is the default");
    assert!(out.changes.is_empty(), "nothing reaches an action in dry-run");

    // Requested again while banned: one ban, extended to the later end.
    let out = bans.decide(&request("203.0.113.9", t0() + secs(100), 3600), t0() + secs(100));
    assert_eq!(out.events[0].until, Some(t0() + secs(3700)));
    assert_eq!(out.events[0].reason.as_deref(), Some("extended"));
    assert_eq!(bans.active_len(), 1);
    // A shorter request never shortens a ban.
    let out = bans.decide(&request("203.0.113.9", t0() + secs(200), 60), t0() + secs(200));
    assert_eq!(out.events[0].until, Some(t0() + secs(3700)));

    assert!(bans.expire(t0() + secs(3699)).events.is_empty());
    let out = bans.expire(t0() + secs(3700));
    assert_eq!(out.events.len(), 1);
    assert_eq!(out.events[0].stage, BanStage::Unbanned);
    assert_eq!(out.events[0].reason.as_deref(), Some("expired"));
    assert_eq!(bans.active_len(), 0);

    // A recidivist: the history counts the earlier ban; the jail's figure is kept if larger.
    let out = bans.decide(&request("203.0.113.9", t0() + secs(5000), 1200), t0() + secs(5000));
    assert_eq!(out.events[0].previous_bans, 1);
    let counters = bans.counters();
    assert_eq!((counters.banned, counters.extended, counters.expired), (2, 2, 1));

    // Permanent bans (negative bantime) never expire; an operator lifts them.
    bans.decide(&request("2001:db8::7", t0(), -1), t0());
    assert!(bans.expire(t0() + secs(10_000_000)).events.iter().all(|it| it.ip != "2001:db8::7"));
    let out = bans.unban("2001:db8::7", t0()).unwrap();
    assert_eq!(out.events[0].reason.as_deref(), Some("lifted by an operator"));
    assert!(bans.unban("2001:db8::7", t0()).is_err());
}

#[test]
fn protected_addresses_are_refused_with_a_reason() {
    let config = BansConfig {
        ignoreip: vec!["198.51.100.0/24".parse().unwrap()],
        own_addresses: vec!["203.0.113.200".parse().unwrap()],
        enforce: true,
        ..config()
    };
    let mut bans = manager(&config);
    for (ip, reason) in [
        ("127.0.0.1", "loopback"),
        ("::ffff:127.0.0.2", "loopback"),
        ("::1", "loopback"),
        ("192.0.2.1", "the host's own address"),
        ("203.0.113.200", "the host's own address"),
        ("198.51.100.20", "allow-listed (198.51.100.0/24)"),
        ("not-an-ip", "invalid address or prefix: not-an-ip"),
    ] {
        let out = bans.decide(&request(ip, t0(), 600), t0());
        assert_eq!(out.events[0].stage, BanStage::Refused, "{ip}");
        assert_eq!(out.events[0].reason.as_deref(), Some(reason), "{ip}");
        assert!(out.changes.is_empty(), "{ip}");
    }
    let out = bans.decide(&request("::ffff:203.0.113.9", t0(), 600), t0());
    assert_eq!(out.events[0].ip, "203.0.113.9", "mapped IPv4 is normalised");
    assert!(!out.events[0].dry_run);
    assert!(
        matches!(&out.changes[..], [Change::Ban(entry)] if entry.target.to_string() == "203.0.113.9")
    );
}

#[test]
fn several_addresses_of_a_prefix_ban_the_prefix_unless_it_holds_a_protected_one() {
    let mut config = config();
    config.aggregate.threshold = 3;
    config.ignoreip = vec!["198.51.100.77".parse().unwrap()];
    config.enforce = true;
    let mut bans = manager(&config);
    bans.decide(&request("203.0.113.1", t0(), 600), t0());
    bans.decide(&request("203.0.113.2", t0(), 900), t0());
    let out = bans.decide(&request("203.0.113.3", t0(), 300), t0());
    assert_eq!(out.events.len(), 2);
    assert_eq!(out.events[1].ip, "203.0.113.0/24");
    assert_eq!(out.events[1].until, Some(t0() + secs(900)), "the latest end of its members");
    assert_eq!(out.changes.len(), 2);
    assert_eq!(bans.counters().aggregated, 1);
    assert!(bans.get("203.0.113.0/24").is_some_and(|it| it.aggregated));
    // A later member extends the prefix; an earlier one does not.
    let out = bans.decide(&request("203.0.113.4", t0(), 1200), t0());
    assert_eq!(out.events.len(), 2);
    assert_eq!(out.events[1].until, Some(t0() + secs(1200)));
    let out = bans.decide(&request("203.0.113.5", t0(), 60), t0());
    assert_eq!(out.events.len(), 1);
    assert_eq!(bans.counters().aggregated, 1);
    // Unbanning one address lifts the prefix that covers it too, not its other addresses.
    let out = bans.unban("203.0.113.5", t0()).unwrap();
    let lifted: Vec<&str> = out.events.iter().map(|it| it.ip.as_str()).collect();
    assert_eq!(lifted.len(), 2);
    assert!(lifted.contains(&"203.0.113.5") && lifted.contains(&"203.0.113.0/24"), "{lifted:?}");
    assert!(bans.get("203.0.113.4").is_some());

    // IPv6 aggregates per /64.
    for n in 1..=3 {
        bans.decide(&request(&format!("2001:db8:1:2::{n}"), t0(), 600), t0());
    }
    assert!(bans.get("2001:db8:1:2::/64").is_some());

    // The /24 holding an allow-listed address is never banned; its addresses stay banned alone.
    for n in 1..=5 {
        let out = bans.decide(&request(&format!("198.51.100.{n}"), t0(), 600), t0());
        assert_eq!(out.events.len(), 1);
    }
    assert!(bans.get("198.51.100.0/24").is_none());
    // Nor the one holding the host's own address.
    for n in 2..=6 {
        bans.decide(&request(&format!("192.0.2.{n}"), t0(), 600), t0());
    }
    assert!(bans.get("192.0.2.0/24").is_none());
}

#[test]
fn state_survives_a_restart_and_is_restored_in_one_batch() {
    let mut config = config();
    config.enforce = true;
    let mut bans = manager(&config);
    bans.decide(&request("203.0.113.9", t0(), 600), t0());
    bans.decide(&request("2001:db8::9", t0(), -1), t0());
    bans.decide(&request("198.51.100.4", t0(), 60), t0());
    let json = serde_json::to_string(&bans.state().to_value()).unwrap();

    // The operator allow-lists one address before the restart.
    config.ignoreip = vec!["198.51.100.0/24".parse().unwrap()];
    let mut again = manager(&config);
    let value: Value = serde_json::from_str(&json).unwrap();
    let lifted = again.load_state(BanState::from_value(value).unwrap(), t0() + secs(10));
    assert_eq!(lifted.len(), 1);
    assert_eq!(lifted[0].reason.as_deref(), Some("now protected: allow-listed (198.51.100.0/24)"));
    let out = again.restore(t0() + secs(10));
    let stages: Vec<_> = out.events.iter().map(|it| (it.ip.as_str(), it.stage)).collect();
    assert_eq!(stages, [("203.0.113.9", BanStage::Restored), ("2001:db8::9", BanStage::Restored)]);
    match &out.changes[..] {
        [Change::Restore(entries)] => {
            assert_eq!(entries.len(), 2);
            assert_eq!(entries[0].remaining_seconds(t0() + secs(10)), Some(590));
            assert_eq!(entries[1].remaining_seconds(t0()), None);
        }
        other => panic!("{other:?}"),
    }
    // History came along: the next ban of the address counts the earlier one.
    again.unban("203.0.113.9", t0() + secs(20)).unwrap();
    let out = again.decide(&request("203.0.113.9", t0() + secs(30), 600), t0() + secs(30));
    assert_eq!(out.events[0].previous_bans, 1);
    assert!(BanState::from_value(serde_json::json!({"version": 99})).is_err());
    assert!(BanState::from_value(serde_json::json!([1, 2])).is_err());
    // One bad row costs only itself.
    let mut value: Value = serde_json::from_str(&json).unwrap();
    let active = value["active"].as_array_mut().unwrap();
    active.push(serde_json::json!(["203.0.113.77", "sshd", 0, i64::MAX, 1, 1, 0, 0]));
    active.push(serde_json::json!(["not an address", "sshd", 0, null, 1, 1, 0, 0]));
    active.push(serde_json::json!({"ip": "203.0.113.78"}));
    let state = BanState::from_value(value).unwrap();
    assert_eq!((state.active.len(), state.skipped), (3, 3));
}

#[test]
fn the_host_addresses_can_change_while_configured_ones_stay() {
    let config = BansConfig { own_addresses: vec!["203.0.113.1".parse().unwrap()], ..config() };
    let mut bans = manager(&config);
    assert!(bans.set_host_addresses(["198.51.100.9".parse::<IpAddr>().unwrap()]));
    assert!(!bans.set_host_addresses(["198.51.100.9".parse::<IpAddr>().unwrap()]));
    for (ip, stage) in [
        ("198.51.100.9", BanStage::Refused),
        ("203.0.113.1", BanStage::Refused),
        ("192.0.2.1", BanStage::Banned),
    ] {
        assert_eq!(bans.decide(&request(ip, t0(), 60), t0()).events[0].stage, stage, "{ip}");
    }
}

#[test]
fn the_number_of_active_bans_is_bounded() {
    let mut bans = manager(&BansConfig { max_active: 2, ..config() });
    bans.decide(&request("203.0.113.1", t0(), 600), t0());
    bans.decide(&request("203.0.113.2", t0(), 600), t0());
    let out = bans.decide(&request("203.0.113.3", t0(), 600), t0());
    assert_eq!(out.events[0].stage, BanStage::Refused);
    assert_eq!(bans.counters().refused_full, 1);
    assert_eq!(bans.active_len(), 2);
}

/// Any address, in any spelling (plain, IPv4-mapped, with a prefix).
fn any_address() -> impl Strategy<Value = String> {
    let v4 = any::<[u8; 4]>().prop_map(|b| IpAddr::from(b).to_string());
    let mapped = any::<[u8; 4]>().prop_map(|b| format!("::ffff:{}", IpAddr::from(b)));
    let v6 = any::<[u16; 8]>().prop_map(|s| IpAddr::from(s).to_string());
    let special = prop::sample::select(vec![
        "127.0.0.1",
        "127.255.0.3",
        "::1",
        "::ffff:127.0.0.1",
        "0.0.0.0",
        "::",
        "10.1.2.3",
        "10.1.2.4",
        "192.0.2.1",
        "2001:db8::1",
        "10.1.2.0/24",
        "10.0.0.0/8",
        "0.0.0.0/0",
        "::/0",
        "2001:db8::/32",
        "fe80::1",
        "224.0.0.5",
        "255.255.255.255",
    ])
    .prop_map(str::to_owned);
    let prefix = (any::<[u8; 4]>(), 0u8..=32).prop_map(|(b, l)| format!("{}/{l}", IpAddr::from(b)));
    prop_oneof![v4, mapped, v6, special, prefix]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Whatever is requested, in whatever order, with aggregation on: no ban, restore or change
    /// ever covers loopback, an own address or an allow-listed one.
    #[test]
    fn allow_listed_own_and_loopback_addresses_are_never_banned(
        requests in prop::collection::vec(any_address(), 1..40),
        allow in prop::collection::vec(any_address(), 0..4),
        own in prop::collection::vec(any::<[u8; 4]>(), 0..3),
        threshold in 0u32..4,
    ) {
        let allow: Vec<IpNet> = allow.iter().filter_map(|it| it.parse().ok()).collect();
        let own: Vec<IpAddr> = own.into_iter().map(IpAddr::from).collect();
        let mut config = config();
        config.enforce = true;
        config.ignoreip = allow.clone();
        config.aggregate.threshold = threshold;
        let mut bans = BanManager::new(&config, own.clone()).unwrap();
        let mut protected: Vec<IpAddr> = own.clone();
        protected.extend(["127.0.0.1", "127.9.9.9", "::1", "0.0.0.0", "::"].map(|it| it.parse::<IpAddr>().unwrap()));
        protected.extend(allow.iter().map(|it| it.addr()));
        let covers = |net: &IpNet| {
            protected.iter().any(|ip| net.contains(*ip)) || allow.iter().any(|it| it.overlaps(net))
        };
        let mut changes = Vec::new();
        for (i, ip) in requests.iter().enumerate() {
            let out = bans.decide(&request(ip, t0() + secs(i as i64), 600), t0());
            for event in &out.events {
                if event.stage == BanStage::Banned {
                    let net: IpNet = event.ip.parse().unwrap();
                    prop_assert!(!covers(&net), "banned {net} (requested {ip})");
                }
            }
            changes.extend(out.changes);
        }
        changes.extend(bans.restore(t0()).changes);
        for change in &changes {
            let entries: Vec<&Entry> = match change {
                Change::Ban(it) | Change::Unban(it) => vec![it],
                Change::Restore(it) => it.iter().collect(),
            };
            for entry in entries {
                prop_assert!(!covers(&entry.target.net()), "change for {}", entry.target);
            }
        }
        for record in bans.active() {
            prop_assert!(!covers(&record.ip), "active {}", record.ip);
        }
    }

    /// The guard agrees with the manager: what it lets through is never protected.
    #[test]
    fn the_guard_never_lets_a_protected_address_through(ip in any_address()) {
        let guard = Guard::new(["192.0.2.1".parse::<IpAddr>().unwrap()], ["10.0.0.0/8".parse::<IpNet>().unwrap()]);
        if let Ok(net) = ip.parse::<IpNet>()
            && let Ok(target) = guard.check(net)
        {
            let net = target.net();
            for bad in ["127.0.0.1", "::1", "192.0.2.1", "10.1.1.1", "0.0.0.0", "::"] {
                prop_assert!(!net.contains(bad.parse().unwrap()), "{net} holds {bad}");
            }
        }
    }
}

// --- Real firewalls inside a network namespace ---------------------------------------------

/// A network namespace for one test, deleted when dropped.
struct Netns {
    name: String,
}

impl Netns {
    /// A fresh namespace, or `None` (with a loud message) when this is not root or a program is
    /// missing.
    fn create(test: &str, programs: &[&str]) -> Option<Netns> {
        if !rustix::process::geteuid().is_root() {
            eprintln!("SKIPPED {test}: creating a network namespace needs root (CI runs as root)");
            return None;
        }
        for program in programs {
            if !installed(program) {
                eprintln!("SKIPPED {test}: {program} is not installed (scripts/test installs it)");
                return None;
            }
        }
        let name = format!("vigil-{test}-{}", std::process::id());
        let name: String = name.chars().take(40).collect();
        let out = run(&["ip", "netns", "add", &name]);
        assert!(out.status.success(), "ip netns add: {}", String::from_utf8_lossy(&out.stderr));
        Some(Netns { name })
    }

    fn exec(&self, argv: &[&str]) -> Output {
        let mut full = vec!["ip", "netns", "exec", &self.name];
        full.extend(argv);
        run(&full)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        run(&["ip", "netns", "del", &self.name]);
    }
}

/// Whether `program` can be started (it is on `PATH`).
#[allow(clippy::disallowed_methods)] // Tests drive the real programs they check against.
fn installed(program: &str) -> bool {
    let started = Command::new(program).arg("-V").output();
    !matches!(started, Err(err) if err.kind() == std::io::ErrorKind::NotFound)
}

#[allow(clippy::disallowed_methods)] // Tests drive the real programs they check against.
fn run(argv: &[&str]) -> Output {
    Command::new(argv[0]).args(&argv[1..]).output().expect("run a program")
}

/// The elements of an nftables set, as text (`1.2.3.4`, `10.0.0.0/24`) with their timeouts.
fn nft_set(ns: &Netns, table: &str, set: &str) -> Vec<(String, Option<u64>)> {
    try_nft_set(ns, table, set).expect("the set exists")
}

/// [`nft_set`], or `None` while the set does not exist.
fn try_nft_set(ns: &Netns, table: &str, set: &str) -> Option<Vec<(String, Option<u64>)>> {
    let out = ns.exec(&["nft", "-j", "list", "set", "inet", table, set]);
    if !out.status.success() {
        return None;
    }
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let set = json["nftables"].as_array().unwrap().iter().find_map(|it| it.get("set")).unwrap();
    let text = |val: &Value| match val {
        Value::String(it) => it.clone(),
        other => {
            format!("{}/{}", other["prefix"]["addr"].as_str().unwrap(), other["prefix"]["len"])
        }
    };
    let mut elements: Vec<(String, Option<u64>)> = set
        .get("elem")
        .and_then(Value::as_array)
        .map(|elems| {
            elems
                .iter()
                .map(|it| match it.get("elem") {
                    Some(elem) => (text(&elem["val"]), elem["timeout"].as_u64()),
                    None => (text(it), None),
                })
                .collect()
        })
        .unwrap_or_default();
    elements.sort();
    Some(elements)
}

fn entries(bans: &mut BanManager, now: DateTime<Utc>) -> Vec<Entry> {
    match bans.restore(now).changes.pop() {
        Some(Change::Restore(entries)) => entries,
        other => panic!("{other:?}"),
    }
}

#[test]
fn nftables_sets_hold_exactly_the_bans_in_a_namespace() {
    let Some(ns) = Netns::create("nft", &["nft", "ip"]) else { return };
    let mut config = config();
    config.enforce = true;
    let mut bans = manager(&config);
    let now = Utc::now();
    bans.decide(&request("203.0.113.9", now, 600), now);
    bans.decide(&request("::ffff:198.51.100.3", now, -1), now);
    bans.decide(&request("2001:db8::5", now, 3600), now);
    bans.decide(&request("203.0.113.0/24", now, 600), now);
    bans.decide(&request("10.0.0.0/8", now, 60), now);
    bans.decide(&request("10.1.0.0/16", now, 60), now);
    let nft = NftablesConfig {
        netns: Some(ns.name.clone()),
        table: "vigil_nft_test".into(),
        forward: true,
        ..NftablesConfig::default()
    };
    let mut action = NftablesAction::new(&nft);
    action.apply(&[Change::Restore(entries(&mut bans, now))], now).unwrap();

    let v4 = nft_set(&ns, "vigil_nft_test", "banned_v4");
    assert_eq!(
        v4.iter().map(|it| it.0.as_str()).collect::<Vec<_>>(),
        ["198.51.100.3", "203.0.113.9"]
    );
    assert_eq!(v4[0].1, None, "a permanent ban has no timeout");
    assert!(v4[1].1.is_some_and(|it| (599..=600).contains(&it)), "{v4:?}");
    let nets = nft_set(&ns, "vigil_nft_test", "banned_v4_nets");
    let names: Vec<&str> = nets.iter().map(|it| it.0.as_str()).collect();
    assert_eq!(names, ["10.0.0.0/8", "203.0.113.0/24"], "nested prefixes keep the widest");
    let v6 = nft_set(&ns, "vigil_nft_test", "banned_v6");
    assert_eq!(v6.len(), 1);
    assert_eq!(v6[0].0, "2001:db8::5");
    let chain = ns.exec(&["nft", "list", "chain", "inet", "vigil_nft_test", "input"]);
    let chain = String::from_utf8_lossy(&chain.stdout);
    assert!(
        chain.contains("hook input priority filter - 10")
            && chain.contains("ip saddr @banned_v4 drop"),
        "{chain}"
    );
    assert!(chain.contains("ip6 saddr @banned_v6 drop"), "{chain}");
    let forward = ns.exec(&["nft", "list", "chain", "inet", "vigil_nft_test", "forward"]);
    let forward = String::from_utf8_lossy(&forward.stdout);
    assert!(
        forward.contains("hook forward") && forward.contains("ip6 saddr @banned_v6_nets drop"),
        "{forward}"
    );

    // Incremental changes in one batch: a new ban, an extension, an unban, and an unban of an
    // element the kernel no longer has (must not fail the batch).
    let later = now + secs(5);
    let mut changes = bans.decide(&request("192.0.2.77", later, 120), later).changes;
    changes.extend(bans.decide(&request("203.0.113.9", later, 7200), later).changes);
    changes.extend(bans.unban("2001:db8::5", later).unwrap().changes);
    // Banned but never applied: the kernel does not know it.
    let _ = bans.decide(&request("2001:db8::6", later, 60), later);
    changes.extend(bans.unban("2001:db8::6", later).unwrap().changes);
    assert_eq!(changes.len(), 4);
    action.apply(&changes, later).unwrap();
    let v4 = nft_set(&ns, "vigil_nft_test", "banned_v4");
    let find = |ip: &str| v4.iter().find(|it| it.0 == ip).map(|it| it.1);
    assert!(
        find("192.0.2.77").is_some_and(|it| it.is_some_and(|t| (119..=120).contains(&t))),
        "{v4:?}"
    );
    assert!(find("203.0.113.9").is_some_and(|it| it.is_some_and(|t| t > 7000)), "extended: {v4:?}");
    assert!(nft_set(&ns, "vigil_nft_test", "banned_v6").is_empty());

    // A restore replaces everything, atomically.
    bans.unban("203.0.113.9", later).unwrap();
    action.apply(&[Change::Restore(entries(&mut bans, later))], later).unwrap();
    let v4: Vec<String> =
        nft_set(&ns, "vigil_nft_test", "banned_v4").into_iter().map(|it| it.0).collect();
    assert_eq!(v4, ["192.0.2.77", "198.51.100.3"]);
    // The host's own namespace was never touched.
    assert!(!run(&["nft", "list", "table", "inet", "vigil_nft_test"]).status.success());
}

#[test]
fn the_detector_decides_applies_persists_restores_and_answers_unban_requests() {
    let Some(ns) = Netns::create("detector", &["nft", "ip"]) else { return };
    let state_dir = tempfile::tempdir().unwrap();
    let mut config = config();
    config.enforce = true;
    config.nftables.netns = Some(ns.name.clone());
    let detector = |config: &BansConfig| {
        let actions = vigil_respond::build_actions(config).unwrap();
        BanDetector::new(manager(config), actions)
            .unwrap()
            .with_host("h")
            .with_control(state_dir.path())
            .unwrap()
    };
    let mut first = detector(&config);
    let mut ctx = DetectorContext::new("h", "bans");
    let now = Utc::now();
    first.tick(now, &mut ctx);
    let event = |ban: Ban| Event::new("h", "sshd", Payload::Ban(ban));
    first.handle(&event(request("203.0.113.50", now, 600)), &mut ctx).unwrap();
    first.handle(&event(request("127.0.0.1", now, 600)), &mut ctx).unwrap();
    // Other stages are not requests.
    first
        .handle(
            &event(Ban { stage: BanStage::Banned, ..request("203.0.113.51", now, 600) }),
            &mut ctx,
        )
        .unwrap();
    let stages: Vec<(String, BanStage)> = ctx
        .take()
        .into_iter()
        .filter_map(|it| match it.payload {
            Payload::Ban(ban) => Some((ban.ip, ban.stage)),
            _ => None,
        })
        .collect();
    assert_eq!(
        stages,
        [("203.0.113.50".into(), BanStage::Banned), ("127.0.0.1".into(), BanStage::Refused)]
    );
    wait_for(|| try_nft_set(&ns, "vigil", "banned_v4").is_some_and(|it| it.len() == 1));
    assert_eq!(first.statistics()["refused"], 1);
    assert!(Control::new(state_dir.path()).agent_running());
    let err = Control::new(state_dir.path()).lock().unwrap_err();
    assert!(err.to_string().contains("another agent's ban manager holds"), "{err}");

    // Restart: the new detector restores the saved state into a firewall that lost it.
    let saved = first.save_state().unwrap();
    drop(first);
    assert!(!Control::new(state_dir.path()).agent_running(), "the lock goes with the detector");
    ns.exec(&["nft", "delete", "table", "inet", "vigil"]);
    let mut second = detector(&config);
    second.restore_state(saved).unwrap();
    second.tick(Utc::now(), &mut ctx);
    assert!(ctx.take().is_empty(), "the restored events follow on the next tick");
    second.tick(Utc::now(), &mut ctx);
    let restored: Vec<BanStage> = ctx
        .take()
        .into_iter()
        .filter_map(|it| match it.payload {
            Payload::Ban(ban) => Some(ban.stage),
            _ => None,
        })
        .collect();
    assert_eq!(restored, [BanStage::Restored]);
    wait_for(|| {
        try_nft_set(&ns, "vigil", "banned_v4")
            .is_some_and(|it| it.iter().any(|it| it.0 == "203.0.113.50"))
    });

    // `vigil unban` through the control directory.
    let control = Control::new(state_dir.path());
    let asked = control.request_unban("203.0.113.50").unwrap();
    let unknown = control.request_unban("203.0.113.99").unwrap();
    second.tick(Utc::now(), &mut ctx);
    assert_eq!(
        control.wait_answer(&asked, Duration::from_secs(5)),
        Some(Ok("unbanned 203.0.113.50".into()))
    );
    assert_eq!(
        control.wait_answer(&unknown, Duration::from_secs(5)),
        Some(Err("203.0.113.99 is not banned".into()))
    );
    wait_for(|| nft_set(&ns, "vigil", "banned_v4").is_empty());
    assert_eq!(second.statistics()["unbanned"], 1);
}

fn wait_for(mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !condition() {
        assert!(Instant::now() < deadline, "condition not met within 30 s");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn ipset_sets_hold_exactly_the_bans_in_a_namespace() {
    let Some(ns) = Netns::create("ipset", &["ipset", "ip"]) else { return };
    let mut config = config();
    config.enforce = true;
    let mut bans = manager(&config);
    let now = Utc::now();
    bans.decide(&request("203.0.113.9", now, 600), now);
    bans.decide(&request("203.0.114.0/24", now, -1), now);
    bans.decide(&request("2001:db8::5", now, 3600), now);
    let ipset = IpsetConfig { netns: Some(ns.name.clone()), ..IpsetConfig::default() };
    let mut action = IpsetAction::new(&ipset);
    action.apply(&[Change::Restore(entries(&mut bans, now))], now).unwrap();
    let members = |set: &str| -> Vec<String> {
        let out = ns.exec(&["ipset", "save", set]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let mut it: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                l.strip_prefix(&format!("add {set} "))
                    .map(|rest| rest.split(' ').next().unwrap_or("").to_owned())
            })
            .collect();
        it.sort();
        it
    };
    assert_eq!(members("vigil_v4"), ["203.0.113.9", "203.0.114.0/24"]);
    assert_eq!(members("vigil_v6"), ["2001:db8::5"]);
    let later = now + secs(1);
    let mut changes = bans.decide(&request("192.0.2.99", later, 60), later).changes;
    changes.extend(bans.unban("203.0.113.9", later).unwrap().changes);
    action.apply(&changes, later).unwrap();
    assert_eq!(members("vigil_v4"), ["192.0.2.99", "203.0.114.0/24"]);
    action.apply(&[Change::Restore(Vec::new())], later).unwrap();
    assert!(members("vigil_v4").is_empty() && members("vigil_v6").is_empty());
    assert!(!String::from_utf8_lossy(&ns.exec(&["ipset", "list", "-n"]).stdout).contains("-new"));
}

#[test]
fn the_exec_action_substitutes_each_argument_on_its_own_without_a_shell() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().display().to_string();
    let exec = ExecConfig {
        program: "touch".into(),
        args: vec![format!("{out}/ban {{ip}} {{jail}} {{bantime}} {{failures}} {{family}}")],
        unban_args: vec![format!("{out}/unban-{{ip}}")],
        ..ExecConfig::default()
    };
    let mut action = ExecAction::new("marker", &exec);
    let mut config = config();
    config.enforce = true;
    let mut bans = manager(&config);
    let now = Utc::now();
    let evil = Ban { jail: "x; rm -rf ~ $(id)".into(), ..request("2001:db8::9", now, 60) };
    let mut changes = bans.decide(&evil, now).changes;
    changes.extend(bans.unban("2001:db8::9", now).unwrap().changes);
    action.apply(&changes, now).unwrap();
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|it| it.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["ban 2001:db8::9 x; rm -rf ~ $(id) 60 5 inet6", "unban-2001:db8::9"]);

    // A start re-runs the ban arguments only when `restore` asks for it.
    let restore = bans.decide(&request("203.0.113.8", now, 60), now).changes;
    let restore = [Change::Restore(match &restore[0] {
        Change::Ban(entry) => vec![entry.clone()],
        other => panic!("{other:?}"),
    })];
    let marker = |restore: bool| ExecConfig {
        program: "touch".into(),
        args: vec![format!("{out}/restored-{{ip}}")],
        restore,
        ..ExecConfig::default()
    };
    ExecAction::new("r", &marker(false)).apply(&restore, now).unwrap();
    assert!(!dir.path().join("restored-203.0.113.8").exists());
    ExecAction::new("r", &marker(true)).apply(&restore, now).unwrap();
    assert!(dir.path().join("restored-203.0.113.8").exists());

    let failing = ExecConfig { program: "false".into(), ..ExecConfig::default() };
    let mut changes = bans.decide(&request("203.0.113.1", now, 60), now).changes;
    changes.truncate(1);
    let err = ExecAction::new("f", &failing).apply(&changes, now).unwrap_err();
    assert!(err.to_string().starts_with("false: exit status: 1"), "{err}");
    let missing =
        ExecConfig { program: Path::new("/nonexistent/prog").into(), ..ExecConfig::default() };
    let err = ExecAction::new("m", &missing).apply(&changes, now).unwrap_err();
    assert!(err.to_string().contains("cannot start"), "{err}");
}

#[test]
fn a_failed_nftables_batch_is_repaired_by_a_restore_of_every_ban() {
    let Some(ns) = Netns::create("repair", &["nft", "ip"]) else { return };
    let mut config = config();
    config.enforce = true;
    config.nftables.netns = Some(ns.name.clone());
    let mut bans = manager(&config);
    let now = Utc::now();
    bans.decide(&request("203.0.113.1", now, 600), now);
    let worker =
        vigil_respond::Worker::start(vigil_respond::build_actions(&config).unwrap()).unwrap();
    assert!(worker.send(bans.restore(now).changes));
    wait_for(|| try_nft_set(&ns, "vigil", "banned_v4").is_some_and(|it| it.len() == 1));

    // Someone flushes the firewall: the next change fails, and the worker restores everything.
    ns.exec(&["nft", "delete", "table", "inet", "vigil"]);
    assert!(worker.send(bans.decide(&request("203.0.113.2", now, 600), now).changes));
    wait_for(|| worker.stats().failures.load(std::sync::atomic::Ordering::Relaxed) == 1);
    wait_for(|| {
        try_nft_set(&ns, "vigil", "banned_v4").is_some_and(|it| {
            it.iter().map(|e| e.0.as_str()).collect::<Vec<_>>() == ["203.0.113.1", "203.0.113.2"]
        })
    });
}

#[test]
fn a_dry_run_detector_protects_the_addresses_it_reads_from_proc() {
    let proc_root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(proc_root.path().join("net")).unwrap();
    let trie = "Main:\n  +-- 203.0.113.0/24 2 0 2\n     |-- 203.0.113.40\n        /32 host LOCAL\n";
    std::fs::write(proc_root.path().join("net/fib_trie"), trie).unwrap();
    let mut detector = BanDetector::new(manager(&config()), Vec::new())
        .unwrap()
        .with_host("h")
        .with_host_address_refresh(proc_root.path());
    let mut ctx = DetectorContext::new("h", "bans");
    detector.tick(Utc::now(), &mut ctx);
    for (ip, stage) in [("203.0.113.40", BanStage::Refused), ("203.0.113.41", BanStage::Banned)] {
        let event = Event::new("h", "sshd", Payload::Ban(request(ip, Utc::now(), 60)));
        detector.handle(&event, &mut ctx).unwrap();
        let dispatched = ctx.take();
        let Payload::Ban(ban) = &dispatched[0].payload else { panic!("{dispatched:?}") };
        assert_eq!((ban.ip.as_str(), ban.stage, ban.dry_run), (ip, stage, true));
        assert_eq!(dispatched[0].host.as_ref(), "h");
    }
    // Registered with its own filter: requests only, never its own decisions.
    let filter = BanDetector::filter();
    let requested = Event::new("h", "sshd", Payload::Ban(request("203.0.113.9", Utc::now(), 60)));
    let banned = Ban { stage: BanStage::Banned, ..request("203.0.113.9", Utc::now(), 60) };
    assert!(filter.matches(&requested));
    assert!(!filter.matches(&Event::new("h", "bans", Payload::Ban(banned))));
    assert_eq!(detector.statistics()["action_queue_full"], 0);
    assert!(!detector.statistics().contains_key("action_batches"), "dry-run starts no worker");
}

// --- In the pipeline ---------------------------------------------------------------------------

/// Sends each address as one log line.
struct Lines(Vec<&'static str>);

#[vigil_core::async_trait]
impl vigil_core::EventSource for Lines {
    fn name(&self) -> &str {
        "lines"
    }
    fn capabilities(&self) -> vigil_core::SourceCapabilities {
        vigil_core::SourceCapabilities::LOG
    }
    async fn start(
        &self,
        ctx: vigil_core::SourceContext,
    ) -> Result<(), vigil_core::ComponentError> {
        for line in &self.0 {
            ctx.send(Payload::Log(vigil_event::LogEvent::new("test", *line))).await?;
        }
        ctx.shutdown.cancelled().await;
        Ok(())
    }
}

/// A stand-in jail: every log line is an address to ban.
struct Jail;

impl Detector for Jail {
    fn name(&self) -> &str {
        "jail"
    }
    fn handle(
        &mut self,
        event: &Event,
        ctx: &mut DetectorContext,
    ) -> Result<(), vigil_core::ComponentError> {
        if let Payload::Log(log) = &event.payload {
            let ban = request(&log.message, Utc::now(), 600);
            ctx.dispatch(Event::new("h", "jail", Payload::Ban(ban)));
        }
        Ok(())
    }
    fn statistics(&self) -> vigil_core::Statistics {
        vigil_core::Statistics::new()
    }
}

/// Keeps every ban event it receives.
struct Collect(std::sync::Arc<std::sync::Mutex<Vec<Ban>>>);

#[vigil_core::async_trait]
impl vigil_core::Listener for Collect {
    fn name(&self) -> &str {
        "collect"
    }
    async fn handle(
        &mut self,
        events: &[std::sync::Arc<Event>],
    ) -> Result<(), vigil_core::ComponentError> {
        let mut seen = self.0.lock().unwrap();
        for event in events {
            if let Payload::Ban(ban) = &event.payload {
                seen.push(ban.clone());
            }
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jail_request_travels_through_the_runtime_and_is_decided_once() {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut builder = vigil_runtime::Runtime::builder(vigil_runtime::RuntimeConfig::new());
    builder
        .register_source(std::sync::Arc::new(Lines(vec![
            "203.0.113.9",
            "127.0.0.1",
            "2001:db8::9",
        ])))
        .unwrap();
    builder
        .register_detector(
            Box::new(Jail),
            vigil_core::Filter::any().kinds([vigil_event::EventKind::Log]),
        )
        .unwrap();
    let bans = BanDetector::new(manager(&config()), Vec::new()).unwrap().with_host("h");
    builder.register_detector(Box::new(bans), BanDetector::filter()).unwrap();
    builder
        .register_listener(
            Box::new(Collect(seen.clone())),
            vigil_core::Filter::any().kinds([vigil_event::EventKind::Ban]),
        )
        .unwrap();
    let shutdown = vigil_core::CancellationToken::new();
    let run = tokio::spawn(builder.build().run(shutdown.clone()));
    let deadline = Instant::now() + Duration::from_secs(30);
    while seen.lock().unwrap().len() < 6 {
        assert!(Instant::now() < deadline, "{:?}", seen.lock().unwrap());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Give a feedback loop (the manager eating its own decisions) the time to show.
    tokio::time::sleep(Duration::from_millis(300)).await;
    shutdown.cancel();
    run.await.unwrap();
    let seen = seen.lock().unwrap();
    let mut stages: Vec<(String, BanStage)> =
        seen.iter().map(|it| (it.ip.clone(), it.stage)).collect();
    stages.sort_by(|a, b| (a.0.as_str(), a.1.as_str()).cmp(&(b.0.as_str(), b.1.as_str())));
    let want = [
        ("127.0.0.1", BanStage::Refused),
        ("127.0.0.1", BanStage::Requested),
        ("2001:db8::9", BanStage::Banned),
        ("2001:db8::9", BanStage::Requested),
        ("203.0.113.9", BanStage::Banned),
        ("203.0.113.9", BanStage::Requested),
    ];
    assert_eq!(stages, want.map(|(ip, stage)| (ip.to_owned(), stage)));
}
