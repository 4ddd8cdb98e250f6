//! The network collector: interface counters, TCP sockets by state, listening ports.
//!
//! Reads `net/dev`, `net/tcp` and `net/tcp6` under the [`ProcRoot`] with the `procfs` parsers.
//! Totals leave out loopback, whose traffic never leaves the host. A missing file (no IPv6 on
//! the host) leaves its part empty.

use std::collections::{BTreeMap, BTreeSet};

use procfs::net::{InterfaceDeviceStatus, TcpNetEntries, TcpState};
use vigil_event::{ConnectionInfo, InterfaceStats, NetworkMetrics};

use crate::ProcRoot;

/// The kernel's name of a TCP state (as `ss` and `netstat` print it).
pub fn tcp_state_name(state: &TcpState) -> &'static str {
    match state {
        TcpState::Established => "ESTABLISHED",
        TcpState::SynSent => "SYN_SENT",
        TcpState::SynRecv => "SYN_RECV",
        TcpState::FinWait1 => "FIN_WAIT1",
        TcpState::FinWait2 => "FIN_WAIT2",
        TcpState::TimeWait => "TIME_WAIT",
        TcpState::Close => "CLOSE",
        TcpState::CloseWait => "CLOSE_WAIT",
        TcpState::LastAck => "LAST_ACK",
        TcpState::Listen => "LISTEN",
        TcpState::Closing => "CLOSING",
        TcpState::NewSynRecv => "NEW_SYN_RECV",
    }
}

/// Whether an interface is loopback, by the name the kernel gives it.
pub fn is_loopback(name: &str) -> bool {
    name == "lo"
}

/// Samples network counters.
#[derive(Debug, Clone)]
pub struct NetworkCollector {
    root: ProcRoot,
}

impl NetworkCollector {
    /// A collector reading `root`.
    pub fn new(root: ProcRoot) -> NetworkCollector {
        NetworkCollector { root }
    }

    /// Takes one sample.
    pub fn collect(&self) -> NetworkMetrics {
        let mut metrics = self.interfaces();
        let mut tcp = Vec::new();
        for (file, v6) in [("net/tcp", false), ("net/tcp6", true)] {
            if self.root.is_live()
                && let Ok(sockets) = crate::sock_diag::tcp_sockets(v6)
            {
                tcp.extend(
                    sockets
                        .into_iter()
                        .filter_map(|it| Some((v6, TcpState::from_u8(it.state)?, it.local.port()))),
                );
                continue;
            }
            let Some(entries) = self.root.read_si::<TcpNetEntries>(file) else { continue };
            tcp.extend(entries.0.into_iter().map(|it| (v6, it.state, it.local_address.port())));
        }
        count_tcp(&mut metrics, tcp);
        metrics
    }

    /// Interface counters and totals only.
    fn interfaces(&self) -> NetworkMetrics {
        let mut metrics = NetworkMetrics::default();
        if let Some(devices) = self.root.read::<InterfaceDeviceStatus>("net/dev") {
            let mut interfaces: Vec<InterfaceStats> = devices
                .0
                .into_values()
                .map(|it| InterfaceStats {
                    name: it.name,
                    rx_bytes: it.recv_bytes,
                    tx_bytes: it.sent_bytes,
                    rx_packets: it.recv_packets,
                    tx_packets: it.sent_packets,
                    rx_errors: it.recv_errs,
                    tx_errors: it.sent_errs,
                    rx_dropped: it.recv_drop,
                    tx_dropped: it.sent_drop,
                })
                .collect();
            interfaces.sort_by(|a, b| a.name.cmp(&b.name));
            let mut total = InterfaceStats { name: "total".into(), ..InterfaceStats::default() };
            for it in interfaces.iter().filter(|it| !is_loopback(&it.name)) {
                total.rx_bytes = total.rx_bytes.saturating_add(it.rx_bytes);
                total.tx_bytes = total.tx_bytes.saturating_add(it.tx_bytes);
                total.rx_packets = total.rx_packets.saturating_add(it.rx_packets);
                total.tx_packets = total.tx_packets.saturating_add(it.tx_packets);
                total.rx_errors = total.rx_errors.saturating_add(it.rx_errors);
                total.tx_errors = total.tx_errors.saturating_add(it.tx_errors);
                total.rx_dropped = total.rx_dropped.saturating_add(it.rx_dropped);
                total.tx_dropped = total.tx_dropped.saturating_add(it.tx_dropped);
            }
            metrics.totals = Some(total);
            metrics.interfaces = interfaces;
        }
        metrics
    }

