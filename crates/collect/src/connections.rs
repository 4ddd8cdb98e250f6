//! The connection collector: every TCP and UDP socket (IPv4 and IPv6) with its owning process.
//!
//! Sockets come from `net/tcp`, `net/tcp6`, `net/udp` and `net/udp6` (the `procfs` parsers); the
//! owner is found by walking every process's `fd` links for `socket:[inode]`. A socket whose
//! owner cannot be seen (another user's process, when not root) has no pid.

use std::{
    collections::{HashMap, HashSet},
    net::{IpAddr, SocketAddr},
};

use procfs::{
    net::{TcpNetEntries, TcpState, UdpNetEntries, UdpState},
    process::FDTarget,
};
use vigil_event::ConnectionInfo;

use crate::{ProcRoot, tcp_state_name};

/// Well-known services and their ports, for `--service`.
pub const SERVICES: &[(&str, &[u16])] = &[
    ("ftp", &[20, 21]),
    ("ssh", &[22]),
    ("telnet", &[23]),
    ("smtp", &[25, 465, 587]),
    ("dns", &[53]),
    ("http", &[80, 8080]),
    ("pop3", &[110, 995]),
    ("imap", &[143, 993]),
    ("ldap", &[389, 636]),
    ("https", &[443, 8443]),
    ("smb", &[139, 445]),
    ("mysql", &[3306]),
    ("rdp", &[3389]),
    ("nats", &[4222]),
    ("postgresql", &[5432]),
    ("amqp", &[5672]),
    ("redis", &[6379]),
    ("prometheus", &[9090]),
    ("kafka", &[9092]),
    ("node_exporter", &[9100]),
    ("elasticsearch", &[9200, 9300]),
    ("memcached", &[11211]),
    ("mongodb", &[27017]),
];

/// The ports of a named service (`ssh`, `https`, …), or `None` for an unknown name.
pub fn service_ports(name: &str) -> Option<&'static [u16]> {
    let name = name.to_ascii_lowercase();
    let name = match name.as_str() {
        "postgres" => "postgresql",
        "mariadb" => "mysql",
        other => other,
    };
    SERVICES.iter().find(|(it, _)| *it == name).map(|(_, ports)| *ports)
}

/// State name of a UDP socket: connected, or bound and unconnected (`ss` says UNCONN).
fn udp_state_name(state: &UdpState) -> &'static str {
    match state {
        UdpState::Established => "ESTABLISHED",
        UdpState::Close => "UNCONN",
    }
}

/// Which sockets to keep; every set condition must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectionFilter {
    /// Local or remote port.
    pub port: Option<u16>,
    /// Local or remote address.
    pub ip: Option<IpAddr>,
    /// Local or remote port among the service's.
    pub service: Option<&'static [u16]>,
    /// State name, ignoring case.
    pub state: Option<String>,
    /// Only listening sockets: TCP LISTEN and unconnected UDP.
    pub listening: bool,
}

impl ConnectionFilter {
    /// Whether `it` passes.
    pub fn matches(&self, it: &ConnectionInfo) -> bool {
        let either = |f: &dyn Fn(&SocketAddr) -> bool| f(&it.local) || f(&it.remote);
        let unmapped = |ip: IpAddr| match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.port.is_none_or(|port| either(&|a| a.port() == port))
            && self.ip.is_none_or(|ip| either(&|a| unmapped(a.ip()) == unmapped(ip)))
            && self.service.is_none_or(|ports| either(&|a| ports.contains(&a.port())))
            && self.state.as_deref().is_none_or(|state| it.state.eq_ignore_ascii_case(state))
            && (!self.listening || is_listening(it))
    }
}

/// Whether a socket waits for peers: TCP in LISTEN, or UDP bound and unconnected.
pub fn is_listening(it: &ConnectionInfo) -> bool {
    it.state == "LISTEN" || it.state == "UNCONN"
}

/// Reads sockets and their owners.
///
/// Finding owners means reading the `fd` links of every process, the dearest part of a cycle.
/// So the collector remembers owners between calls and walks the links again only when a
/// socket appears whose owner it does not know (or whose remembered owner has exited); a socket
/// whose owner a full walk could not see is remembered as such, so it does not cause a walk on
/// every call.
#[derive(Debug, Clone)]
pub struct ConnectionCollector {
    root: ProcRoot,
    owners: HashMap<u64, (u32, Option<String>)>,
    unowned: HashSet<u64>,
}

impl ConnectionCollector {
    /// A collector reading `root`.
    pub fn new(root: ProcRoot) -> ConnectionCollector {
        ConnectionCollector { root, owners: HashMap::new(), unowned: HashSet::new() }
    }

    /// Every socket, with its owner where visible.
    pub fn collect(&mut self) -> Vec<ConnectionInfo> {
        let mut sockets = self.sockets();
        let inodes: HashSet<u64> = sockets.iter().filter_map(|it| it.inode).collect();
        self.owners.retain(|inode, (pid, _)| {
            inodes.contains(inode) && self.root.join(pid.to_string()).exists()
        });
        self.unowned.retain(|inode| inodes.contains(inode));
        let unknown =
            inodes.iter().any(|it| !self.owners.contains_key(it) && !self.unowned.contains(it));
        if unknown {
            self.owners = self.socket_owners();
            self.owners.retain(|inode, _| inodes.contains(inode));
            self.unowned =
                inodes.iter().filter(|it| !self.owners.contains_key(it)).copied().collect();
        }
        for it in &mut sockets {
            if let Some((pid, name)) = it.inode.and_then(|inode| self.owners.get(&inode)) {
                it.pid = Some(*pid);
                it.process_name = name.clone();
            }
        }
        sockets
    }

