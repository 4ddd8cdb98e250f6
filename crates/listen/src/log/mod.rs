//! The log listener: each event as one human-readable line in the agent's own log.
//!
//! The folder follows the component layout: `config.rs` (what an operator writes),
//! `listener.rs` (the run logic) and `tests.rs`.

mod config;
mod listener;
#[cfg(test)]
mod tests;

pub use config::LogListenerConfig;
pub use listener::LogListener;
