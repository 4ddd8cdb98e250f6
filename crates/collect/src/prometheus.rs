//! The Prometheus text exposition of a system and network sample, with node_exporter's names.
//!
//! Where Vigil measures what node_exporter measures, the metric name, labels and unit are
//! node_exporter's (`node_load1`, `node_cpu_seconds_total{cpu,mode}`,
//! `node_filesystem_avail_bytes{device,fstype,mountpoint}`, …), so dashboards built for it work
//! unchanged. Values Vigil computes that node_exporter does not (CPU percent) use a `vigil_`
//! prefix.

use std::fmt::Write;

use vigil_event::NetworkMetrics;

use crate::SystemReading;

/// Writes metric families in order, one `# HELP`/`# TYPE` header per family.
struct Exposition {
    out: String,
}

impl Exposition {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (index, (key, val)) in labels.iter().enumerate() {
                if index > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{key}=\"{}\"", escape(val));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {}", number(value));
    }

    fn single(&mut self, name: &str, kind: &str, help: &str, value: f64) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }
}

/// A label value escaped as the text format requires.
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn number(value: f64) -> String {
    if value.is_finite() && value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{value:.0}")
    } else {
        format!("{value}")
    }
}

/// Renders `system` and `network` in the Prometheus text format (version 0.0.4).
pub fn render(system: &SystemReading, network: &NetworkMetrics) -> String {
    let mut e = Exposition { out: String::new() };
    let m = &system.metrics;
    let hz = system.ticks_per_second.max(1) as f64;

    if !system.per_cpu.is_empty() {
        e.family("node_cpu_seconds_total", "counter", "Seconds the CPUs spent in each mode.");
        for (cpu, modes) in system.per_cpu.iter().enumerate() {
            let cpu = cpu.to_string();
            for (mode, ticks) in modes.modes() {
                e.sample(
                    "node_cpu_seconds_total",
                    &[("cpu", &cpu), ("mode", mode)],
                    ticks as f64 / hz,
                );
            }
        }
    }
    if let Some(percent) = m.cpu_percent {
        e.single(
            "vigil_cpu_busy_percent",
            "gauge",
            "Busy CPU percent since the previous sample.",
            percent,
        );
    }
    if let Some(k) = &system.kernel {
        e.single(
            "node_boot_time_seconds",
            "gauge",
            "Node boot time, in unixtime.",
            k.boot_time as f64,
        );
        e.single(
            "node_context_switches_total",
            "counter",
            "Total number of context switches.",
            k.context_switches as f64,
        );
        e.single("node_forks_total", "counter", "Total number of forks.", k.forks as f64);
        if let Some(n) = k.procs_running {
            e.single(
                "node_procs_running",
                "gauge",
                "Number of processes in runnable state.",
                n.into(),
            );
        }
        if let Some(n) = k.procs_blocked {
            e.single(
                "node_procs_blocked",
                "gauge",
                "Number of processes blocked waiting for I/O to complete.",
                n.into(),
            );
        }
    }
    if let Some(load) = m.load {
        e.single("node_load1", "gauge", "1m load average.", load[0]);
        e.single("node_load5", "gauge", "5m load average.", load[1]);
        e.single("node_load15", "gauge", "15m load average.", load[2]);
    }
    if let Some(mem) = &system.memory {
        let gauges = [
            (
                "node_memory_MemTotal_bytes",
                "Memory information field MemTotal_bytes.",
                Some(mem.total),
            ),
            (
                "node_memory_MemFree_bytes",
                "Memory information field MemFree_bytes.",
                Some(mem.free),
            ),
            (
                "node_memory_MemAvailable_bytes",
                "Memory information field MemAvailable_bytes.",
                mem.available_reported.then_some(mem.available),
            ),
            (
                "node_memory_Buffers_bytes",
                "Memory information field Buffers_bytes.",
                Some(mem.buffers),
            ),
            (
                "node_memory_Cached_bytes",
                "Memory information field Cached_bytes.",
                Some(mem.cached),
            ),
            (
                "node_memory_SwapTotal_bytes",
                "Memory information field SwapTotal_bytes.",
                Some(mem.swap_total),
            ),
            (
                "node_memory_SwapFree_bytes",
                "Memory information field SwapFree_bytes.",
                Some(mem.swap_free),
            ),
        ];
        for (name, help, value) in gauges {
            if let Some(value) = value {
                e.single(name, "gauge", help, value as f64);
            }
        }
    }

    if !m.disks.is_empty() {
        type Pick = fn(&vigil_event::DiskUsage) -> Option<u64>;
        let families: [(&str, &str, Pick); 3] = [
            (
                "node_filesystem_avail_bytes",
                "Filesystem space available to non-root users in bytes.",
                |d| Some(d.available_bytes),
            ),
            ("node_filesystem_free_bytes", "Filesystem free space in bytes.", |d| d.free_bytes),
            ("node_filesystem_size_bytes", "Filesystem size in bytes.", |d| Some(d.total_bytes)),
        ];
        for (name, help, pick) in families {
            e.family(name, "gauge", help);
            for disk in &m.disks {
                let Some(value) = pick(disk) else { continue };
                let device = disk.device.as_deref().unwrap_or("");
                e.sample(
                    name,
                    &[("device", device), ("fstype", &disk.fs), ("mountpoint", &disk.mount)],
                    value as f64,
                );
            }
        }
    }
    if !system.failed_mounts.is_empty() {
        e.family(
            "vigil_filesystem_probe_failed",
            "gauge",
            "Filesystems whose statvfs failed or passed the collector's deadline.",
        );
        for mount in &system.failed_mounts {
            e.sample("vigil_filesystem_probe_failed", &[("mountpoint", mount)], 1.0);
        }
    }
    if !m.disk_io.is_empty() {
        e.family(
            "node_disk_read_bytes_total",
            "counter",
            "The total number of bytes read successfully.",
        );
        for disk in &m.disk_io {
            e.sample(
                "node_disk_read_bytes_total",
                &[("device", &disk.device)],
                disk.read_bytes as f64,
            );
        }
        e.family(
            "node_disk_written_bytes_total",
            "counter",
            "The total number of bytes written successfully.",
        );
        for disk in &m.disk_io {
            e.sample(
                "node_disk_written_bytes_total",
                &[("device", &disk.device)],
                disk.written_bytes as f64,
            );
        }
    }

    if !network.interfaces.is_empty() {
        type Pick = fn(&vigil_event::InterfaceStats) -> u64;
        let families: [(&str, &str, Pick); 8] = [
            ("node_network_receive_bytes_total", "Network device statistic receive_bytes.", |i| {
                i.rx_bytes
            }),
            ("node_network_receive_drop_total", "Network device statistic receive_drop.", |i| {
                i.rx_dropped
            }),
            ("node_network_receive_errs_total", "Network device statistic receive_errs.", |i| {
                i.rx_errors
            }),
            (
                "node_network_receive_packets_total",
                "Network device statistic receive_packets.",
                |i| i.rx_packets,
            ),
            (
                "node_network_transmit_bytes_total",
                "Network device statistic transmit_bytes.",
                |i| i.tx_bytes,
            ),
            ("node_network_transmit_drop_total", "Network device statistic transmit_drop.", |i| {
                i.tx_dropped
            }),
            ("node_network_transmit_errs_total", "Network device statistic transmit_errs.", |i| {
                i.tx_errors
            }),
            (
                "node_network_transmit_packets_total",
                "Network device statistic transmit_packets.",
                |i| i.tx_packets,
            ),
        ];
        for (name, help, pick) in families {
            e.family(name, "counter", help);
            for interface in &network.interfaces {
                e.sample(name, &[("device", &interface.name)], pick(interface) as f64);
            }
        }
    }
    if !network.tcp_states.is_empty() {
        e.family("node_tcp_connection_states", "gauge", "Number of connection states.");
        for (state, count) in &network.tcp_states {
            let state = state.to_ascii_lowercase();
            e.sample("node_tcp_connection_states", &[("state", &state)], *count as f64);
        }
    }
    e.out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped_and_integers_print_plainly() {
        assert_eq!(escape(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(number(3.0), "3");
        assert_eq!(number(0.25), "0.25");
        assert_eq!(number(1e20), "100000000000000000000");
    }
}
