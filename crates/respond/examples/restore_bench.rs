//! Restores N persisted bans into nftables through Vigil's own code, timed phase by phase: the
//! benchmark behind `bench/bans.sh` (restore of 100,000 bans must take ≤ 1 s).
//!
//! ```text
//! restore_bench --netns NAME [--count 100000] [--plain FILE]
//! ```
//!
//! It builds a ban state of `count` addresses (60 % IPv4, 40 % IPv6, mixed ban times), writes
//! it as the agent's state file would be, then times what an agent start does: read and parse
//! the state, load it into a `BanManager`, build the restore, and apply it with the nftables
//! action inside the namespace NAME. `--plain FILE` also writes a plain `nft -f` script of the
//! same elements, for the peer measurement.

use std::{fmt::Write as _, net::IpAddr, time::Instant};

use chrono::{TimeDelta, Utc};
use vigil_core::{Detector, DetectorContext};
use vigil_event::Ban;
use vigil_respond::{BanDetector, BanManager, BansConfig, build_actions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut netns = None;
    let mut count = 100_000usize;
    let mut plain = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--netns" => netns = args.next(),
            "--count" => count = args.next().ok_or("--count needs a value")?.parse()?,
            "--plain" => plain = args.next(),
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let netns = netns.ok_or("--netns NAME is required (bench/bans.sh creates one)")?;
    let mut config =
        BansConfig { enforce: true, detect_own_addresses: false, ..BansConfig::default() };
    config.nftables.netns = Some(netns);

    // The state an agent would have persisted.
    let now = Utc::now();
    let mut bans = BanManager::new(&config, [])?;
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    while bans.active_len() < count {
        let r = next();
        let ip: IpAddr = if bans.active_len() % 5 < 3 {
            let b = r.to_be_bytes();
            IpAddr::from([1 + b[0] % 222, b[1], b[2], 1 + b[3] % 254])
        } else {
            let s = r.to_be_bytes();
            let seg = |i: usize| u16::from_be_bytes([s[i], s[i + 1]]);
            IpAddr::from([0x2001, 0x0db8, seg(0), seg(2), seg(4), 0, 0, seg(6) | 1])
        };
        let request = Ban {
            bantime_seconds: 600 + (r % 86_400) as i64,
            failures: 5,
            ..Ban::request(ip.to_string(), "sshd", now - TimeDelta::seconds(60))
        };
        bans.decide(&request, now);
    }
    let dir = std::env::temp_dir().join(format!("vigil-restore-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let state_path = dir.join("detector.bans.json");
    std::fs::write(&state_path, serde_json::to_vec(&bans.state().to_value())?)?;

    // What an agent start does, timed: the runtime reads the state file into a JSON value
    // and hands it to the detector, whose first tick restores; the worker thread applies the
    // batch while the detector dispatches the `Restored` events.
    let start = Instant::now();
    let text = std::fs::read_to_string(&state_path)?;
    let value: serde_json::Value = serde_json::from_str(&text)?;
    let parsed = start.elapsed();
    let manager = BanManager::new(&config, [])?;
    let mut detector = BanDetector::new(manager, build_actions(&config)?)?.with_host("bench");
    detector.restore_state(value)?;
    let loaded = start.elapsed();
    let mut ctx = DetectorContext::new("bench", "bans");
    detector.tick(Utc::now(), &mut ctx);
    let dispatched = start.elapsed();
    let batches = || detector.statistics().get("action_batches").and_then(|it| it.as_u64());
    while batches() < Some(1) {
        std::thread::sleep(std::time::Duration::from_micros(500));
    }
    let total = start.elapsed();
    let failures = detector.statistics().get("action_failures").and_then(|it| it.as_u64());
    if failures != Some(0) {
        return Err(format!("the nftables action failed ({failures:?} failures)").into());
    }
    let mut events = ctx.take().len();
    for _ in 0..100 {
        detector.tick(Utc::now(), &mut ctx);
        events += ctx.take().len();
    }
    println!(
        "restored {} bans in {:.3} s (state file {:.1} MB: parse {:.3} s, load {:.3} s, batch \
         handed to the worker at {:.3} s; then {events} Restored events)",
        detector.manager().active_len(),
        total.as_secs_f64(),
        text.len() as f64 / 1e6,
        parsed.as_secs_f64(),
        (loaded - parsed).as_secs_f64(),
        dispatched.as_secs_f64(),
    );

    if let Some(path) = plain {
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for record in bans.active() {
            let left = record.until.map_or(0, |it| (it - now).num_seconds().max(1));
            let element = format!("{} timeout {left}s", record.ip);
            if record.ip.is_ipv4() { v4.push(element) } else { v6.push(element) }
        }
        let mut script = String::from(
            "table inet plain {\n\tset v4 { type ipv4_addr; flags timeout; }\n\tset v6 { type ipv6_addr; flags timeout; }\n}\n",
        );
        let _ = writeln!(script, "add element inet plain v4 {{ {} }}", v4.join(", "));
        let _ = writeln!(script, "add element inet plain v6 {{ {} }}", v6.join(", "));
        std::fs::write(path, script)?;
    }
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
