//! The inspection commands (`vigil metrics`, `ps`, `conns`) and the host sources of `vigil run`
//! on the live host, checked against independent sources: /proc read directly, `nproc`, a
//! listener and a child process the test itself creates.

mod common;

use common::vigil;

use std::{
    collections::BTreeSet,
    process::{Command, Output},
};

use serde_json::Value;

#[allow(clippy::disallowed_methods)] // Independent tools to compare with.
fn program(name: &str) -> Command {
    Command::new(name)
}

fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("vigil runs");
    assert!(out.status.success(), "{:?}: {}", out.status, String::from_utf8_lossy(&out.stderr));
    out
}

fn json(args: &[&str]) -> Value {
    let out = run_ok(&mut vigil(args));
    serde_json::from_slice(&out.stdout).expect("valid JSON on stdout")
}

fn keys(value: &Value) -> BTreeSet<&str> {
    value.as_object().expect("an object").keys().map(String::as_str).collect()
}

fn set<'a>(items: &[&'a str]) -> BTreeSet<&'a str> {
    items.iter().copied().collect()
}

/// A value from /proc/meminfo, in bytes, read without the collector.
fn meminfo_bytes(field: &str) -> u64 {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap();
    let line = text.lines().find(|it| it.starts_with(&format!("{field}:"))).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

#[test]
fn metrics_json_has_the_contract_keys_and_matches_proc_and_nproc() {
    let metrics = json(&["metrics", "--json"]);
    assert_eq!(
        keys(&metrics),
        set(&["cpu", "memory", "swap", "load", "disks", "disk_io", "network"])
    );
    assert_eq!(keys(&metrics["cpu"]), set(&["percent", "count", "per_cpu"]));
    assert_eq!(
        keys(&metrics["memory"]),
        set(&["total_bytes", "available_bytes", "used_bytes", "percent"])
    );
    assert_eq!(keys(&metrics["load"]), set(&["1", "5", "15"]));
    assert_eq!(keys(&metrics["network"]), set(&["interfaces", "tcp_states"]));
    for disk in metrics["disks"].as_array().unwrap() {
        assert_eq!(keys(disk), set(&["mount", "fs", "total_bytes", "available_bytes"]));
    }
    for disk in metrics["disk_io"].as_array().unwrap() {
        assert_eq!(keys(disk), set(&["device", "read_bytes", "written_bytes"]));
    }
    let interfaces = metrics["network"]["interfaces"].as_array().unwrap();
    assert!(interfaces.iter().any(|it| it["name"] == "lo"), "{interfaces:?}");
    for interface in interfaces {
        assert!(keys(interface).is_superset(&set(&["name", "rx_bytes", "tx_bytes"])));
    }

    assert_eq!(metrics["memory"]["total_bytes"].as_u64(), Some(meminfo_bytes("MemTotal")));
    let nproc = run_ok(&mut program("nproc")).stdout;
    let nproc: u64 = String::from_utf8(nproc).unwrap().trim().parse().unwrap();
    assert_eq!(metrics["cpu"]["count"].as_u64(), Some(nproc));
    assert_eq!(metrics["cpu"]["per_cpu"].as_array().unwrap().len() as u64, nproc);
    let percent = metrics["cpu"]["percent"].as_f64().expect("two readings give a percent");
    assert!((0.0..=100.0).contains(&percent));
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
    let root_fs = mounts.lines().rfind(|it| it.split(' ').nth(1) == Some("/"));
    let root_fs = root_fs.and_then(|it| it.split(' ').nth(2)).unwrap_or_default();
    if ["ext4", "xfs", "btrfs", "ext3", "zfs"].contains(&root_fs) {
        let disks = metrics["disks"].as_array().unwrap();
        assert!(disks.iter().any(|it| it["mount"] == "/"), "/ ({root_fs}) missing: {disks:?}");
    }
}

#[test]
fn metrics_prometheus_uses_node_exporter_names() {
    let out = run_ok(&mut vigil(&["metrics", "--prometheus"]));
    let text = String::from_utf8(out.stdout).unwrap();
    for name in [
        "node_load1 ",
        "node_memory_MemAvailable_bytes ",
        "node_cpu_seconds_total{cpu=\"0\",mode=\"idle\"} ",
        "node_network_receive_bytes_total{device=\"lo\"} ",
        "node_filesystem_avail_bytes{device=",
    ] {
        assert!(text.contains(name), "{name} missing from:\n{text}");
    }
    let total = format!("node_memory_MemTotal_bytes {}\n", meminfo_bytes("MemTotal"));
    assert!(text.contains(&total), "{total} missing");
    // Every sample line is `name{labels} value` with a number.
    for line in text.lines().filter(|it| !it.starts_with('#')) {
        let value = line.rsplit(' ').next().unwrap();
        assert!(value.parse::<f64>().is_ok(), "{line}");
    }
}

#[test]
fn metrics_table_is_the_default() {
    let out = run_ok(&mut vigil(&["metrics"]));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("CPU "), "{text}");
    assert!(text.contains("MOUNT") && text.contains("INTERFACE"), "{text}");
    let out = vigil(&["metrics", "--json", "--prometheus"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "the two formats exclude each other");
}

/// This test process's own name, as the kernel reports it.
fn own_comm() -> String {
    std::fs::read_to_string("/proc/self/comm").unwrap().trim_end().to_owned()
}

#[test]
fn ps_finds_this_test_process_by_name_with_the_contract_keys() {
    let comm = own_comm();
    let found = json(&["ps", "--name", &comm, "--json"]);
    let found = found.as_array().unwrap();
    let me = found
        .iter()
        .find(|it| it["pid"].as_u64() == Some(u64::from(std::process::id())))
        .unwrap_or_else(|| panic!("pid {} ({comm}) not in {found:?}", std::process::id()));
    assert_eq!(
        keys(me),
        set(&[
            "pid",
            "ppid",
            "name",
            "cmdline",
            "state",
            "threads",
            "cpu_percent",
            "rss_bytes",
            "vms_bytes",
            "fds",
            "read_bytes",
            "write_bytes",
            "exe_deleted"
        ])
    );
    assert_eq!(me["name"], comm.as_str());
    assert_eq!(me["ppid"].as_u64(), Some(u64::from(std::os::unix::process::parent_id())));
    assert_eq!(me["exe_deleted"], false);
    assert!(me["threads"].as_u64().unwrap() >= 1);
    assert!(me["rss_bytes"].as_u64().unwrap() > 0);
    assert!(me["fds"].as_u64().unwrap() >= 3, "stdin, stdout, stderr at least");
    let exe = std::env::current_exe().unwrap();
    assert!(me["cmdline"].as_str().unwrap().contains(exe.file_name().unwrap().to_str().unwrap()));

    // --sort pid --top 1 gives the lowest pid; the table mentions the name.
    let first = json(&["ps", "--sort", "pid", "--top", "1", "--json"]);
    assert_eq!(first.as_array().unwrap().len(), 1);
    let out = run_ok(&mut vigil(&["ps", "--name", &comm]));
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.trim_start().starts_with("PID"), "{table}");
    assert!(table.contains(&comm), "{table}");
}

