//! JSON lines: every event as one line of JSON, to standard output or a file.
//!
//! The folder follows the component layout: `config.rs` (what an operator writes),
//! `listener.rs` (the run logic) and `tests.rs`.

mod config;
mod listener;
#[cfg(test)]
mod tests;

pub use config::JsonLinesConfig;
pub use listener::JsonLinesListener;
