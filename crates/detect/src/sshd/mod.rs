//! The sshd detector: logins, failures per address, `SSHLoginTriesExceeded`, daily statistics.
//!
//! `config.rs` (`[detectors.sshd]`), `detector.rs` (the logic, statistics and saved state),
//! `tests.rs`.

mod config;
mod detector;
#[cfg(test)]
mod tests;

pub use config::SshdConfig;
pub use detector::{DayStats, SshdDetector};
