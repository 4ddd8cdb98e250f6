//! Exec: run a program for each event, with arguments rendered from templates — an argument
//! vector, never a shell.
//!
//! The folder follows the component layout: `config.rs` (what an operator writes),
//! `listener.rs` (the run logic) and `tests.rs`.

mod config;
mod listener;
#[cfg(test)]
mod tests;

pub use config::ExecConfig;
pub use listener::{ExecListener, ExecStats};
