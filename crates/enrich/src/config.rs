//! `[tracers]`: every tracer's section, so the CLI's configuration schema adds one field.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{
    error::ErrorTracerConfig, event::EventTracerConfig, ip::IpTracerConfig,
    network::NetworkTracerConfig, process::ProcessTracerConfig, trigger::GlobalLimits,
};

/// The enrichment tracers run on every source event before detection, in this order: ip,
/// event, error, network, process.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct TracersConfig {
    /// Address classes, activity, threat scores, block-listing and sweeps.
    pub ip: IpTracerConfig,
    /// Related services, severity scores, causality chains and aggregates.
    pub event: EventTracerConfig,
    /// Error categories, severity, hints, recurring signatures.
    pub error: ErrorTracerConfig,
    /// The host's connections of an event's address (reads every socket; off by default).
    pub network: NetworkTracerConfig,
    /// The processes of the service an event is about (reads every process; off by default).
    pub process: ProcessTracerConfig,
    /// Limits shared by every `[triggers.<name>]`.
    pub triggers: GlobalLimits,
}
