//! The port-scan detector: distinct blocked destination ports per source address.

use std::net::IpAddr;

use vigil_core::{ComponentError, Detector, DetectorContext, Filter, Statistics};
use vigil_event::{Event, EventKind, Finding, FindingLevel, Value};
use vigil_parse::Action;

use super::PortScanConfig;
use crate::{
    LineDetector, Observation,
    duration_text::millis,
    line_detector::{handle_log, saved_part, window_finding},
    window::{SavedWindows, Windows},
};

/// See the module docs.
#[derive(Debug, Clone)]
pub struct PortScanDetector {
    min_ports: usize,
    window_ms: i64,
    sources: Windows<IpAddr, u16>,
    blocked: u64,
    scans: u64,
}

impl PortScanDetector {
    /// The detector's name.
    pub const NAME: &'static str = "port_scan";
    /// The finding's name.
    pub const FINDING_NAME: &'static str = "PortScan";

    /// A detector configured by `config`.
    pub fn new(config: &PortScanConfig) -> PortScanDetector {
        let min_ports = config.min_ports.max(1) as usize;
        let window_ms = millis(config.window);
        PortScanDetector {
            min_ports,
            window_ms,
            sources: Windows::new(min_ports, window_ms, config.max_tracked, true),
            blocked: 0,
            scans: 0,
        }
    }

    /// The filter to register it with: log events.
    pub fn filter() -> Filter {
        Filter::any().kinds([EventKind::Log])
    }
}

impl LineDetector for PortScanDetector {
    fn observe(&mut self, obs: &Observation<'_>, out: &mut Vec<Finding>) {
        if !matches!(obs.action, Some(Action::FwBlock | Action::FwLimit)) {
            return;
        }
        let (Some(ip), Some(port)) = (obs.ip, obs.dport) else { return };
        self.blocked += 1;
        let Some(items) = self.sources.add(ip, obs.at_ms, port, obs.line) else { return };
        self.scans += 1;
        let mut ports: Vec<u16> = items.iter().map(|it| it.value).collect();
        ports.sort_unstable();
        let window_s = self.window_ms / 1000;
        let summary =
            format!("{} destination ports probed by {ip} within {window_s}s", ports.len());
        let rule =
            format!("port_scan: {} distinct blocked ports within {window_s}s", self.min_ports);
        let finding = window_finding(
            FindingLevel::Warning,
            PortScanDetector::FINDING_NAME,
            "firewall",
            summary,
            rule,
            self.window_ms,
            items,
        )
        .with_data("ip", ip.to_string())
        .with_data("ports", ports);
        out.push(finding);
    }
}

impl Detector for PortScanDetector {
    fn name(&self) -> &str {
        PortScanDetector::NAME
    }

    fn handle(&mut self, event: &Event, ctx: &mut DetectorContext) -> Result<(), ComponentError> {
        handle_log(self, event, ctx);
        Ok(())
    }

    fn statistics(&self) -> Statistics {
        let mut stats = Statistics::new();
        stats.insert("blocked_lines".into(), self.blocked.into());
        stats.insert("scans".into(), self.scans.into());
        stats.insert("findings_suppressed".into(), self.sources.suppressed.into());
        stats.insert("tracked_sources".into(), (self.sources.len() as u64).into());
        stats.insert("evicted_sources".into(), self.sources.evicted.into());
        stats
    }

    fn save_state(&self) -> Option<Value> {
        let saved = serde_json::json!({
            "version": 1, "blocked": self.blocked, "scans": self.scans, "sources": self.sources.save(),
        });
        Some(saved)
    }

    fn restore_state(&mut self, state: Value) -> Result<(), ComponentError> {
        let sources: SavedWindows<IpAddr, u16> = saved_part("port_scan", &state, "sources")?;
        self.sources.restore(sources);
        self.blocked = state["blocked"].as_u64().unwrap_or(0);
        self.scans = state["scans"].as_u64().unwrap_or(0);
        Ok(())
    }
}