    /// Like [`collect`](Self::collect), but counting TCP states from sockets the caller has
    /// already read (with [`ConnectionCollector`](crate::ConnectionCollector)), so a cycle that
    /// runs both reads the TCP tables once: on a host with large hash tables each read of
    /// `net/tcp` costs about a millisecond, however few sockets there are.
    pub fn collect_with_sockets(&self, sockets: &[ConnectionInfo]) -> NetworkMetrics {
        let mut metrics = self.interfaces();
        let tcp = sockets.iter().filter(|it| it.protocol.starts_with("tcp")).filter_map(|it| {
            let state = TcpState::from_u8(tcp_state_code(&it.state)?)?;
            Some((it.protocol == "tcp6", state, it.local.port()))
        });
        count_tcp(&mut metrics, tcp);
        metrics
    }
}

/// The kernel's code of a TCP state name, the inverse of [`tcp_state_name`].
fn tcp_state_code(name: &str) -> Option<u8> {
    (1..=12u8).find(|code| TcpState::from_u8(*code).is_some_and(|it| tcp_state_name(&it) == name))
}

fn count_tcp(metrics: &mut NetworkMetrics, tcp: impl IntoIterator<Item = (bool, TcpState, u16)>) {
    let mut listening = BTreeSet::new();
    for (v6, state, port) in tcp {
        let states = if v6 { &mut metrics.tcp6_states } else { &mut metrics.tcp4_states };
        *states.entry(tcp_state_name(&state).to_owned()).or_insert(0) += 1;
        if state == TcpState::Listen {
            listening.insert(port);
        }
    }
    metrics.tcp_states = merge(&metrics.tcp4_states, &metrics.tcp6_states);
    metrics.listening_ports = listening.into_iter().collect();
}

fn merge(a: &BTreeMap<String, u64>, b: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    let mut out = a.clone();
    for (state, count) in b {
        *out.entry(state.clone()).or_insert(0) += count;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture;

    #[test]
    fn debian12_interfaces_states_and_listeners() {
        let m = NetworkCollector::new(fixture("debian12-6.18")).collect();
        let names: Vec<&str> = m.interfaces.iter().map(|it| it.name.as_str()).collect();
        assert_eq!(names, ["eth0", "ifb0", "ifb1", "lo"]);
        let eth0 = &m.interfaces[0];
        assert_eq!((eth0.rx_bytes, eth0.rx_packets, eth0.tx_bytes), (156_847_096, 8763, 511_579));
        let totals = m.totals.unwrap();
        assert_eq!(totals.rx_bytes, 156_847_096, "loopback is not in the totals");
        assert_eq!(m.tcp4_states.get("LISTEN"), Some(&2));
        assert!(m.listening_ports.contains(&2024));
    }

    #[test]
    fn old_kernel_counts_states_per_family() {
        let m = NetworkCollector::new(fixture("handmade-2.6.32")).collect();
        let totals = m.totals.unwrap();
        assert_eq!((totals.rx_bytes, totals.tx_errors, totals.rx_dropped), (520_000, 3, 3));
        assert_eq!(m.tcp4_states.get("LISTEN"), Some(&2));
        assert_eq!(m.tcp4_states.get("ESTABLISHED"), Some(&1));
        assert_eq!(m.tcp4_states.get("TIME_WAIT"), Some(&1));
        assert_eq!(m.tcp6_states.get("LISTEN"), Some(&1));
        assert_eq!(m.tcp_states.get("LISTEN"), Some(&3));
        assert_eq!(m.listening_ports, [22, 80, 5432]);
    }

    #[test]
    fn states_from_already_read_sockets_match_a_fresh_read() {
        for name in ["debian12-6.18", "handmade-2.6.32"] {
            let collector = NetworkCollector::new(fixture(name));
            let sockets = crate::ConnectionCollector::new(fixture(name)).sockets();
            assert_eq!(collector.collect_with_sockets(&sockets), collector.collect(), "{name}");
        }
        assert_eq!(tcp_state_code("TIME_WAIT"), Some(6));
        assert_eq!(tcp_state_code("UNCONN"), None);
    }

    #[test]
    fn a_missing_tree_gives_an_empty_sample() {
        let m = NetworkCollector::new(ProcRoot::at("/nonexistent/proc")).collect();
        assert!(m.interfaces.is_empty() && m.tcp_states.is_empty() && m.totals.is_none());
    }
}