    /// Every socket, without owners.
    pub fn sockets(&self) -> Vec<ConnectionInfo> {
        let mut out = Vec::new();
        for (file, protocol) in [("net/tcp", "tcp"), ("net/tcp6", "tcp6")] {
            if self.root.is_live()
                && let Ok(sockets) = crate::sock_diag::tcp_sockets(protocol == "tcp6")
            {
                out.extend(sockets.into_iter().filter_map(|it| {
                    let state = TcpState::from_u8(it.state)?;
                    Some(ConnectionInfo {
                        protocol: protocol.to_owned(),
                        local: it.local,
                        remote: it.remote,
                        state: tcp_state_name(&state).to_owned(),
                        inode: (it.inode != 0 && state != TcpState::TimeWait).then_some(it.inode),
                        pid: None,
                        process_name: None,
                    })
                }));
                continue;
            }
            let Some(entries) = self.root.read_si::<TcpNetEntries>(file) else { continue };
            out.extend(entries.0.into_iter().map(|it| ConnectionInfo {
                protocol: protocol.to_owned(),
                local: it.local_address,
                remote: it.remote_address,
                state: tcp_state_name(&it.state).to_owned(),
                // TIME_WAIT sockets belong to no one: their inode is 0.
                inode: (it.inode != 0 && it.state != TcpState::TimeWait).then_some(it.inode),
                pid: None,
                process_name: None,
            }));
        }
        for (file, protocol) in [("net/udp", "udp"), ("net/udp6", "udp6")] {
            let Some(entries) = self.root.read_si::<UdpNetEntries>(file) else { continue };
            out.extend(entries.0.into_iter().map(|it| ConnectionInfo {
                protocol: protocol.to_owned(),
                local: it.local_address,
                remote: it.remote_address,
                state: udp_state_name(&it.state).to_owned(),
                inode: (it.inode != 0).then_some(it.inode),
                pid: None,
                process_name: None,
            }));
        }
        out
    }

    /// Socket inode → (pid, process name), over every process whose `fd` links are readable.
    pub fn socket_owners(&self) -> HashMap<u64, (u32, Option<String>)> {
        let mut owners = HashMap::new();
        let Ok(all) = procfs::process::all_processes_with_root(self.root.path()) else {
            return owners;
        };
        for process in all.filter_map(Result::ok) {
            let Ok(fds) = process.fd() else { continue };
            let mut name: Option<Option<String>> = None;
            for fd in fds.filter_map(Result::ok) {
                if let FDTarget::Socket(inode) = fd.target {
                    let name = name.get_or_insert_with(|| process.stat().ok().map(|it| it.comm));
                    let Ok(pid) = u32::try_from(process.pid) else { continue };
                    owners.entry(inode).or_insert((pid, name.clone()));
                }
            }
        }
        owners
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture;

    #[test]
    fn debian12_sockets_are_joined_to_their_owners() {
        let mut collector = ConnectionCollector::new(fixture("debian12-6.18"));
        let all = collector.collect();
        assert_eq!(collector.collect(), all, "remembered owners give the same answer");
        let listener = all
            .iter()
            .find(|it| it.pid == Some(2900))
            .unwrap_or_else(|| panic!("the fixture's python listener is owned by 2900: {all:?}"));
        assert_eq!(listener.protocol, "tcp");
        assert_eq!(listener.state, "LISTEN");
        assert_eq!(listener.local.ip(), IpAddr::from([127, 0, 0, 1]));
        assert_eq!(listener.process_name.as_deref(), Some("sshd"));
        let others = all.iter().filter(|it| it.pid.is_some() && it.pid != Some(2900)).count();
        assert_eq!(others, 0, "no other captured process owns a socket");
        let port = listener.local.port();
        let filter = ConnectionFilter { port: Some(port), ..ConnectionFilter::default() };
        assert_eq!(all.iter().filter(|it| filter.matches(it)).count(), 1);
    }

    #[test]
    fn old_kernel_sockets_and_filters() {
        let all = ConnectionCollector::new(fixture("handmade-2.6.32")).collect();
        // (No process in this fixture: every socket is remembered as unowned.)
        assert_eq!(all.len(), 5);
        assert!(all.iter().all(|it| it.pid.is_none()), "no processes in this fixture");
        let count = |filter: ConnectionFilter| all.iter().filter(|it| filter.matches(it)).count();
        let ssh = ConnectionFilter { service: service_ports("ssh"), ..Default::default() };
        assert_eq!(count(ssh), 3, "the listener, an established session and a TIME_WAIT");
        let listening = ConnectionFilter { listening: true, ..Default::default() };
        assert_eq!(count(listening), 3);
        let ip = ConnectionFilter { ip: "10.0.0.3".parse().ok(), ..Default::default() };
        assert_eq!(count(ip), 1);
        let state = ConnectionFilter { state: Some("time_wait".into()), ..Default::default() };
        assert_eq!(count(state), 1);
        let pg = ConnectionFilter { service: service_ports("postgres"), ..Default::default() };
        assert_eq!(count(pg), 1);
        let time_wait = all.iter().find(|it| it.state == "TIME_WAIT").unwrap();
        assert_eq!(time_wait.inode, None);
        assert_eq!(service_ports("gopher"), None);
    }
}
