//! Triggers and analysis chains (seed 003, SPEC §1): conditions declared in configuration
//! (process-name pattern, missing executable, IP threat score above a bound, error severity
//! above a bound) that request a deeper analysis (hash the executable with SHA-256, snapshot the
//! process tree, trace an IP) from a component that has the capability, with priorities, a rate
//! limit and a concurrency limit. Results are attached to the triggering event's trace.
//!
//! The engine is the last stage of the enrichment chain, so the IP and error tracers' fields
//! (`threat_score`, `error_severity`) are there when its conditions read them.

mod config;
mod engine;
mod limits;
mod sha256;
#[cfg(test)]
mod tests;

pub use config::{AnalysisKind, ConditionKind, GlobalLimits, Priority, TriggerConfig};
pub use engine::{
    Analyzer, HostAnalyzer, PRIORITIES, Refusal, TRIGGER_TRACER, Target, TriggerEngine,
    TriggerStats,
};
pub use limits::SlotGuard;
pub use sha256::{Sha256, digest_reader};
