//! Vigil's host collectors: what the machine is doing, read from `/proc`.
//!
//! Each collector is a plain struct with a blocking `collect` (used directly by `vigil metrics`,
//! `vigil ps` and `vigil conns`), wrapped by an [`EventSource`](vigil_core::EventSource) that
//! samples it on an interval (`vigil run`):
//!
//! | source | collector | publishes |
//! |---|---|---|
//! | `system` | [`SystemCollector`] | `system_metric`: CPU (total and per CPU), memory, swap, load, filesystems, disk I/O |
//! | `network` | [`NetworkCollector`] | `network_metric`: interfaces, TCP states (IPv4, IPv6), listening ports |
//! | `connections` | [`ConnectionCollector`] | `connection`: one per TCP/UDP socket, with its owning pid and process |
//! | `process` | [`ProcessCollector`] | `process` (phase `snapshot`): one per process, with CPU, memory, I/O, fds, children |
//! | `process_lifecycle` | [`LifecycleTracker`] | `process` (phases `start`, `exit`) by polling or, as root, the kernel's process events connector ([`ProcConnector`]), and `finding`s for a deleted executable, an executable in a world-writable directory, a name that is not the executable's |
//!
//! All parsing goes through the `procfs` crate's `FromRead` parsers and `*_with_root`
//! constructors, against a [`ProcRoot`]: the live `/proc`, or a captured tree under
//! `test_data/`. Errors degrade to missing values (and, for whole parts of a sample, to an entry
//! in `failed_collectors`), never to a crash.

#![deny(missing_docs)]

mod connections;
mod disks;
mod lifecycle;
mod network;
mod proc_connector;
mod proc_root;
mod process;
pub mod prometheus;
mod rdns;
mod sock_diag;
mod sources;
mod system;

pub use connections::{
    ConnectionCollector, ConnectionFilter, SERVICES, is_listening, service_ports,
};
pub use disks::{FsSpace, StatFs, is_real_mount, is_whole_disk, statvfs};
pub use lifecycle::LifecycleTracker;
pub use network::{NetworkCollector, is_loopback, tcp_state_name};
pub use proc_connector::{ProcConnector, ProcEvent};
pub use proc_root::ProcRoot;
pub use process::{
    ProcessCollector, ProcessRecord, ResourceSummary, Suspicion, exe_file_name, find_by_name,
    is_world_writable, summarize, suspicions,
};
pub use rdns::{ReverseDns, hosts_lookup, reverse_name, system_lookup};
pub use sources::{
    ConnectionsSource, NetworkSource, ProcessLifecycleSource, ProcessSource, SystemSource,
};
pub use system::{
    CpuModes, DEFAULT_DISK_DEADLINE, KernelCounters, MemoryBytes, SystemCollector, SystemReading,
};

use vigil_core::ComponentError;

/// Fails when `root` cannot be read at all (no `/proc` mounted, wrong path in tests).
fn check_root(root: &ProcRoot) -> Result<(), ComponentError> {
    std::fs::read_dir(root.path()).map(drop).map_err(|err| ComponentError::io(root.path(), err))
}

/// A fixture `/proc` tree under `test_data/`.
#[cfg(test)]
fn fixture(name: &str) -> ProcRoot {
    ProcRoot::at(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("test_data").join(name))
}
