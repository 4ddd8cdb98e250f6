//! The IP tracer (seed 001 `ip_tracer`, SPEC §4): classify addresses, keep their activity, score
//! them 0–100, block-list at the threshold (a ban request for the ban manager), patterns across
//! addresses, sweeps, and the reputation export.

mod classify;
mod config;
mod table;
mod tracer;

pub use classify::{
    Cidr, IpClass, PrefixSet, canonical, classify, is_localhost, is_private, subnet_of,
};
pub use config::IpTracerConfig;
pub use tracer::{
    Activity, ClassPattern, IP_TRACER, IpReport, IpTracer, IpTracerStats, Observation, Patterns,
    SubnetPattern,
};
