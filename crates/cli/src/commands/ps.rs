//! `vigil ps`: the process table, sorted and filtered, as a table or JSON.
//!
//! CPU percent is the process's CPU time over its whole life, as `ps` prints it (one pass over
//! /proc, no waiting); the `process` source of `vigil run` reports it between samples instead.

use std::process::ExitCode;

use serde_json::{Value, json};
use vigil_collect::{ProcRoot, ProcessCollector, ProcessRecord, find_by_name, summarize};

use super::table;

/// Sort orders of `vigil ps`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SortKey {
    /// Highest CPU percent first.
    Cpu,
    /// Largest resident memory first.
    Mem,
    /// Lowest pid first.
    Pid,
}

/// Arguments of `vigil ps`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Sort order.
    #[arg(long, value_enum, default_value = "cpu")]
    sort: SortKey,
    /// Show only the first N processes after sorting.
    #[arg(long, value_name = "N")]
    top: Option<usize>,
    /// Only processes whose name or executable file name contains PATTERN (ignoring case).
    #[arg(long, value_name = "PATTERN")]
    name: Option<String>,
    /// Print a JSON array instead of a table.
    #[arg(long)]
    json: bool,
}

/// Runs the command.
pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let all = ProcessCollector::new(ProcRoot::live()).collect();
    let mut selected: Vec<&ProcessRecord> = match &args.name {
        Some(pattern) => find_by_name(&all, pattern),
        None => all.iter().collect(),
    };
    match args.sort {
        SortKey::Cpu => selected.sort_by(|a, b| {
            let key = |it: &ProcessRecord| it.info.cpu_percent.unwrap_or(0.0);
            key(b).total_cmp(&key(a)).then(a.info.pid.cmp(&b.info.pid))
        }),
        SortKey::Mem => selected.sort_by_key(|it| {
            (std::cmp::Reverse(it.info.resident_bytes.unwrap_or(0)), it.info.pid)
        }),
        SortKey::Pid => selected.sort_by_key(|it| it.info.pid),
    }
    if let Some(top) = args.top {
        selected.truncate(top);
    }
    let text = if args.json {
        let items: Vec<Value> = selected.iter().map(|it| to_json(it)).collect();
        let mut text = serde_json::to_string_pretty(&items)?;
        text.push('\n');
        text
    } else {
        to_table(&selected)
    };
    crate::write_stdout(&text)?;
    Ok(ExitCode::SUCCESS)
}

/// One element of the `--json` array: the keys are a contract (issue 4).
pub fn to_json(record: &ProcessRecord) -> Value {
    let p = &record.info;
    json!({
        "pid": p.pid,
        "ppid": p.ppid,
        "name": p.name,
        "cmdline": (!p.cmdline.is_empty()).then(|| p.cmdline.join(" ")),
        "state": p.state,
        "threads": p.threads,
        "cpu_percent": p.cpu_percent,
        "rss_bytes": p.resident_bytes,
        "vms_bytes": p.virtual_bytes,
        "fds": p.open_fds,
        "read_bytes": p.read_bytes,
        "write_bytes": p.write_bytes,
        "exe_deleted": p.exe_deleted,
    })
}

fn opt<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_owned(), |it| it.to_string())
}

fn to_table(records: &[&ProcessRecord]) -> String {
    let rows: Vec<Vec<String>> = records
        .iter()
        .map(|it| {
            let p = &it.info;
            let command = if p.cmdline.is_empty() {
                format!("[{}]", p.name.as_deref().unwrap_or("?"))
            } else {
                p.cmdline.join(" ")
            };
            let command: String = command.chars().take(80).collect();
            vec![
                p.pid.to_string(),
                opt(p.ppid),
                opt(p.uid),
                opt(p.state.clone()),
                opt(p.threads),
                p.cpu_percent.map_or("-".to_owned(), |it| format!("{it:.1}")),
                p.resident_bytes.map_or("-".to_owned(), table::bytes),
                p.virtual_bytes.map_or("-".to_owned(), table::bytes),
                opt(p.open_fds),
                p.name.clone().unwrap_or_default(),
                command,
            ]
        })
        .collect();
    let mut out = table::render(
        &["PID", "PPID", "UID", "S", "THR", "CPU%", "RSS", "VMS", "FDS", "NAME", "COMMAND"],
        &[true, true, true, false, true, true, true, true, true, false, false],
        &rows,
    );
    let sum = summarize(records.iter().copied());
    out.push_str(&format!(
        "{} processes, {} threads, {:.1} % CPU, {} resident\n",
        sum.processes,
        sum.threads,
        sum.cpu_percent,
        table::bytes(sum.resident_bytes)
    ));
    out
}