#[test]
fn conns_finds_a_listener_of_this_test_with_its_pid() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port_number = listener.local_addr().unwrap().port();
    let port = port_number.to_string();
    let found = json(&["conns", "--port", &port, "--json"]);
    let found = found.as_array().unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    let socket = &found[0];
    assert_eq!(
        keys(socket),
        set(&[
            "proto",
            "local_addr",
            "local_port",
            "remote_addr",
            "remote_port",
            "state",
            "pid",
            "process"
        ])
    );
    assert_eq!(socket["proto"], "tcp");
    assert_eq!(socket["local_addr"], "127.0.0.1");
    assert_eq!(socket["local_port"].as_u64(), Some(port_number.into()));
    assert_eq!(socket["state"], "LISTEN");
    assert_eq!(socket["pid"].as_u64(), Some(u64::from(std::process::id())));
    assert_eq!(socket["process"], own_comm().as_str());

    // The same socket through the other filters, and not through contradicting ones.
    let listening = json(&["conns", "--listening", "--ip", "127.0.0.1", "--json"]);
    let listening = listening.as_array().unwrap();
    assert!(listening.iter().any(|it| it["local_port"].as_u64() == Some(port_number.into())));
    let established = json(&["conns", "--port", &port, "--state", "established", "--json"]);
    assert_eq!(established, serde_json::json!([]));
    let out = vigil(&["conns", "--service", "no-such-service"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = run_ok(&mut vigil(&["conns", "--port", &port]));
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.contains(&format!("127.0.0.1:{port}")), "{table}");
    drop(listener);
}

