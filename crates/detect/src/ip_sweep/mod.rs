//! IP sweeps: many addresses of one subnet failing or being blocked within a window — one actor
//! spreading its attempts over a whole network to stay under per-address thresholds
//! (`config.rs`, `detector.rs`, `tests.rs`).

mod config;
mod detector;
#[cfg(test)]
mod tests;

pub use config::IpSweepConfig;
pub use detector::IpSweepDetector;
