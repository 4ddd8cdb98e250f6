//! The IP-sweep detector: distinct hostile addresses per subnet.
//!
//! Hostile lines: every sshd failure of fail2ban's aggressive mode (failed and invalid logins,
//! pre-authentication disconnects, resets, banner garbage) and firewall blocks.

use std::net::IpAddr;

use vigil_core::{ComponentError, Detector, DetectorContext, Filter, Statistics};
use vigil_event::{Event, EventKind, Finding, FindingLevel, Value};
use vigil_parse::Action;

use super::IpSweepConfig;
use crate::{
    LineDetector, Observation,
    duration_text::millis,
    line_detector::{handle_log, saved_part, window_finding},
    window::{SavedWindows, Windows},
};

/// See the module docs.
#[derive(Debug, Clone)]
pub struct IpSweepDetector {
    min_addresses: usize,
    window_ms: i64,
    prefix_v4: u8,
    prefix_v6: u8,
    subnets: Windows<(IpAddr, u8), IpAddr>,
    hostile: u64,
    sweeps: u64,
}

/// Whether a line is hostile evidence.
fn hostile(action: Option<Action>) -> bool {
    matches!(
        action,
        Some(
            Action::FailedPassword
                | Action::FailedPasswordInvalid
                | Action::FailedAuth
                | Action::InvalidUser
                | Action::MaxAuthExceeded
                | Action::UserNotAllowed
                | Action::ClosedPreauth
                | Action::ClosedPreauthInvalid
                | Action::DisconnectedPreauth
                | Action::ConnectionReset
                | Action::BannerInvalid
                | Action::NoIdentification
                | Action::NegotiationFailed
                | Action::FwBlock
                | Action::FwLimit
        )
    )
}

/// The subnet of `ip`: its network address and prefix length.
pub(crate) fn network(ip: IpAddr, prefix_v4: u8, prefix_v6: u8) -> (IpAddr, u8) {
    match ip {
        IpAddr::V4(v4) => {
            let len = prefix_v4.min(32);
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - u32::from(len)) };
            (IpAddr::V4(std::net::Ipv4Addr::from(u32::from(v4) & mask)), len)
        }
        IpAddr::V6(v6) => {
            let len = prefix_v6.min(128);
            let mask = if len == 0 { 0 } else { u128::MAX << (128 - u32::from(len)) };
            (IpAddr::V6(std::net::Ipv6Addr::from(u128::from(v6) & mask)), len)
        }
    }
}

/// The subnet of `ip` as `a.b.c.0/24` (or the IPv6 equivalent).
pub(crate) fn subnet(ip: IpAddr, prefix_v4: u8, prefix_v6: u8) -> String {
    let (net, len) = network(ip, prefix_v4, prefix_v6);
    format!("{net}/{len}")
}

impl IpSweepDetector {
    /// The detector's name.
    pub const NAME: &'static str = "ip_sweep";
    /// The finding's name.
    pub const FINDING_NAME: &'static str = "IpSweep";

    /// A detector configured by `config`.
    pub fn new(config: &IpSweepConfig) -> IpSweepDetector {
        let min_addresses = config.min_addresses.max(1) as usize;
        let window_ms = millis(config.window);
        IpSweepDetector {
            min_addresses,
            window_ms,
            prefix_v4: config.prefix_v4,
            prefix_v6: config.prefix_v6,
            subnets: Windows::new(min_addresses, window_ms, config.max_tracked, true),
            hostile: 0,
            sweeps: 0,
        }
    }

    /// The filter to register it with: log events.
    pub fn filter() -> Filter {
        Filter::any().kinds([EventKind::Log])
    }
}

impl LineDetector for IpSweepDetector {
    fn observe(&mut self, obs: &Observation<'_>, out: &mut Vec<Finding>) {
        if !hostile(obs.action) {
            return;
        }
        let Some(ip) = obs.ip else { return };
        self.hostile += 1;
        let key = network(ip, self.prefix_v4, self.prefix_v6);
        let Some(items) = self.subnets.add(key, obs.at_ms, ip, obs.line) else { return };
        let net = subnet(ip, self.prefix_v4, self.prefix_v6);
        self.sweeps += 1;
        let mut addresses: Vec<IpAddr> = items.iter().map(|it| it.value).collect();
        addresses.sort_unstable();
        let window_s = self.window_ms / 1000;
        let summary = format!(
            "{} addresses of {net} failed or were blocked within {window_s}s",
            addresses.len()
        );
        let rule = format!(
            "ip_sweep: {} distinct addresses of one subnet within {window_s}s",
            self.min_addresses
        );
        let addresses: Vec<String> = addresses.iter().map(IpAddr::to_string).collect();
        let finding = window_finding(
            FindingLevel::Warning,
            IpSweepDetector::FINDING_NAME,
            "network",
            summary,
            rule,
            self.window_ms,
            items,
        )
        .with_data("subnet", net)
        .with_data("addresses", addresses);
        out.push(finding);
    }
}

impl Detector for IpSweepDetector {
    fn name(&self) -> &str {
        IpSweepDetector::NAME
    }

    fn handle(&mut self, event: &Event, ctx: &mut DetectorContext) -> Result<(), ComponentError> {
        handle_log(self, event, ctx);
        Ok(())
    }

    fn statistics(&self) -> Statistics {
        let mut stats = Statistics::new();
        stats.insert("hostile_lines".into(), self.hostile.into());
        stats.insert("sweeps".into(), self.sweeps.into());
        stats.insert("findings_suppressed".into(), self.subnets.suppressed.into());
        stats.insert("tracked_subnets".into(), (self.subnets.len() as u64).into());
        stats.insert("evicted_subnets".into(), self.subnets.evicted.into());
        stats
    }

    fn save_state(&self) -> Option<Value> {
        let saved = serde_json::json!({
            "version": 1, "hostile": self.hostile, "sweeps": self.sweeps, "subnets": self.subnets.save(),
        });
        Some(saved)
    }

    fn restore_state(&mut self, state: Value) -> Result<(), ComponentError> {
        let subnets: SavedWindows<(IpAddr, u8), IpAddr> =
            saved_part("ip_sweep", &state, "subnets")?;
        self.subnets.restore(subnets);
        self.hostile = state["hostile"].as_u64().unwrap_or(0);
        self.sweeps = state["sweeps"].as_u64().unwrap_or(0);
        Ok(())
    }
}
