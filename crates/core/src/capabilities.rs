//! What a source can observe, declared as bit flags (seed 003's `SourceCaps`).
//!
//! The runtime uses capabilities to route analysis requests (a trigger that needs a process-tree
//! snapshot goes to a source with `PROCESS`) and to tell an operator what a host is watching.

use bitflags::bitflags;

bitflags! {
    /// Capability flags of an [`EventSource`](crate::EventSource).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct SourceCapabilities: u32 {
        /// Observes processes.
        const PROCESS = 1 << 0;
        /// Observes network interfaces and sockets.
        const NETWORK = 1 << 1;
        /// Observes files and filesystems.
        const FILESYSTEM = 1 << 2;
        /// Observes resource usage.
        const PERFORMANCE = 1 << 3;
        /// Reads log records.
        const LOG = 1 << 4;
        /// Pulls a remote API.
        const API = 1 << 5;
        /// Reports changes as they happen rather than by polling.
        const REALTIME = 1 << 6;
        /// Sees the whole host, not one process or user.
        const SYSTEM_WIDE = 1 << 7;
        /// Uses a kernel interface (netlink, eBPF) that usually needs privileges.
        const KERNEL_LEVEL = 1 << 8;
    }
}

impl SourceCapabilities {
    /// Lowercase names of the set flags, for health reports and `--help` output.
    pub fn names(self) -> Vec<String> {
        self.iter_names().map(|(name, _)| name.to_ascii_lowercase()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_combine_and_name_themselves() {
        let caps = SourceCapabilities::PROCESS | SourceCapabilities::REALTIME;
        assert!(caps.contains(SourceCapabilities::PROCESS));
        assert!(!caps.contains(SourceCapabilities::NETWORK));
        assert_eq!(caps.names(), ["process", "realtime"]);
        assert_eq!(SourceCapabilities::all().iter().count(), 9);
    }
}
