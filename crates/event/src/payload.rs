//! Typed payloads, one per [`EventKind`].
//!
//! Payload structs carry what their producer knows and nothing else: fields a collector could not
//! read are `None` (collectors degrade to missing values, never to a crash) and are left out of the
//! JSON. Later issues add fields; they never rename or remove one.

use std::net::{IpAddr, SocketAddr};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{AuditRecord, EventKind, Finding, Map, Value};

/// The typed content of an event. The variant is the event's kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "payload", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Payload {
    /// Host resources.
    SystemMetric(SystemMetrics),
    /// Network interfaces and TCP states.
    NetworkMetric(NetworkMetrics),
    /// A process snapshot, start or exit.
    Process(ProcessEvent),
    /// One socket.
    Connection(ConnectionInfo),
    /// One parsed log line.
    Log(LogEvent),
    /// A detector's conclusion.
    Finding(Finding),
    /// A record with a guaranteed field list.
    Audit(AuditRecord),
    /// One record from a security tool's API.
    ApiRecord(ApiRecord),
    /// The agent's own health.
    AgentStatus(AgentStatus),
    /// A ban requested, decided, refused or lifted.
    Ban(crate::Ban),
}

impl Payload {
    /// The kind of this payload.
    pub fn kind(&self) -> EventKind {
        match self {
            Payload::SystemMetric(_) => EventKind::SystemMetric,
            Payload::NetworkMetric(_) => EventKind::NetworkMetric,
            Payload::Process(_) => EventKind::Process,
            Payload::Connection(_) => EventKind::Connection,
            Payload::Log(_) => EventKind::Log,
            Payload::Finding(_) => EventKind::Finding,
            Payload::Audit(_) => EventKind::Audit,
            Payload::ApiRecord(_) => EventKind::ApiRecord,
            Payload::AgentStatus(_) => EventKind::AgentStatus,
            Payload::Ban(_) => EventKind::Ban,
        }
    }
}

/// A sample of host resources (SPEC §2, system collector).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SystemMetrics {
    /// Overall CPU busy percent since the previous sample.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_percent: Option<f64>,
    /// Busy percent per CPU since the previous sample.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub per_cpu_percent: Vec<f64>,
    /// Number of online CPUs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_count: Option<u32>,
    /// Total memory in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_total_bytes: Option<u64>,
    /// Available memory in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_available_bytes: Option<u64>,
    /// Total swap in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub swap_total_bytes: Option<u64>,
    /// Free swap in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub swap_free_bytes: Option<u64>,
    /// Load averages over 1, 5 and 15 minutes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load: Option<[f64; 3]>,
    /// Usage of each mounted filesystem.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub disks: Vec<DiskUsage>,
    /// Cumulative I/O of each whole disk.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub disk_io: Vec<DiskIo>,
    /// Parts of the sample that failed or passed their deadline, e.g. `filesystem:/mnt/nfs` for a
    /// hung mount; their values are missing from this sample.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failed_collectors: Vec<String>,
}

/// Usage of one mounted filesystem.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DiskUsage {
    /// Mount point.
    pub mount: String,
    /// Filesystem type.
    pub fs: String,
    /// Size in bytes.
    pub total_bytes: u64,
    /// Bytes available to unprivileged users.
    pub available_bytes: u64,
    /// The mounted device (`/dev/vda1`, `server:/export`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// Free bytes, including those reserved for root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub free_bytes: Option<u64>,
}

/// Cumulative I/O of one whole disk.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DiskIo {
    /// Device name (sda, nvme0n1, …).
    pub device: String,
    /// Bytes read since boot.
    pub read_bytes: u64,
    /// Bytes written since boot.
    pub written_bytes: u64,
}

/// A sample of network counters (SPEC §2, network collector).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NetworkMetrics {
    /// Counters of each interface, loopback included (totals exclude it).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<InterfaceStats>,
    /// TCP sockets by state name (IPv4 and IPv6 together).
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub tcp_states: std::collections::BTreeMap<String, u64>,
    /// Ports in the LISTEN state.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub listening_ports: Vec<u16>,
    /// IPv4 TCP sockets by state name.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub tcp4_states: std::collections::BTreeMap<String, u64>,
    /// IPv6 TCP sockets by state name.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub tcp6_states: std::collections::BTreeMap<String, u64>,
    /// Sums over every interface but loopback (its `name` is `total`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub totals: Option<InterfaceStats>,
}

/// Cumulative counters of one network interface.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InterfaceStats {
    /// Interface name.
    pub name: String,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Packets received.
    pub rx_packets: u64,
    /// Packets sent.
    pub tx_packets: u64,
    /// Receive errors.
    pub rx_errors: u64,
    /// Transmit errors.
    pub tx_errors: u64,
    /// Received packets dropped.
    pub rx_dropped: u64,
    /// Sent packets dropped.
    pub tx_dropped: u64,
}

/// Which moment of a process's life an event describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProcessPhase {
    /// A periodic observation of a running process.
    Snapshot,
    /// The process was first seen.
    Start,
    /// The process is gone.
    Exit,
}

/// A process event: its phase and what was known of the process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessEvent {
    /// Snapshot, start or exit.
    pub phase: ProcessPhase,
    /// The process.
    pub process: ProcessInfo,
}