/// Waits up to `limit` for an event for which `want` holds.
fn wait_until(
    rx: &std::sync::mpsc::Receiver<String>,
    limit: std::time::Duration,
    want: impl Fn(&Value) -> bool,
) -> Option<Value> {
    let until = std::time::Instant::now() + limit;
    loop {
        let left = until.saturating_duration_since(std::time::Instant::now());
        let line = rx.recv_timeout(left).ok()?;
        let event: Value = serde_json::from_str(&line).expect("a JSON line");
        if want(&event) {
            return Some(event);
        }
    }
}

/// Waits (up to 30 s) for an event for which `want` holds, and returns it.
fn wait_for(rx: &std::sync::mpsc::Receiver<String>, want: impl Fn(&Value) -> bool) -> Value {
    wait_until(rx, std::time::Duration::from_secs(30), want).expect("the expected event in 30 s")
}

/// Whether `event` is the lifecycle source's `phase` event for `pid`.
fn is_process(event: &Value, pid: u64, phase: &str) -> bool {
    event["kind"] == "process"
        && event["source"] == "process_lifecycle"
        && event["payload"]["phase"] == phase
        && event["payload"]["process"]["pid"].as_u64() == Some(pid)
}

#[test]
fn run_emits_start_and_exit_for_a_child_the_test_starts_and_kills() {
    use std::process::Stdio;
    let home = tempfile::tempdir().unwrap();
    let mut agent = vigil(&["run", "--print"])
        .env("VIGIL_AGENT__STATE_DIR", home.path().join("vigil"))
        .env("VIGIL_SOURCES__PROCESS_LIFECYCLE__ENABLED", "true")
        .env("VIGIL_SOURCES__PROCESS_LIFECYCLE__INTERVAL", "100ms")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let rx = common::stdout_lines(agent.stdout.take().unwrap());
    // The agent is up and the lifecycle source registered once its first status event says so.
    wait_for(&rx, |it| {
        it["kind"] == "agent_status"
            && it["payload"]["components"]
                .as_array()
                .is_some_and(|c| c.iter().any(|c| c["name"] == "process_lifecycle"))
    });
    // A child started before the source's first (baseline) poll is not a start: if no start
    // comes for the first child, the baseline took it; the next one is surely after it.
    let mut attempt = 0;
    let (mut child, pid, start) = loop {
        attempt += 1;
        let mut child = program("sleep").arg("300").spawn().unwrap();
        let pid = u64::from(child.id());
        let limit = std::time::Duration::from_secs(if attempt < 3 { 3 } else { 30 });
        match wait_until(&rx, limit, |it| is_process(it, pid, "start")) {
            Some(start) => break (child, pid, start),
            None => {
                child.kill().unwrap();
                child.wait().unwrap();
            }
        }
    };
    assert_eq!(start["payload"]["process"]["name"], "sleep");
    assert_eq!(start["payload"]["process"]["ppid"].as_u64(), Some(u64::from(std::process::id())));
    assert_eq!(start["payload"]["process"]["cmdline"], serde_json::json!(["sleep", "300"]));

    child.kill().unwrap();
    child.wait().unwrap();
    let exit = wait_for(&rx, |it| is_process(it, pid, "exit"));
    assert_eq!(exit["payload"]["process"]["name"], "sleep");

    rustix::process::kill_process(
        rustix::process::Pid::from_child(&agent),
        rustix::process::Signal::TERM,
    )
    .unwrap();
    assert!(agent.wait().unwrap().success());
}

