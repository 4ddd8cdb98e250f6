//! The error tracer (seed 001 `error_tracer`, SPEC §4): categories, extracted details, a
//! severity 0–100, root-cause hints and recovery suggestions, recurring errors by signature,
//! history over time, and the joiner that makes a multi-line Python traceback one record.

mod categories;
mod joiner;
#[cfg(test)]
mod tests;
mod tracer;

pub use categories::{ALL as CATEGORIES, Details, ErrorCategory, categories, details, normalise};
pub use joiner::Joiner;
pub use tracer::{
    ERROR_TRACER, ErrorAnalysis, ErrorTracer, ErrorTracerConfig, HourBucket, Recurring, analyse,
};
