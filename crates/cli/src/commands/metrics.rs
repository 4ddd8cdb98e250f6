//! `vigil metrics`: one sample of the system and network collectors, as a table, JSON or the
//! Prometheus text format (node_exporter's names, so existing dashboards work).
//!
//! CPU percentages need two readings; the command takes them 250 ms apart.

use std::{process::ExitCode, time::Duration};

use serde_json::{Value, json};
use vigil_collect::{NetworkCollector, ProcRoot, SystemCollector, SystemReading, prometheus};
use vigil_core::event::NetworkMetrics;

use super::table;

/// Arguments of `vigil metrics`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print one JSON object instead of tables.
    #[arg(long, conflicts_with = "prometheus")]
    json: bool,
    /// Print the Prometheus text exposition format, with node_exporter's metric names.
    #[arg(long)]
    prometheus: bool,
}

/// How long the two CPU readings are apart.
const CPU_WINDOW: Duration = Duration::from_millis(250);

/// Runs the command.
pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let root = ProcRoot::live();
    let mut system = SystemCollector::new(root.clone());
    system.collect();
    std::thread::sleep(CPU_WINDOW);
    let reading = system.collect();
    let network = NetworkCollector::new(root).collect();
    for failed in &reading.metrics.failed_collectors {
        eprintln!("warning: could not read {failed}");
    }
    let text = if args.prometheus {
        prometheus::render(&reading, &network)
    } else if args.json {
        let mut text = serde_json::to_string_pretty(&to_json(&reading, &network))?;
        text.push('\n');
        text
    } else {
        to_table(&reading, &network)
    };
    crate::write_stdout(&text)?;
    Ok(ExitCode::SUCCESS)
}

fn percent(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| round2(part as f64 / whole as f64 * 100.0))
}

fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

/// The `--json` object: the keys are a contract (issue 4).
pub fn to_json(reading: &SystemReading, network: &NetworkMetrics) -> Value {
    let m = &reading.metrics;
    let memory = match (m.memory_total_bytes, m.memory_available_bytes) {
        (Some(total), Some(available)) => {
            let used = total.saturating_sub(available);
            json!({
                "total_bytes": total,
                "available_bytes": available,
                "used_bytes": used,
                "percent": percent(used, total),
            })
        }
        _ => Value::Null,
    };
    let swap = match (m.swap_total_bytes, m.swap_free_bytes) {
        (Some(total), Some(free)) => {
            let used = total.saturating_sub(free);
            json!({
                "total_bytes": total,
                "free_bytes": free,
                "used_bytes": used,
                "percent": percent(used, total),
            })
        }
        _ => Value::Null,
    };
    let load = m
        .load
        .map_or(Value::Null, |[one, five, fifteen]| json!({ "1": one, "5": five, "15": fifteen }));
    let disks: Vec<Value> = m
        .disks
        .iter()
        .map(|it| {
            json!({
                "mount": it.mount,
                "fs": it.fs,
                "total_bytes": it.total_bytes,
                "available_bytes": it.available_bytes,
            })
        })
        .collect();
    let disk_io: Vec<Value> = m
        .disk_io
        .iter()
        .map(|it| {
            json!({
                "device": it.device,
                "read_bytes": it.read_bytes,
                "written_bytes": it.written_bytes,
            })
        })
        .collect();
    let interfaces: Vec<Value> = network
        .interfaces
        .iter()
        .map(|it| {
            json!({
                "name": it.name,
                "rx_bytes": it.rx_bytes,
                "tx_bytes": it.tx_bytes,
                "rx_packets": it.rx_packets,
                "tx_packets": it.tx_packets,
                "rx_errors": it.rx_errors,
                "tx_errors": it.tx_errors,
                "rx_dropped": it.rx_dropped,
                "tx_dropped": it.tx_dropped,
            })
        })
        .collect();
    json!({
        "cpu": {
            "percent": m.cpu_percent.map(round2),
            "count": m.cpu_count,
            "per_cpu": m.per_cpu_percent.iter().copied().map(round2).collect::<Vec<_>>(),
        },
        "memory": memory,
        "swap": swap,
        "load": load,
        "disks": disks,
        "disk_io": disk_io,
        "network": {
            "interfaces": interfaces,
            "tcp_states": network.tcp_states,
        },
    })
}