/// Series of a Prometheus text exposition: `name{sorted labels}` → value.
fn exposition(text: &str) -> std::collections::BTreeMap<String, f64> {
    let mut out = std::collections::BTreeMap::new();
    for line in text.lines().filter(|it| !it.starts_with('#') && !it.trim().is_empty()) {
        let Some((series, value)) = line.rsplit_once(' ') else { continue };
        let Ok(value) = value.parse::<f64>() else { continue };
        let key = match series.split_once('{') {
            Some((name, labels)) => {
                let mut labels: Vec<&str> =
                    labels.trim_end_matches('}').split(',').filter(|it| !it.is_empty()).collect();
                labels.sort_unstable();
                format!("{name}{{{}}}", labels.join(","))
            }
            None => series.to_owned(),
        };
        out.insert(key, value);
    }
    out
}

/// GET /metrics from a local node_exporter, over a plain TCP stream.
fn scrape(port: u16) -> std::collections::BTreeMap<String, f64> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    assert!(head.starts_with("HTTP/1.") && head.contains(" 200 "), "{head}");
    exposition(body)
}

/// node_exporter (Debian's prometheus-node-exporter, installed by scripts/test) on a free
/// loopback port; killed when dropped.
struct NodeExporter {
    child: std::process::Child,
    port: u16,
}

impl NodeExporter {
    fn start() -> NodeExporter {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = program("prometheus-node-exporter")
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("prometheus-node-exporter is installed (scripts/test installs it)");
        // Dropping the guard kills and reaps the exporter on every path, the panic included.
        let exporter = NodeExporter { child, port };
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return exporter;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("node_exporter did not listen on {port}");
    }
}

impl Drop for NodeExporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn metrics_prometheus_agrees_with_node_exporter() {
    let exporter = NodeExporter::start();
    let before = scrape(exporter.port);
    let out = run_ok(&mut vigil(&["metrics", "--prometheus"]));
    let ours = exposition(&String::from_utf8(out.stdout).unwrap());
    let after = scrape(exporter.port);

    // The series both print (same name and labels). Device choices differ a little (this
    // node_exporter leaves out loopback and keeps zram disks), so compare the intersection and
    // check that it covers every family that matters.
    let shared: Vec<&String> = ours.keys().filter(|key| before.contains_key(*key)).collect();
    for name in [
        "node_load1",
        "node_load15",
        "node_memory_MemTotal_bytes",
        "node_memory_MemAvailable_bytes",
        "node_cpu_seconds_total{cpu=\"0\",mode=\"idle\"}",
        "node_cpu_seconds_total{cpu=\"0\",mode=\"user\"}",
        "node_network_receive_bytes_total{",
        "node_network_transmit_bytes_total{",
        "node_context_switches_total",
        "node_boot_time_seconds",
    ] {
        assert!(shared.iter().any(|it| it.starts_with(name)), "{name} not shared: {shared:?}");
    }
    let their_root = before.keys().any(|it| {
        it.starts_with("node_filesystem_avail_bytes{") && it.contains("mountpoint=\"/\"")
    });
    let our_root = shared.iter().any(|it| {
        it.starts_with("node_filesystem_avail_bytes{") && it.contains("mountpoint=\"/\"")
    });
    assert_eq!(our_root, their_root, "the root filesystem is reported by both or neither");
    let our_disks = ours.keys().filter(|it| it.starts_with("node_disk_read_bytes_total{"));
    for key in our_disks {
        assert!(before.contains_key(key), "{key}: a disk node_exporter does not report");
    }

    // Counters: node_exporter's value before ≤ ours ≤ its value after.
    let counters = [
        "node_cpu_seconds_total",
        "node_context_switches_total",
        "node_forks_total",
        "node_network_receive_bytes_total",
        "node_network_transmit_bytes_total",
        "node_network_receive_packets_total",
        "node_disk_read_bytes_total",
        "node_disk_written_bytes_total",
    ];
    for key in shared.iter().filter(|it| counters.iter().any(|c| it.split('{').next() == Some(c))) {
        let (low, value, high) = (before[*key], ours[*key], after[*key]);
        // /proc/stat counts CPU time in 10 ms ticks; both sides divide the same ticks.
        assert!(low - 0.011 <= value && value <= high + 0.011, "{key}: {low} <= {value} <= {high}");
    }

