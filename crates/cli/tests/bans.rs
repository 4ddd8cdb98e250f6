//! `vigil bans` and `vigil unban` as a user runs them: against a stopped agent's state file,
//! and against a running, enforcing agent whose nftables table lives in a network namespace the
//! test creates (root only; skipped loudly otherwise).

mod common;

use common::text;

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

use serde_json::{Value, json};

#[allow(clippy::disallowed_methods)] // Running the binary under test is the point here.
fn vigil(config: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vigil"));
    cmd.arg("--config").arg(config).args(args);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("VIGIL_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

#[allow(clippy::disallowed_methods)] // The test drives the real firewall tools.
fn tool(argv: &[&str]) -> Output {
    Command::new(argv[0]).args(&argv[1..]).output().expect("run a tool")
}

/// A config file with the state under `dir` and `extra` appended.
fn write_config(dir: &Path, extra: &str) -> std::path::PathBuf {
    let path = dir.join("vigil.toml");
    let config = format!(
        "[agent]\nstate_dir = \"{}\"\n[runtime]\nhealth_check_interval = \"200ms\"\n\
         [sources.system]\nenabled = false\n[sources.network]\nenabled = false\n\
         [sources.process]\nenabled = false\n[sources.connections]\nenabled = false\n{extra}",
        dir.join("state-dir").display()
    );
    std::fs::write(&path, config).unwrap();
    path
}

/// A persisted ban state as the agent writes it: rows of
/// `[ip, jail, at, until, failures, bantime_seconds, previous_bans, flags]`.
fn write_state(dir: &Path, rows: &Value) {
    let state = dir.join("state-dir/state");
    std::fs::create_dir_all(&state).unwrap();
    let value = json!({"version": 1, "active": rows, "history": []});
    std::fs::write(state.join("detector.bans.json"), value.to_string()).unwrap();
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[test]
fn bans_lists_the_persisted_state_and_unban_edits_it_when_no_agent_runs() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "");
    let out = vigil(&config, &["bans", "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(serde_json::from_slice::<Value>(&out.stdout).unwrap(), json!([]));

    let t = now();
    write_state(
        dir.path(),
        &json!([
            ["203.0.113.9", "sshd", t, t + 600, 5, 600, 0, 1],
            ["2001:db8::1", "nginx", t, null, 7, -1, 2, 0],
        ]),
    );
    let out = vigil(&config, &["bans", "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let rows: Value = serde_json::from_slice(&out.stdout).unwrap();
    let at = chrono::DateTime::from_timestamp(t, 0)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    assert_eq!(rows[0]["ip"], "203.0.113.9");
    assert_eq!(rows[0]["jail"], "sshd");
    assert_eq!(rows[0]["at"], at.as_str());
    assert!(rows[0]["until"].is_string());
    assert_eq!(rows[0]["failures"], 5);
    assert_eq!(rows[0]["dry_run"], true);
    assert_eq!(rows[1]["ip"], "2001:db8::1");
    assert_eq!(rows[1]["until"], Value::Null, "permanent");
    assert_eq!(rows[1]["dry_run"], false);
    let out = vigil(&config, &["bans"]).output().unwrap();
    let table = text(&out.stdout);
    assert!(table.starts_with("IP  "), "{table}");
    assert!(table.contains("permanent") && table.contains("nginx"), "{table}");

    let out = vigil(&config, &["unban", "203.0.113.9"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "unbanned 203.0.113.9\n");
    let out = vigil(&config, &["bans", "--json"]).output().unwrap();
    let rows: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 1);
    assert_eq!(rows[0]["ip"], "2001:db8::1");

    let out = vigil(&config, &["unban", "203.0.113.9"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "not banned any more");
    assert!(text(&out.stderr).contains("203.0.113.9 is not banned"), "{}", text(&out.stderr));
    let out = vigil(&config, &["unban", "not-an-address"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "usage error");
    let out = vigil(&config, &["bans", "--jsn"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// A network namespace for one test, deleted when dropped.
struct Netns(String);

impl Netns {
    #[allow(clippy::disallowed_methods)] // Probing for the real firewall tool.
    fn create(test: &str) -> Option<Netns> {
        if !rustix::process::geteuid().is_root() {
            eprintln!("SKIPPED {test}: it needs root for a network namespace (CI runs as root)");
            return None;
        }
        let nft = Command::new("nft").arg("--version").output();
        if matches!(nft, Err(err) if err.kind() == std::io::ErrorKind::NotFound) {
            eprintln!("SKIPPED {test}: nft is not installed (scripts/test installs nftables)");
            return None;
        }
        let name = format!("vigil-cli-{}", std::process::id());
        let out = tool(&["ip", "netns", "add", &name]);
        assert!(out.status.success(), "ip netns add: {}", text(&out.stderr));
        Some(Netns(name))
    }

    fn banned_v4(&self) -> Option<Vec<String>> {
        let out = tool(&[
            "ip",
            "netns",
            "exec",
            &self.0,
            "nft",
            "-j",
            "list",
            "set",
            "inet",
            "vigil",
            "banned_v4",
        ]);
        if !out.status.success() {
            return None;
        }
        let json: Value = serde_json::from_slice(&out.stdout).ok()?;
        let set = json["nftables"].as_array()?.iter().find_map(|it| it.get("set"))?.clone();
        let mut elements: Vec<String> = set["elem"]
            .as_array()
            .map(|it| {
                it.iter()
                    .map(|e| e["elem"]["val"].as_str().or(e.as_str()).unwrap_or("?").to_owned())
                    .collect()
            })
            .unwrap_or_default();
        elements.sort();
        Some(elements)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        tool(&["ip", "netns", "del", &self.0]);
    }
}

fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !condition() {
        assert!(Instant::now() < deadline, "{what}: not within 20 s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_running_enforcing_agent_restores_its_bans_and_lifts_one_on_unban() {
    let Some(ns) = Netns::create("a_running_enforcing_agent") else { return };
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            "[bans]\nenforce = true\ndetect_own_addresses = false\n[bans.nftables]\nnetns = \"{}\"\n",
            ns.0
        ),
    );
    let t = now();
    write_state(
        dir.path(),
        &json!([
            ["203.0.113.9", "sshd", t, t + 3600, 5, 3600, 0, 0],
            ["198.51.100.7", "sshd", t, null, 9, -1, 1, 0],
            ["127.0.0.1", "sshd", t, t + 3600, 5, 3600, 0, 0],
        ]),
    );
    let mut agent = vigil(&config, &["run", "--print"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(agent.stdout.take().unwrap());
    let reader = std::thread::spawn(move || {
        let mut bans = Vec::new();
        for line in stdout.lines().map_while(Result::ok) {
            let event: Value = serde_json::from_str(&line).unwrap_or_default();
            if event["kind"] == "ban" {
                bans.push((
                    event["payload"]["ip"].as_str().unwrap_or("").to_owned(),
                    event["payload"]["stage"].as_str().unwrap_or("").to_owned(),
                ));
            }
        }
        bans
    });

    // Restored on start, into the namespace's firewall; loopback was never let through.
    wait_for("restore", || {
        ns.banned_v4() == Some(vec!["198.51.100.7".to_owned(), "203.0.113.9".to_owned()])
    });
    let out = vigil(&config, &["unban", "203.0.113.9"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "unbanned 203.0.113.9 (by the running agent)\n");
    wait_for("lifted from the firewall", || {
        ns.banned_v4() == Some(vec!["198.51.100.7".to_owned()])
    });
    let out = vigil(&config, &["unban", "203.0.113.9"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("is not banned"), "{}", text(&out.stderr));
    // The saved state follows within a save interval.
    wait_for("saved state", || {
        let out = vigil(&config, &["bans", "--json"]).output().unwrap();
        let rows: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        rows.as_array().is_some_and(|it| {
            it.len() == 1 && it[0]["ip"] == "198.51.100.7" && it[0]["dry_run"] == false
        })
    });

    rustix::process::kill_process(
        rustix::process::Pid::from_child(&agent),
        rustix::process::Signal::TERM,
    )
    .unwrap();
    let status = agent.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut agent.stderr.take().unwrap(), &mut err).unwrap();
    assert!(status.success(), "{err}");
    let bans = reader.join().unwrap();
    let has = |ip: &str, stage: &str| bans.iter().any(|it| it.0 == ip && it.1 == stage);
    assert!(has("203.0.113.9", "restored") && has("198.51.100.7", "restored"), "{bans:?}");
    assert!(has("127.0.0.1", "unbanned"), "dropped on restore as protected: {bans:?}");
    assert!(has("203.0.113.9", "unbanned"), "{bans:?}");
    assert!(err.contains("Bans restored"), "{err}");
}
