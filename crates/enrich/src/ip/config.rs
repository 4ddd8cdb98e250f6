//! `[tracers.ip]`: the IP tracer's configuration.

use std::{collections::BTreeMap, time::Duration};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{IpTracer, classify::PrefixSet};
use crate::EnrichError;

/// The IP tracer: classifies the address of every log event that carries one, keeps its
/// activity, scores it 0–100 and block-lists it at the threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct IpTracerConfig {
    /// Run the tracer.
    pub enabled: bool,
    /// Threat score (0–100) at or above which an address is block-listed.
    pub blocklist_threshold: u8,
    /// When an address is block-listed, publish a ban request (a `ban` event, stage
    /// `requested`, jail `ip_tracer`, the score's reasons as evidence) for the ban manager.
    pub request_bans: bool,
    /// Addresses and prefixes (`192.0.2.0/24`, `2001:db8::/32`) never block-listed.
    pub allowlist: Vec<String>,
    /// Cloud providers' prefixes, by provider: an address inside one is classified `cloud`.
    /// The default is a small sample of large, long-standing allocations (AWS 3.0.0.0/8,
    /// Google Cloud 34.64.0.0/10 and 35.184.0.0/13, Microsoft 40.64.0.0/10, DigitalOcean
    /// 104.131.0.0/16 and 159.203.0.0/16, Hetzner 88.198.0.0/16 and 116.202.0.0/16, OVH
    /// 51.68.0.0/16); replace it with the providers' published lists for full coverage.
    pub cloud_ranges: BTreeMap<String, Vec<String>>,
    /// Most addresses tracked at once; when full, each new address makes the tracer forget one
    /// (counted as an eviction), in the order they first came; an address seen again since it
    /// was last considered is kept once more (second chance), unless not seen for `ttl`. About
    /// 250 bytes each, subnets included (docs/BENCHMARKS.md).
    pub max_addresses: usize,
    /// Most /24 (IPv4) and /64 (IPv6) subnets tracked for patterns and sweeps.
    pub max_subnets: usize,
    /// An address not seen for this long (in event time) may be forgotten first.
    #[serde(with = "vigil_core::duration")]
    #[schemars(with = "String")]
    pub ttl: Duration,
    /// Window in which repeated failures count as a burst (like fail2ban's `findtime`).
    #[serde(with = "vigil_core::duration")]
    #[schemars(with = "String")]
    pub burst_window: Duration,
    /// Distinct hostile addresses of one /24 or /64 that make a sweep.
    pub sweep_min_addresses: u32,
}

impl Default for IpTracerConfig {
    fn default() -> Self {
        let list = |items: &[&str]| items.iter().map(|it| (*it).to_owned()).collect::<Vec<_>>();
        IpTracerConfig {
            enabled: true,
            blocklist_threshold: 70,
            request_bans: true,
            allowlist: Vec::new(),
            cloud_ranges: [
                ("aws", list(&["3.0.0.0/8"])),
                ("digitalocean", list(&["104.131.0.0/16", "159.203.0.0/16"])),
                ("gcp", list(&["34.64.0.0/10", "35.184.0.0/13"])),
                ("hetzner", list(&["88.198.0.0/16", "116.202.0.0/16"])),
                ("azure", list(&["40.64.0.0/10"])),
                ("ovh", list(&["51.68.0.0/16"])),
            ]
            .into_iter()
            .map(|(name, prefixes)| (name.to_owned(), prefixes))
            .collect(),
            max_addresses: 100_000,
            max_subnets: 20_000,
            ttl: Duration::from_secs(7 * 24 * 3600),
            burst_window: Duration::from_secs(600),
            sweep_min_addresses: 8,
        }
    }
}

impl IpTracerConfig {
    /// The tracer, or `None` when disabled. Fails on an invalid prefix or a zero limit.
    pub fn build(&self) -> Result<Option<IpTracer>, EnrichError> {
        if !self.enabled {
            return Ok(None);
        }
        self.build_always().map(Some)
    }

    /// The tracer whether enabled or not (the CLI's `vigil ip` uses it on logs).
    pub fn build_always(&self) -> Result<IpTracer, EnrichError> {
        if self.max_addresses == 0 || self.max_subnets == 0 {
            return Err(EnrichError::Config(
                "tracers.ip: max_addresses and max_subnets must be at least 1".to_owned(),
            ));
        }
        if self.blocklist_threshold > 100 {
            return Err(EnrichError::Config(
                "tracers.ip: blocklist_threshold is a score from 0 to 100".to_owned(),
            ));
        }
        let cloud = PrefixSet::parse(
            self.cloud_ranges.iter().map(|(name, list)| (name.as_str(), list.as_slice())),
        )
        .map_err(|err| EnrichError::Config(format!("tracers.ip.cloud_ranges: {err}")))?;
        let allow = PrefixSet::parse([("allowlist", self.allowlist.as_slice())])
            .map_err(|err| EnrichError::Config(format!("tracers.ip.allowlist: {err}")))?;
        Ok(IpTracer::new(self.clone(), cloud, allow))
    }
}
