//! Jails with fail2ban semantics: a filter recognises failures, and `maxretry` failures of one
//! address within `findtime` ask for a ban of `bantime` (longer for repeat offenders).
//!
//! `config.rs` (the `[jails.<name>]` table), `filter.rs` (built-in action sets and fail2ban
//! filter files), `jail.rs` (one jail's state machine), `set.rs` (every jail behind one entry
//! point), `detector.rs` (the bus detector) and `tests.rs`.

mod config;
mod detector;
mod filter;
#[allow(clippy::module_inception)]
mod jail;
mod set;
#[cfg(test)]
mod tests;

pub use config::{Bantime, BantimeIncrement, JailConfig, JailsConfig};
pub use detector::JailsDetector;
pub use filter::{BUILTIN_FILTERS, JailFilter};
pub use jail::{Jail, JailStats, MAX_LINE_CHARS};
pub use set::JailSet;
