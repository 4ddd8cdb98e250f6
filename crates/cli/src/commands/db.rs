//! `vigil db info` and `vigil db prune`: look after the agent's SQLite database.
//!
//! `info` opens the database read-only and shows its path, size, schema version and the rows
//! of every table. `prune` applies retention (the configured `retention_age` and
//! `retention_max_bytes`, or the flags) to completion, a few thousand rows per transaction, so
//! a running agent keeps writing meanwhile.

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
    time::Duration,
};

use serde_json::json;
use vigil_store::sqlite::{ReadOnlyDb, SqliteStore};

use super::table;

/// Arguments of `vigil db`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: DbCommand,
}

#[derive(Debug, clap::Subcommand)]
enum DbCommand {
    /// Show the database's path, size, schema version and row counts.
    Info {
        /// The database. Default: from the configuration (`stores.sqlite.path`), else
        /// `vigil.db` in the state directory.
        #[arg(long, value_name = "PATH")]
        db: Option<PathBuf>,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Remove old rows now, as retention would, and give the space back.
    Prune {
        /// The database. Default: as for `info`.
        #[arg(long, value_name = "PATH")]
        db: Option<PathBuf>,
        /// Remove rows older than this (e.g. `7days`). Default: `stores.sqlite.retention_age`.
        #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
        older_than: Option<Duration>,
        /// Remove the oldest events while the database uses more than this many bytes.
        /// Default: `stores.sqlite.retention_max_bytes`.
        #[arg(long, value_name = "BYTES")]
        max_bytes: Option<u64>,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
}

/// Runs the command.
pub fn run(args: &Args, config: Option<&Path>) -> anyhow::Result<ExitCode> {
    match &args.command {
        DbCommand::Info { db, json } => info(db.as_deref(), config, *json),
        DbCommand::Prune { db, older_than, max_bytes, json } => {
            prune(db.as_deref(), config, *older_than, *max_bytes, *json)
        }
    }
}

fn info(db: Option<&Path>, config: Option<&Path>, as_json: bool) -> anyhow::Result<ExitCode> {
    let db = match crate::stores::database_arg(db, config) {
        Ok(it) => it,
        Err(code) => return Ok(code),
    };
    let info = match ReadOnlyDb::open(&db).and_then(|it| it.info()) {
        Ok(it) => it,
        Err(err) => return Ok(crate::stores::report(&err)),
    };
    if as_json {
        let tables: serde_json::Map<String, serde_json::Value> =
            info.tables.iter().map(|it| (it.name.clone(), it.rows.into())).collect();
        let value = json!({
            "path": info.path,
            "size_bytes": info.size_bytes,
            "wal_bytes": info.wal_bytes,
            "schema_version": info.schema_version,
            "tables": tables,
        });
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("path            {}", info.path.display());
    println!(
        "size            {} (+ {} write-ahead log)",
        table::bytes(info.size_bytes),
        table::bytes(info.wal_bytes)
    );
    println!("schema version  {}", info.schema_version);
    println!();
    let rows: Vec<Vec<String>> =
        info.tables.iter().map(|it| vec![it.name.clone(), it.rows.to_string()]).collect();
    print!("{}", table::render(&["TABLE", "ROWS"], &[false, true], &rows));
    Ok(ExitCode::SUCCESS)
}

fn prune(
    db: Option<&Path>,
    config: Option<&Path>,
    older_than: Option<Duration>,
    max_bytes: Option<u64>,
    as_json: bool,
) -> anyhow::Result<ExitCode> {
    let settings = match crate::load_config(config) {
        Ok(it) => it,
        Err(code) => return Ok(code),
    };
    let path = match db {
        Some(it) => it.to_path_buf(),
        None => crate::stores::database_path(&settings),
    };
    if !path.exists() {
        return Ok(crate::stores::report(&vigil_store::StoreError::Missing { path }));
    }
    let mut options = settings.stores.sqlite.options();
    options.busy_timeout = Duration::from_secs(10);
    if let Some(age) = older_than {
        options.retention.max_age = Some(age);
    }
    if let Some(bytes) = max_bytes {
        options.retention.max_bytes = (bytes > 0).then_some(bytes);
    }
    let result = SqliteStore::open_with(&path, options).and_then(|mut store| {
        let before = store.used_bytes()?;
        let report = store.prune(chrono::Utc::now())?;
        Ok((before, report, store.used_bytes()?))
    });
    let (before, report, after) = match result {
        Ok(it) => it,
        Err(err) => return Ok(crate::stores::report(&err)),
    };
    if as_json {
        let value = json!({
            "path": path,
            "rows_removed": report.rows,
            "used_bytes_before": before,
            "used_bytes_after": after,
        });
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        println!(
            "{}: removed {} rows; {} used (was {})",
            path.display(),
            report.rows,
            table::bytes(after),
            table::bytes(before)
        );
    }
    Ok(ExitCode::SUCCESS)
}
