//! Resource exhaustion from host metrics: memory, swap, a filesystem or one process's open file
//! descriptors above a threshold for a whole duration (`config.rs`, `detector.rs`, `tests.rs`).

mod config;
mod detector;
#[cfg(test)]
mod tests;

pub use config::ResourceExhaustionConfig;
pub use detector::ResourceExhaustionDetector;
