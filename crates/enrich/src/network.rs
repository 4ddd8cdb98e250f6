//! The network tracer (seed 001 `network_tracer`): the host's sockets involved in an event —
//! the connections of an address or a port, listening ports, statistics by state, the
//! connections of a service and their owning processes.
//!
//! Sockets are read by vigil-collect's [`ConnectionCollector`] (netlink `sock_diag`, else
//! `/proc/net`), never re-implemented here. Reading every socket and its owner costs a walk of
//! `/proc`, so the tracer keeps one snapshot and refreshes it at most every `refresh`.

use std::{
    collections::BTreeMap,
    net::IpAddr,
    sync::Mutex,
    time::{Duration, Instant},
};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use vigil_collect::{ConnectionCollector, ConnectionFilter, ProcRoot, is_listening, service_ports};
use vigil_core::Enricher;
use vigil_event::{ConnectionInfo, Event, Payload};

/// `[tracers.network]`: attach the host's connections of an event's address.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct NetworkTracerConfig {
    /// Run the tracer (it reads every socket of the host, at most once per `refresh`).
    pub enabled: bool,
    /// How old the socket snapshot may get before it is read again.
    #[serde(with = "vigil_core::duration")]
    #[schemars(with = "String")]
    pub refresh: Duration,
    /// Most connections listed in one event's trace.
    pub max_listed: usize,
}

impl Default for NetworkTracerConfig {
    fn default() -> Self {
        NetworkTracerConfig { enabled: false, refresh: Duration::from_secs(5), max_listed: 8 }
    }
}

impl NetworkTracerConfig {
    /// The tracer reading `root`, or `None` when disabled.
    pub fn build(&self, root: ProcRoot) -> Option<NetworkTracer> {
        self.enabled.then(|| NetworkTracer::new(root, self.refresh, self.max_listed))
    }
}

/// Queries over one socket snapshot.
#[derive(Debug, Clone, Default)]
pub struct Sockets {
    /// Every socket with its owner where visible.
    pub all: Vec<ConnectionInfo>,
}

impl Sockets {
    /// Reads every socket of `root` now.
    pub fn read(root: ProcRoot) -> Sockets {
        Sockets { all: ConnectionCollector::new(root).collect() }
    }

    fn filtered(&self, filter: &ConnectionFilter) -> Vec<&ConnectionInfo> {
        self.all.iter().filter(|it| filter.matches(it)).collect()
    }

    /// Sockets whose local or remote address is `ip` (mapped addresses match their IPv4).
    pub fn of_ip(&self, ip: IpAddr) -> Vec<&ConnectionInfo> {
        self.filtered(&ConnectionFilter { ip: Some(ip), ..ConnectionFilter::default() })
    }

    /// Sockets whose local or remote port is `port`.
    pub fn of_port(&self, port: u16) -> Vec<&ConnectionInfo> {
        self.filtered(&ConnectionFilter { port: Some(port), ..ConnectionFilter::default() })
    }

    /// Sockets on a named service's ports (`ssh`, `https`, `postgresql`, …); `None` for an
    /// unknown service.
    pub fn of_service(&self, name: &str) -> Option<Vec<&ConnectionInfo>> {
        let ports = service_ports(name)?;
        Some(self.filtered(&ConnectionFilter { service: Some(ports), ..Default::default() }))
    }

    /// Listening ports (TCP LISTEN, unconnected UDP), sorted and unique.
    pub fn listening_ports(&self) -> Vec<u16> {
        let mut ports: Vec<u16> =
            self.all.iter().filter(|it| is_listening(it)).map(|it| it.local.port()).collect();
        ports.sort_unstable();
        ports.dedup();
        ports
    }

    /// Number of sockets per state.
    pub fn by_state(&self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for it in &self.all {
            *out.entry(it.state.clone()).or_insert(0) += 1;
        }
        out
    }

    /// The owning processes of `sockets`: pid → name, sorted by pid.
    pub fn owners<'a>(
        sockets: impl IntoIterator<Item = &'a ConnectionInfo>,
    ) -> BTreeMap<u32, Option<String>> {
        sockets.into_iter().filter_map(|it| Some((it.pid?, it.process_name.clone()))).collect()
    }
}

