//! Port scans from firewall log lines: distinct destination ports blocked for one source
//! address within a window (`config.rs`, `detector.rs`, `tests.rs`).

mod config;
mod detector;
#[cfg(test)]
mod tests;

pub use config::PortScanConfig;
pub use detector::PortScanDetector;
