//! CSV: audit records as rows, one file per audit record type with a header row (seed 004's
//! CSVListener), and findings and bans in files with a fixed column list.
//!
//! The folder follows the component layout: `config.rs` (what an operator writes),
//! `listener.rs` (the run logic) and `tests.rs`.

mod config;
mod listener;
#[cfg(test)]
mod tests;

pub use config::CsvConfig;
pub use listener::{BAN_COLUMNS, CsvListener, FINDING_COLUMNS};
