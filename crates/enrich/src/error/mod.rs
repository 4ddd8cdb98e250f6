//! The error tracer (seed 001 `error_tracer`, SPEC §4): categories, extracted details, a
//! severity 0–100, root-cause hints and recovery suggestions, recurring errors by signature,
//! history over time. The joiner that makes a multi-line Python traceback one record lives in
//! vigil-parse (`vigil_parse::multiline`), where the file tailer's wiring uses it too; it is
//! re-exported here.

mod categories;
#[cfg(test)]
mod tests;
mod tracer;

pub use categories::{ALL as CATEGORIES, Details, ErrorCategory, categories, details, normalise};
pub use tracer::{
    ERROR_TRACER, ErrorAnalysis, ErrorTracer, ErrorTracerConfig, HourBucket, Recurring, analyse,
};
pub use vigil_parse::multiline::Joiner;