    // Gauges: equal where both read the same number, close where it moves.
    let exact =
        ["node_memory_MemTotal_bytes", "node_memory_SwapTotal_bytes", "node_boot_time_seconds"];
    for key in exact {
        assert_eq!(ours.get(key), before.get(key), "{key}");
    }
    for key in shared.iter().filter(|it| it.starts_with("node_filesystem_size_bytes")) {
        assert_eq!(ours[*key], before[*key], "{key}");
    }
    let close = |key: &str, relative: f64, absolute: f64| {
        let (Some(a), Some(b)) = (ours.get(key), before.get(key)) else {
            panic!("{key} missing from one side")
        };
        let tolerance = absolute.max(b.abs() * relative);
        assert!((a - b).abs() <= tolerance, "{key}: vigil {a}, node_exporter {b}");
    };
    close("node_memory_MemAvailable_bytes", 0.05, 0.0);
    close("node_memory_MemFree_bytes", 0.05, 0.0);
    close("node_load1", 0.0, 2.0);
    close("node_load15", 0.0, 1.0);
    for key in shared.iter().filter(|it| it.starts_with("node_filesystem_avail_bytes")) {
        close(key, 0.01, 64.0 * 1024.0 * 1024.0);
    }
}

#[test]
fn run_with_the_process_connector_sees_a_process_shorter_than_a_poll() {
    use std::process::Stdio;
    let home = tempfile::tempdir().unwrap();
    let mut agent = vigil(&["run", "--print"])
        .env("VIGIL_AGENT__STATE_DIR", home.path().join("vigil"))
        .env("VIGIL_SOURCES__PROCESS_LIFECYCLE__ENABLED", "true")
        .env("VIGIL_SOURCES__PROCESS_LIFECYCLE__NETLINK", "true")
        // No poll during the test: only the connector can see the child.
        .env("VIGIL_SOURCES__PROCESS_LIFECYCLE__INTERVAL", "1h")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let rx = common::stdout_lines(agent.stdout.take().unwrap());
    wait_for(&rx, |it| it["kind"] == "agent_status");
    if vigil_collect::ProcConnector::subscribe().is_err() {
        // Unprivileged (or no connector in this kernel): the source says why and polls instead
        // (the poll test covers that).
        rustix::process::kill_process(
            rustix::process::Pid::from_child(&agent),
            rustix::process::Signal::TERM,
        )
        .unwrap();
        let out = agent.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("Cannot follow the kernel's process events"), "{err}");
        return;
    }
    // Keep the agent's log flowing (its findings are logged) so it never blocks on stderr.
    let mut stderr = agent.stderr.take().unwrap();
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    // The subscription happens as the source starts; children are seen from then on. Retry a
    // few short-lived children until one is reported, then check its exit came too.
    for attempt in 0.. {
        let mut child = program("true").spawn().unwrap();
        let pid = u64::from(child.id());
        child.wait().unwrap();
        let limit = std::time::Duration::from_secs(if attempt < 5 { 2 } else { 30 });
        if let Some(start) = wait_until(&rx, limit, |it| is_process(it, pid, "start")) {
            assert_eq!(start["payload"]["process"]["pid"].as_u64(), Some(pid));
            wait_for(&rx, |it| is_process(it, pid, "exit"));
            break;
        }
        assert!(attempt < 5, "no start event for a short-lived child");
    }
    rustix::process::kill_process(
        rustix::process::Pid::from_child(&agent),
        rustix::process::Signal::TERM,
    )
    .unwrap();
    assert!(agent.wait().unwrap().success());
}

#[test]
fn conns_resolve_names_remote_addresses_from_etc_hosts() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let _client = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let _server = listener.accept().unwrap();
    let found = json(&["conns", "--port", &port.to_string(), "--resolve", "--json"]);
    let established: Vec<&Value> =
        found.as_array().unwrap().iter().filter(|it| it["state"] == "ESTABLISHED").collect();
    assert_eq!(established.len(), 2, "both ends: {found}");
    let hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    let expected = hosts.lines().find_map(|line| {
        let mut words = line.split('#').next()?.split_whitespace();
        (words.next()? == "127.0.0.1").then(|| words.next().map(str::to_owned))?
    });
    for socket in established {
        assert_eq!(socket["remote_host"].as_str(), expected.as_deref(), "{socket}");
    }
}