/// What is known of one process. Everything but the pid may be missing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProcessInfo {
    /// Process id.
    pub pid: u32,
    /// Parent process id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ppid: Option<u32>,
    /// Short name (comm).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Command line, one element per argument.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cmdline: Vec<String>,
    /// Path of the executable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exe: Option<String>,
    /// State letter (R, S, D, Z, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Owner user id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    /// Number of threads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threads: Option<u32>,
    /// CPU time in user mode, seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_user_seconds: Option<f64>,
    /// CPU time in kernel mode, seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_system_seconds: Option<f64>,
    /// CPU percent since the previous sample.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_percent: Option<f64>,
    /// Virtual memory size in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub virtual_bytes: Option<u64>,
    /// Resident set size in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resident_bytes: Option<u64>,
    /// Open file descriptors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub open_fds: Option<u32>,
    /// Start time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    /// Bytes read from storage.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_bytes: Option<u64>,
    /// Bytes written to storage.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub write_bytes: Option<u64>,
    /// Read system calls.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_syscalls: Option<u64>,
    /// Write system calls.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub write_syscalls: Option<u64>,
    /// Voluntary context switches.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub voluntary_context_switches: Option<u64>,
    /// Involuntary context switches.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub involuntary_context_switches: Option<u64>,
    /// Process ids of the direct children.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<u32>,
    /// Whether the executable file was deleted after the process started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exe_deleted: Option<bool>,
    /// Anything else the collector knows (I/O counters, context switches, …).
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub extra: Map,
}

/// One socket, from /proc/net/{tcp,tcp6,udp,udp6}.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectionInfo {
    /// `tcp`, `tcp6`, `udp` or `udp6`.
    pub protocol: String,
    /// Local address and port.
    pub local: SocketAddr,
    /// Remote address and port.
    pub remote: SocketAddr,
    /// State name (ESTABLISHED, LISTEN, …).
    pub state: String,
    /// Socket inode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inode: Option<u64>,
    /// Owning process id, when it could be found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// Owning process name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process_name: Option<String>,
}

/// One parsed log line (SPEC §3). `action` uses the generator's event names
/// (`failed_password`, `accepted_password`, `invalid_user`, …) so results compare line by line.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LogEvent {
    /// The format or program that produced the line (`sshd`, `nginx_access`, `fail2ban`, …).
    pub source: String,
    /// Timestamp written in the line, when it had one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<DateTime<Utc>>,
    /// Level keyword from the line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level: Option<String>,
    /// What happened, as a snake_case name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// Remote address involved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<IpAddr>,
    /// User name involved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Remote port involved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Service (program or jail) the line is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// Process id written in the line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// The message part of the line.
    pub message: String,
    /// The whole raw line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw: Option<String>,
    /// Offset from UTC, in seconds, of the zone the timestamp was written in (or completed with,
    /// for zone-less timestamps), so the local time can be shown as it was logged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub utc_offset_seconds: Option<i32>,
    /// Host name written in the line (the syslog HOSTNAME field).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// The address exactly as written, when `ip` was normalised from it (an IPv4-mapped IPv6
    /// address such as `::ffff:203.0.113.9` becomes the IPv4 address in `ip`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip_raw: Option<String>,
    /// Authentication method (`password`, `publickey`) or HTTP request method (`GET`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Destination address (firewall lines).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dst: Option<IpAddr>,
    /// Destination port (firewall lines).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dport: Option<u16>,
    /// Transport protocol (`TCP`, `UDP`, `ICMP`, …) or HTTP protocol version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// HTTP status code (web server and framework logs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Request path (web server and framework logs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Where the line was read: filled by the tailer, absent for lines from elsewhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<LineOrigin>,
}

/// Where a log line came from: the file instance it was read from and its byte range there.
///
/// `stream` + `offset` identify a line uniquely and stay the same when it is read again after a
/// restart, so a store can use them as an idempotency key; acknowledging a line by its origin
/// lets the tailer advance its checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LineOrigin {
    /// The file instance, e.g. `file:<dev>:<inode>:<fingerprint hex>`.
    pub stream: String,
    /// Byte offset of the line's first byte.
    pub offset: u64,
    /// Byte offset just after the line's newline.
    pub end: u64,
}

impl LogEvent {
    /// A log event with only its source and message set.
    pub fn new(source: impl Into<String>, message: impl Into<String>) -> LogEvent {
        LogEvent { source: source.into(), message: message.into(), ..LogEvent::default() }
    }
}

/// One record pulled from a security tool's API (SPEC §7).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiRecord {
    /// Collector name (`crowdstrike`, `okta`, …).
    pub collector: String,
    /// Dataset tag (`okta_users`, `tenable_assets`, …).
    pub tag: String,
    /// The record as the API returned it.
    pub record: Value,
}

/// The agent's own health, emitted periodically by the runtime.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AgentStatus {
    /// Agent version.
    pub version: String,
    /// Seconds since the agent started.
    pub uptime_seconds: u64,
    /// Events published on the bus since start.
    pub events_published: u64,
    /// Events dropped by full queues since start.
    pub events_dropped: u64,
    /// Resident memory of the agent in bytes, when readable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resident_bytes: Option<u64>,
    /// Every registered component.
    pub components: Vec<ComponentStatus>,
}

/// Health of one source, detector or listener.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ComponentStatus {
    /// Component name.
    pub name: String,
    /// `source`, `detector` or `listener`.
    pub role: String,
    /// `starting`, `running`, `restarting`, `failed` or `stopped`.
    pub state: String,
    /// Times the supervisor restarted it.
    pub restarts: u64,
    /// Events it has handled or produced.
    pub events: u64,
    /// Events its queue dropped.
    pub dropped: u64,
    /// The last error or panic message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// The component's own counters (a tailer's lines read and rotations, …).
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub statistics: Map,
}
