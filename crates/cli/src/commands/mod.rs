//! One module per `vigil` subcommand that is more than a few lines: its clap arguments (`Args`)
//! and its `run` function returning the exit code. `main.rs` only lists the subcommands and
//! dispatches to these modules, so adding a subcommand touches one line there.

pub mod backfill;
pub mod bans;
pub mod conns;
pub mod db;
pub mod errors;
pub mod filter_test;
pub mod ip;
pub mod logs;
pub mod metrics;
pub mod parse;
pub mod ps;
pub mod query;
pub mod replay;
pub mod report;
pub mod table;
