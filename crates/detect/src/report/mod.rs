//! Report, seed 004's system detector: a notice for every record, and overall statistics.
//!
//! The folder follows the component layout: `config.rs` (what an operator writes),
//! `detector.rs` (the run logic), `statistics.rs` (counters and their saved state) and
//! `tests.rs`.

mod config;
mod detector;
mod statistics;
#[cfg(test)]
mod tests;

pub use config::ReportConfig;
pub use detector::ReportDetector;
