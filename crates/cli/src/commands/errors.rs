//! `vigil errors FILE…`: the error tracer over log files — error events by category with their
//! severity and details, recurring signatures with counts, root-cause hints and suggestions.
//!
//! Multi-line Python tracebacks are joined into one event first (vigil-parse's `Joiner`,
//! re-exported by vigil-enrich); the record's first line goes through the built-in parsers for
//! its time, level and message.

use std::{
    collections::BTreeMap,
    io::{self, Write},
    path::PathBuf,
    process::ExitCode,
};

use serde::Serialize;
use serde_json::json;
use vigil_enrich::error::{ErrorCategory, ErrorTracerConfig, Joiner};

use super::logs;

/// Arguments of `vigil errors`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Log files to read (nginx, Django/Python, syslog, PostgreSQL, any text); `-` reads
    /// standard input.
    #[arg(value_name = "FILE", required = true)]
    files: Vec<PathBuf>,
    /// Print one JSON object: events, by_category, recurring, history.
    #[arg(long)]
    json: bool,
    /// Most error events listed (the counts cover all of them).
    #[arg(long, value_name = "N", default_value_t = 1000)]
    limit: usize,
    /// Recurring errors: signatures seen at least this many times.
    #[arg(long, value_name = "N", default_value_t = 2)]
    min_count: u64,
}

/// One error event as printed.
#[derive(Debug, Serialize)]
struct ErrorEvent {
    file: String,
    line: u64,
    timestamp: Option<String>,
    level: Option<&'static str>,
    category: ErrorCategory,
    severity: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    exception_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source_line: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_code: Option<String>,
    signature: String,
    lines: usize,
    message: String,
}

#[derive(Debug, Default, Serialize)]
struct CategoryRow {
    count: u64,
    max_severity: u8,
    hint: &'static str,
    suggestion: &'static str,
}

/// Runs `vigil errors`.
pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let tracer = ErrorTracerConfig::default().build_always();
    let parser = logs::auto_parser();
    let now = chrono::Utc::now();
    let mut events: Vec<ErrorEvent> = Vec::new();
    let mut total = 0u64;
    let mut categories: BTreeMap<&'static str, CategoryRow> = BTreeMap::new();
    let mut failed = false;
    for path in &args.files {
        let name = path.display().to_string();
        let mut joiner = Joiner::default();
        let mut number = 0u64;
        let mut start: Option<u64> = None;
        let mut handle = |record: String, line: u64| {
            let first = record.lines().next().unwrap_or_default();
            let parsed = parser.parse(first);
            let (message, level, stamp) = match &parsed {
                Some(it) => (it.message, it.level.map(|it| it.as_str()), it.timestamp),
                None => (first, None, None),
            };
            let rest = record.get(first.len()..).unwrap_or_default();
            let text = format!("{message}{rest}");
            let at = stamp.and_then(|it| it.to_utc()).unwrap_or(now);
            let Some((analysis, _)) = tracer.observe(&text, level, at) else { return };
            total += 1;
            let row = categories.entry(analysis.category.as_str()).or_default();
            row.count += 1;
            row.max_severity = row.max_severity.max(analysis.severity);
            row.hint = analysis.hint;
            row.suggestion = analysis.suggestion;
            if events.len() < args.limit {
                events.push(ErrorEvent {
                    file: name.clone(),
                    line,
                    timestamp: stamp.and_then(|it| it.to_rfc3339()),
                    level,
                    category: analysis.category,
                    severity: analysis.severity,
                    exception_type: analysis.details.exception_type,
                    source_file: analysis.details.file,
                    source_line: analysis.details.line,
                    error_code: analysis.details.error_code,
                    signature: analysis.signature,
                    lines: record.lines().count(),
                    message: first.chars().take(300).collect(),
                });
            }
        };
        let res = logs::for_each_line(path, |line| {
            number += 1;
            let begun = start.get_or_insert(number);
            let begun = *begun;
            if let Some(record) = joiner.push(line) {
                handle(record, begun);
                start = Some(number);
            }
        });
        if let Some(record) = joiner.finish() {
            handle(record, start.unwrap_or(1));
        }
        if let Err(err) = res {
            eprintln!("error: cannot read {name}: {err}");
            failed = true;
        }
    }
    let recurring = tracer.recurring(args.min_count);
    let mut out = io::BufWriter::new(io::stdout().lock());
    if args.json {
        let recurring: Vec<serde_json::Value> = recurring
            .iter()
            .map(|it| {
                let mut value = serde_json::to_value(it).unwrap_or_default();
                value["hint"] = it.category.hint().into();
                value["suggestion"] = it.category.suggestion().into();
                value
            })
            .collect();
        let value = json!({
            "errors": total,
            "events": events,
            "events_truncated": total > events.len() as u64,
            "by_category": categories,
            "recurring": recurring,
            "history": tracer.history(),
        });
        writeln!(out, "{value}")?;
    } else {
        let rows: Vec<Vec<String>> = categories
            .iter()
            .map(|(name, row)| {
                vec![(*name).to_owned(), row.count.to_string(), row.max_severity.to_string()]
            })
            .collect();
        write!(
            out,
            "{}",
            super::table::render(
                &["CATEGORY", "ERRORS", "MAX SEVERITY"],
                &[false, true, true],
                &rows
            )
        )?;
        for (name, row) in &categories {
            writeln!(out, "\n{name}\n  cause: {}\n  do: {}", row.hint, row.suggestion)?;
        }
        if !recurring.is_empty() {
            writeln!(out, "\nrecurring:")?;
            for it in &recurring {
                writeln!(
                    out,
                    "  {:>6}x  {}  {}  {}",
                    it.count,
                    it.signature,
                    it.category.as_str(),
                    it.normalised.escape_debug()
                )?;
            }
        }
        writeln!(out, "\nevents:")?;
        for it in &events {
            let at = it.timestamp.as_deref().unwrap_or("-");
            let location = match (&it.source_file, it.source_line) {
                (Some(file), Some(line)) => format!("  at {file}:{line}"),
                _ => String::new(),
            };
            writeln!(
                out,
                "  {}:{}  {at}  {}  severity {}{location}  {}",
                it.file,
                it.line,
                it.category.as_str(),
                it.severity,
                it.message.escape_debug()
            )?;
        }
        if total > events.len() as u64 {
            writeln!(out, "  … {} more (--limit)", total - events.len() as u64)?;
        }
    }
    match out.flush() {
        Err(err) if err.kind() == io::ErrorKind::BrokenPipe => return Ok(ExitCode::SUCCESS),
        other => other?,
    }
    Ok(if failed { ExitCode::from(crate::EXIT_PROBLEMS) } else { ExitCode::SUCCESS })
}
