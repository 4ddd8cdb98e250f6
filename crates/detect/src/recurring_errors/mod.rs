//! Recurring errors: the same error, numbers and addresses aside, logged again and again within
//! a window (`config.rs`, `signature.rs`, `detector.rs`, `tests.rs`).

mod config;
mod detector;
mod signature;
#[cfg(test)]
mod tests;

pub use config::RecurringErrorsConfig;
pub use detector::RecurringErrorsDetector;
pub use signature::signature;