fn to_table(reading: &SystemReading, network: &NetworkMetrics) -> String {
    let m = &reading.metrics;
    let mut out = String::new();
    let cpu = match (m.cpu_percent, m.cpu_count) {
        (Some(percent), Some(count)) => {
            let per: Vec<String> = m.per_cpu_percent.iter().map(|it| format!("{it:.1}")).collect();
            format!("{percent:.1} % busy, {count} CPUs ({} %)", per.join(" / "))
        }
        (None, Some(count)) => format!("{count} CPUs"),
        _ => "-".to_owned(),
    };
    out.push_str(&format!("CPU     {cpu}\n"));
    if let (Some(total), Some(available)) = (m.memory_total_bytes, m.memory_available_bytes) {
        let used = total.saturating_sub(available);
        out.push_str(&format!(
            "Memory  {} used of {} ({}), {} available\n",
            table::bytes(used),
            table::bytes(total),
            percent(used, total).map_or("-".to_owned(), |it| format!("{it:.1} %")),
            table::bytes(available),
        ));
    }
    if let (Some(total), Some(free)) = (m.swap_total_bytes, m.swap_free_bytes) {
        let used = total.saturating_sub(free);
        out.push_str(&format!("Swap    {} used of {}\n", table::bytes(used), table::bytes(total)));
    }
    if let Some([one, five, fifteen]) = m.load {
        out.push_str(&format!("Load    {one:.2} {five:.2} {fifteen:.2}\n"));
    }

    let rows: Vec<Vec<String>> = m
        .disks
        .iter()
        .map(|it| {
            let used = it.total_bytes.saturating_sub(it.free_bytes.unwrap_or(it.available_bytes));
            vec![
                it.mount.clone(),
                it.fs.clone(),
                table::bytes(it.total_bytes),
                table::bytes(it.available_bytes),
                percent(used, it.total_bytes).map_or("-".to_owned(), |p| format!("{p:.0}%")),
            ]
        })
        .collect();
    out.push('\n');
    out.push_str(&table::render(
        &["MOUNT", "FS", "SIZE", "AVAIL", "USE%"],
        &[false, false, true, true, true],
        &rows,
    ));
    for failed in &reading.failed_mounts {
        out.push_str(&format!("{failed}  (did not answer: hung or failed)\n"));
    }

    let rows: Vec<Vec<String>> = m
        .disk_io
        .iter()
        .map(|it| {
            vec![it.device.clone(), table::bytes(it.read_bytes), table::bytes(it.written_bytes)]
        })
        .collect();
    out.push('\n');
    out.push_str(&table::render(&["DISK", "READ", "WRITTEN"], &[false, true, true], &rows));

    let rows: Vec<Vec<String>> = network
        .interfaces
        .iter()
        .map(|it| {
            vec![
                it.name.clone(),
                table::bytes(it.rx_bytes),
                table::bytes(it.tx_bytes),
                it.rx_packets.to_string(),
                it.tx_packets.to_string(),
                (it.rx_errors + it.tx_errors).to_string(),
                (it.rx_dropped + it.tx_dropped).to_string(),
            ]
        })
        .collect();
    out.push('\n');
    out.push_str(&table::render(
        &["INTERFACE", "RX", "TX", "RX PKTS", "TX PKTS", "ERRS", "DROPS"],
        &[false, true, true, true, true, true, true],
        &rows,
    ));
    if !network.tcp_states.is_empty() {
        let states: Vec<String> =
            network.tcp_states.iter().map(|(state, n)| format!("{state} {n}")).collect();
        out.push_str(&format!("\nTCP     {}\n", states.join(", ")));
    }
    if !network.listening_ports.is_empty() {
        let ports: Vec<String> = network.listening_ports.iter().map(u16::to_string).collect();
        out.push_str(&format!("Listen  {}\n", ports.join(", ")));
    }
    out
}
