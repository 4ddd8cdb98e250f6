//! `vigil report [--day YYYY-MM-DD] [--json]`: the sshd detector's daily statistics and every
//! detector's statistics, read from the state the agent persisted in its state directory, and
//! the tracers' statistics (the event tracer's aggregates, the error tracer's recurring
//! signatures) that the agent saves the same way (`crate::tracer_stats`).
//!
//! A saved state is handed to a detector built from the same configuration, which then reports
//! its statistics exactly as the running agent would. State is read through
//! [`load_detector_state`], the one place that knows where it is kept.

use std::{io::Write, path::Path, process::ExitCode};

use serde_json::{Map, Value, json};
use vigil_core::{Detector, StateStore};
use vigil_detect::{JailSet, JailsDetector, SshdDetector};
use vigil_runtime::FileStateStore;

use crate::settings::Config;

/// Arguments of `vigil report`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The day of the daily statistics, YYYY-MM-DD (default: today, local time).
    #[arg(long, value_name = "YYYY-MM-DD")]
    day: Option<String>,
    /// Print one JSON object: day, sshd (that day's statistics), detectors (by name), tracers
    /// (event aggregates, recurring errors).
    #[arg(long)]
    json: bool,
}

/// The saved state of detector `name` in the agent's state directory, if it saved any.
pub fn load_detector_state(state_dir: &Path, name: &str) -> anyhow::Result<Option<Value>> {
    let dir = state_dir.join("state");
    if !dir.is_dir() {
        return Ok(None);
    }
    let store = FileStateStore::open(dir)?;
    Ok(store.load(&format!("detector.{name}"))?)
}

/// Runs `vigil report`.
pub fn run(args: &Args, config: &Config) -> anyhow::Result<ExitCode> {
    let day = match &args.day {
        Some(text) => match chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
            Ok(it) => it,
            Err(err) => {
                eprintln!("error: --day {text}: not a YYYY-MM-DD date ({err})");
                return Ok(ExitCode::from(crate::EXIT_USAGE));
            }
        },
        None => chrono::Local::now().date_naive(),
    };
    let day = day.format("%Y-%m-%d").to_string();
    let state_dir = crate::agent::state_dir(config);
    let mut detectors: Vec<Box<dyn Detector>> = Vec::new();
    if let Some(it) = config.detectors.sshd.build() {
        detectors.push(Box::new(it));
    }
    match JailSet::build(&config.jails.effective()) {
        Ok(jails) if !jails.is_empty() => detectors.push(Box::new(JailsDetector::new(jails))),
        Ok(_) => {}
        Err(err) => {
            eprintln!("error: {err}");
            return Ok(ExitCode::from(crate::EXIT_USAGE));
        }
    }
    if let Some(it) = config.detectors.report.build() {
        detectors.push(Box::new(it));
    }
    detectors.extend(crate::agent_detect::correlation_detectors(config));

    let mut found = 0;
    let mut problems = 0;
    let mut stats = Map::new();
    let mut sshd_day = None;
    for mut detector in detectors {
        let name = detector.name().to_owned();
        match load_detector_state(&state_dir, &name) {
            Ok(Some(saved)) => {
                if let Err(err) = detector.restore_state(saved) {
                    eprintln!("warning: detector {name}: {err}");
                    problems += 1;
                    continue;
                }
                found += 1;
            }
            Ok(None) => {}
            Err(err) => {
                eprintln!("warning: detector {name}: {err:#}");
                problems += 1;
                continue;
            }
        }
        if name == SshdDetector::NAME {
            sshd_day = Some(detector.statistics().get("days").and_then(|it| it.get(&day)).cloned());
        }
        stats.insert(name, Value::Object(detector.statistics().into_iter().collect()));
    }
    if found == 0 && problems == 0 {
        eprintln!(
            "warning: no saved detector state in {} (has `vigil run` run?)",
            state_dir.display()
        );
    }
    let zero = json!({
        "successful_logins": 0, "failed_logins": 0, "failed_logins_without_success": 0,
        "failing_addresses": 0, "addresses_blocked": 0, "tries_exceeded": 0,
    });
    let sshd = sshd_day.flatten().unwrap_or(zero);
    let tracers = match load_detector_state(&state_dir, crate::tracer_stats::NAME) {
        Ok(it) => it.unwrap_or_else(|| json!({})),
        Err(err) => {
            eprintln!("warning: tracers: {err:#}");
            problems += 1;
            json!({})
        }
    };
    let mut out = std::io::stdout().lock();
    let res = if args.json {
        let value = json!({ "day": day, "sshd": sshd, "detectors": stats, "tracers": tracers });
        serde_json::to_writer(&mut out, &value)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(out))
    } else {
        print_text(&mut out, &day, &sshd, &stats).and_then(|()| print_tracers(&mut out, &tracers))
    };
    match res {
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => {}
        other => other?,
    }
    Ok(if problems > 0 { ExitCode::from(crate::EXIT_PROBLEMS) } else { ExitCode::SUCCESS })
}