/// One connection as a trace lists it.
pub fn connection_json(it: &ConnectionInfo) -> serde_json::Value {
    json!({
        "protocol": it.protocol,
        "local": it.local.to_string(),
        "remote": it.remote.to_string(),
        "state": it.state,
        "pid": it.pid,
        "process": it.process_name,
    })
}

/// The network tracer: attaches the host's sockets of a log event's address.
pub struct NetworkTracer {
    root: ProcRoot,
    refresh: Duration,
    max_listed: usize,
    snapshot: Mutex<Option<(Instant, std::sync::Arc<Sockets>)>>,
}

impl std::fmt::Debug for NetworkTracer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetworkTracer").field("refresh", &self.refresh).finish_non_exhaustive()
    }
}

impl NetworkTracer {
    /// A tracer reading `root`, refreshing its snapshot at most every `refresh`.
    pub fn new(root: ProcRoot, refresh: Duration, max_listed: usize) -> NetworkTracer {
        NetworkTracer { root, refresh, max_listed, snapshot: Mutex::new(None) }
    }

    /// The current snapshot (read again when older than `refresh`).
    pub fn sockets(&self) -> std::sync::Arc<Sockets> {
        let mut guard = self.snapshot.lock().unwrap_or_else(|it| it.into_inner());
        if let Some((at, sockets)) = &*guard
            && at.elapsed() < self.refresh
        {
            return sockets.clone();
        }
        let sockets = std::sync::Arc::new(Sockets::read(self.root.clone()));
        *guard = Some((Instant::now(), sockets.clone()));
        sockets
    }

    /// What the tracer records for `ip`.
    pub fn trace_ip(&self, ip: IpAddr) -> serde_json::Value {
        let sockets = self.sockets();
        let of_ip = sockets.of_ip(ip);
        let owners = Sockets::owners(of_ip.iter().copied());
        json!({
            "connections": of_ip.len(),
            "listed": of_ip.iter().take(self.max_listed).map(|it| connection_json(it)).collect::<Vec<_>>(),
            "owners": owners.iter().map(|(pid, name)| json!({"pid": pid, "name": name})).collect::<Vec<_>>(),
        })
    }
}

impl Enricher for NetworkTracer {
    fn name(&self) -> &str {
        "network"
    }

    fn wants(&self, event: &Event) -> bool {
        matches!(&event.payload, Payload::Log(log) if log.ip.is_some())
    }

    fn enrich(&self, event: &mut Event, _extra: &mut Vec<Event>) {
        let Payload::Log(log) = &event.payload else { return };
        let Some(ip) = log.ip else { return };
        let found = self.trace_ip(ip);
        crate::record(&mut event.enrichment, "network", found);
    }
}

#[cfg(test)]
mod tests {
    use std::net::{TcpListener, TcpStream};

    use super::*;

    #[test]
    fn finds_a_real_loopback_connection_and_its_owner() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let _client = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (_server, _) = listener.accept().unwrap();
        let sockets = Sockets::read(ProcRoot::live());
        let of_port = sockets.of_port(port);
        assert!(of_port.len() >= 3, "listener + both ends: {of_port:?}");
        assert!(sockets.listening_ports().contains(&port));
        assert!(sockets.by_state().get("ESTABLISHED").copied().unwrap_or(0) >= 2);
        let owners = Sockets::owners(of_port.iter().copied());
        assert!(owners.contains_key(&std::process::id()), "{owners:?}");
        let tracer = NetworkTracer::new(ProcRoot::live(), Duration::from_secs(60), 4);
        let found = tracer.trace_ip("127.0.0.1".parse().unwrap());
        assert!(found["connections"].as_u64().unwrap() >= 3);
        assert!(found["listed"].as_array().unwrap().len() <= 4);
        assert!(sockets.of_service("no-such-service").is_none());
        assert!(sockets.of_service("ssh").is_some());
    }
}