fn print_text(
    out: &mut impl Write,
    day: &str,
    sshd: &Value,
    stats: &Map<String, Value>,
) -> std::io::Result<()> {
    writeln!(out, "sshd on {day}")?;
    for (key, label) in [
        ("successful_logins", "successful logins"),
        ("failed_logins", "failed logins"),
        ("failed_logins_without_success", "failed logins, no successful login that day"),
        ("failing_addresses", "addresses with failed logins"),
        ("tries_exceeded", "SSHLoginTriesExceeded findings"),
        ("addresses_blocked", "addresses blocked"),
    ] {
        writeln!(out, "  {label:<46} {:>10}", sshd.get(key).and_then(Value::as_u64).unwrap_or(0))?;
    }
    for (name, value) in stats {
        writeln!(out, "detector {name}")?;
        print_scalars(out, value, "  ")?;
    }
    Ok(())
}

/// The tracers' statistics: the event aggregates, then the recurring errors one per line.
fn print_tracers(out: &mut impl Write, tracers: &Value) -> std::io::Result<()> {
    let since = tracers.get("since").and_then(Value::as_str).unwrap_or("-");
    if let Some(event) = tracers.get("event") {
        writeln!(out, "tracer event (since {since})")?;
        print_scalars(out, event, "  ")?;
    }
    let Some(error) = tracers.get("error") else { return Ok(()) };
    writeln!(out, "tracer error (since {since})")?;
    if let Some(categories) = error.get("by_category") {
        writeln!(out, "  by_category")?;
        print_scalars(out, categories, "    ")?;
    }
    writeln!(out, "  recurring")?;
    for it in error.get("recurring").and_then(Value::as_array).into_iter().flatten() {
        let text = |key: &str| it.get(key).and_then(Value::as_str).unwrap_or("-").to_owned();
        writeln!(
            out,
            "    {:>6}x {:<12} {} {} (first {}, last {})",
            it.get("count").and_then(Value::as_u64).unwrap_or(0),
            text("category"),
            text("signature"),
            text("normalised").chars().take(80).collect::<String>(),
            text("first_seen"),
            text("last_seen"),
        )?;
    }
    Ok(())
}

/// Scalars one per line; nested objects indented under their key (per-day maps skipped: the
/// daily figures are printed above).
fn print_scalars(out: &mut impl Write, value: &Value, indent: &str) -> std::io::Result<()> {
    let Value::Object(map) = value else { return Ok(()) };
    for (key, value) in map {
        match value {
            Value::Object(_) if key == "days" => {}
            Value::Object(_) => {
                writeln!(out, "{indent}{key}")?;
                print_scalars(out, value, &format!("{indent}  "))?;
            }
            Value::String(text) => writeln!(out, "{indent}{key:<30} {text}")?,
            other => writeln!(out, "{indent}{key:<30} {other}")?,
        }
    }
    Ok(())
}
