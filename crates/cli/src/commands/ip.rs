//! `vigil ip ADDR` and `vigil ips`: the IP tracer over log files — an address's class, activity
//! and explained threat score with its connections on this host; the most threatening
//! addresses, subnet patterns, sweeps, and the reputation export.

use std::{
    io::{self, Write},
    net::IpAddr,
    path::{Path, PathBuf},
    process::ExitCode,
};

use serde_json::{Value, json};
use vigil_collect::ProcRoot;
use vigil_enrich::{
    event::{EventTracer, EventTracerConfig},
    ip::{IpReport, IpTracer, IpTracerConfig},
    network::{Sockets, connection_json},
};
use vigil_store::sqlite::SqlValue;

use super::logs;

/// Arguments of `vigil ip`.
#[derive(Debug, clap::Args)]
pub struct IpArgs {
    /// The address (IPv4, IPv6, or IPv4-mapped IPv6).
    #[arg(value_name = "ADDR")]
    addr: String,
    /// Log files to compute the activity from (parsed with the built-in parsers, format
    /// detected per line); `-` reads standard input. Without it, the local store is read when
    /// it exists.
    #[arg(long = "log", value_name = "FILE", num_args = 1..)]
    logs: Vec<PathBuf>,
    /// Print one JSON object: ip, class, score, score_reasons, activity, subnet, blocklisted,
    /// connections.
    #[arg(long)]
    json: bool,
    /// The store read without --log (default: `stores.sqlite.path` of the configuration, else
    /// `vigil.db` in the state directory).
    #[arg(long, value_name = "PATH", conflicts_with = "logs")]
    db: Option<PathBuf>,
}

/// Arguments of `vigil ips`.
#[derive(Debug, clap::Args)]
pub struct IpsArgs {
    /// Log files to read; `-` reads standard input.
    #[arg(long = "log", value_name = "FILE", num_args = 1.., required = true)]
    logs: Vec<PathBuf>,
    /// How many addresses (and subnets) to list.
    #[arg(long, value_name = "N", default_value_t = 10)]
    top: usize,
    /// Print JSON instead of tables.
    #[arg(long)]
    json: bool,
    /// Print the reputation export instead: every address scoring at least --min-score, as a
    /// plain list (one address per line) or, with --json, an array of objects.
    #[arg(long)]
    export_reputation: bool,
    /// The least score exported by --export-reputation.
    #[arg(long, value_name = "SCORE", default_value_t = 70, value_parser = clap::value_parser!(u8).range(0..=100))]
    min_score: u8,
}

/// Builds the tracer from `[tracers.ip]` of the configuration (or the defaults).
fn tracer(config: Option<&Path>) -> Result<IpTracer, ExitCode> {
    let settings = crate::load_config(config)?;
    tracer_from(&settings.tracers.ip)
}

fn tracer_from(config: &IpTracerConfig) -> Result<IpTracer, ExitCode> {
    config.build_always().map_err(|err| {
        eprintln!("error: {err}");
        ExitCode::from(crate::EXIT_USAGE)
    })
}

/// Feeds every address-bearing line of `paths` to `tracer`, and every recognised line to
/// `events` when given. Returns false if a file failed.
fn feed(tracer: &IpTracer, events: Option<&EventTracer>, paths: &[PathBuf]) -> bool {
    let parser = logs::auto_parser();
    let mut ok = true;
    let now = chrono::Utc::now();
    for path in paths {
        let res = logs::for_each_line(path, |line| {
            let Some(parsed) = parser.parse(line) else { return };
            let at = parsed.timestamp.and_then(|it| it.to_utc()).unwrap_or(now);
            if let Some(events) = events {
                events.trace(&parsed.to_log_event(line), at);
            }
            let Some(ip) = parsed.ip else { return };
            tracer.observe(ip, parsed.action.map(|it| it.as_str()), at, parsed.dport);
        });
        if let Err(err) = res {
            eprintln!("error: cannot read {}: {err}", path.display());
            ok = false;
        }
    }
    ok
}

/// The activity of `ip` recorded in the local store (`db`), when there is one: its stored log
/// events and the ban manager's `banned` decisions, replayed into `tracer` in the order they
/// were stored. `None` when the database does not exist or cannot be read (the report is then
/// empty, as for an address never seen).
fn from_store(tracer: &IpTracer, ip: IpAddr, db: &Path) -> Option<IpReport> {
    if !db.exists() {
        return None;
    }
    let store = match vigil_store::sqlite::ReadOnlyDb::open(db) {
        Ok(it) => it,
        Err(err) => {
            eprintln!("warning: cannot read the store {}: {err}", db.display());
            return None;
        }
    };
    let now = chrono::Utc::now();
    let time = |value: &SqlValue| match value {
        SqlValue::Text(text) => chrono::DateTime::parse_from_rfc3339(text)
            .map_or(now, |it| it.with_timezone(&chrono::Utc)),
        _ => now,
    };
    // `ip` is a parsed address: its text holds no quote, so it can stand in the statement.
    let logs = format!(
        "SELECT action, coalesce(log_time, time), dport FROM events \
         WHERE kind = 'log' AND ip = '{ip}' ORDER BY seq"
    );
    let bans = format!("SELECT at FROM bans WHERE stage = 'banned' AND ip = '{ip}' ORDER BY seq");
    let read = store
        .query(&logs, |_, row| {
            let action = match &row[0] {
                SqlValue::Text(it) => Some(it.as_str()),
                _ => None,
            };
            let dport = match row[2] {
                SqlValue::Integer(it) => u16::try_from(it).ok(),
                _ => None,
            };
            tracer.observe(ip, action, time(&row[1]), dport);
            Ok(())
        })
        .and_then(|_| {
            store.query(&bans, |_, row| {
                tracer.observe(ip, Some("ban"), time(&row[0]), None);
                Ok(())
            })
        });
    if let Err(err) = read {
        eprintln!("warning: cannot read the store {}: {err}", db.display());
    }
    tracer.report(ip)
}

/// Runs `vigil ip`.
pub fn run_ip(args: &IpArgs, config: Option<&Path>) -> anyhow::Result<ExitCode> {
    let Some(ip) = vigil_parse::parse_ip(args.addr.trim()) else {
        eprintln!("error: `{}` is not an IP address", args.addr);
        return Ok(ExitCode::from(crate::EXIT_USAGE));
    };
    let tracer = match tracer(config) {
        Ok(it) => it,
        Err(code) => return Ok(code),
    };
    let ok = feed(&tracer, None, &args.logs);
    let report = if args.logs.is_empty() {
        let db = args.db.clone().or_else(|| {
            crate::load_config(config).ok().map(|it| crate::stores::database_path(&it))
        });
        db.and_then(|db| from_store(&tracer, ip, &db))
    } else {
        tracer.report(ip)
    }
    .unwrap_or_else(|| tracer.empty_report(ip));
    let sockets = Sockets::read(ProcRoot::live());
    let connections = sockets.of_ip(report.ip);
    let owners = Sockets::owners(connections.iter().copied());
    let mut out = io::stdout().lock();
    if args.json {
        let mut value = serde_json::to_value(&report)?;
        value["connections"] = connections.iter().map(|it| connection_json(it)).collect();
        value["processes"] =
            owners.iter().map(|(pid, name)| json!({"pid": pid, "name": name})).collect();
        writeln!(out, "{value}")?;
    } else {
        write_report(&mut out, &report)?;
        if connections.is_empty() {
            writeln!(out, "connections: none on this host")?;
        } else {
            writeln!(out, "connections:")?;
            for it in &connections {
                let owner = match (it.pid, &it.process_name) {
                    (Some(pid), Some(name)) => format!("{name}[{pid}]"),
                    (Some(pid), None) => pid.to_string(),
                    _ => "-".to_owned(),
                };
                writeln!(
                    out,
                    "  {} {} -> {} {} {owner}",
                    it.protocol, it.local, it.remote, it.state
                )?;
            }
        }
    }
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(crate::EXIT_PROBLEMS) })
}

fn write_report(out: &mut impl Write, report: &IpReport) -> io::Result<()> {
    let provider = report.provider.as_deref().map(|it| format!(" ({it})")).unwrap_or_default();
    write!(out, "{}  {}{provider}  score {}", report.ip, report.class, report.score)?;
    if report.blocklisted {
        write!(out, "  BLOCKLISTED")?;
    }
    if report.allowlisted {
        write!(out, "  allow-listed")?;
    }
    writeln!(out)?;
    writeln!(out, "subnet: {}", report.subnet)?;
    let a = &report.activity;
    let time = |it: Option<chrono::DateTime<chrono::Utc>>| {
        it.map_or_else(|| "-".to_owned(), |it| it.to_rfc3339())
    };
    writeln!(
        out,
        "activity: {} failed logins, {} invalid users, {} accepted logins, {} bans, {} suspicious; \
         first seen {}, last seen {}",
        a.failed_logins,
        a.invalid_users,
        a.accepted_logins,
        a.bans,
        a.suspicious_events,
        time(a.first_seen),
        time(a.last_seen)
    )?;
    for reason in &report.score_reasons {
        writeln!(out, "  {reason}")?;
    }
    Ok(())
}

/// One exported address.
fn reputation_json(it: &IpReport) -> Value {
    json!({
        "ip": it.ip,
        "score": it.score,
        "class": it.class,
        "score_reasons": it.score_reasons,
        "failed_logins": it.activity.failed_logins,
        "first_seen": it.activity.first_seen,
        "last_seen": it.activity.last_seen,
    })
}

/// Runs `vigil ips`.
pub fn run_ips(args: &IpsArgs, config: Option<&Path>) -> anyhow::Result<ExitCode> {
    let tracer = match tracer(config) {
        Ok(it) => it,
        Err(code) => return Ok(code),
    };
    let events = EventTracerConfig::default().build_always();
    let ok = feed(&tracer, Some(&events), &args.logs);
    let mut out = io::BufWriter::new(io::stdout().lock());
    if args.export_reputation {
        let export = tracer.reputation(args.min_score);
        if args.json {
            let value: Vec<Value> = export.iter().map(reputation_json).collect();
            writeln!(out, "{}", Value::Array(value))?;
        } else {
            for it in &export {
                writeln!(out, "{}", it.ip)?;
            }
        }
    } else {
        let top = tracer.top(args.top);
        let patterns = tracer.patterns(args.top);
        if args.json {
            let value = json!({
                "top": top,
                "by_class": patterns.by_class,
                "subnets": patterns.subnets,
                "sweeps": patterns.sweeps,
                "stats": tracer.stats(),
                "aggregates": events.aggregates_json(args.top),
            });
            writeln!(out, "{value}")?;
        } else {
            let rows: Vec<Vec<String>> = top
                .iter()
                .map(|it| {
                    vec![
                        it.ip.to_string(),
                        it.class.to_string(),
                        it.score.to_string(),
                        it.activity.failed_logins.to_string(),
                        it.activity.invalid_users.to_string(),
                        if it.blocklisted { "yes" } else { "" }.to_owned(),
                        it.score_reasons.first().cloned().unwrap_or_default(),
                    ]
                })
                .collect();
            let headers =
                ["ADDRESS", "CLASS", "SCORE", "FAILED", "INVALID", "BLOCKED", "TOP REASON"];
            let right = [false, false, true, true, true, false, false];
            write!(out, "{}", super::table::render(&headers, &right, &rows))?;
            writeln!(out)?;
            let rows: Vec<Vec<String>> = patterns
                .subnets
                .iter()
                .map(|it| {
                    vec![
                        it.subnet.clone(),
                        it.addresses.to_string(),
                        it.failed_logins.to_string(),
                        it.suspicious_events.to_string(),
                        if it.sweep { "SWEEP" } else { "" }.to_owned(),
                    ]
                })
                .collect();
            let headers = ["SUBNET", "ADDRESSES", "FAILED", "SUSPICIOUS", ""];
            write!(
                out,
                "{}",
                super::table::render(&headers, &[false, true, true, true, false], &rows)
            )?;
            writeln!(out)?;
            if patterns.sweeps.is_empty() {
                writeln!(out, "sweeps: none")?;
            } else {
                let list: Vec<String> = patterns
                    .sweeps
                    .iter()
                    .map(|it| format!("{} ({} addresses)", it.subnet, it.addresses))
                    .collect();
                writeln!(out, "sweeps: {}", list.join(", "))?;
            }
            let aggregates = events.aggregates();
            let line = |name: &str, rows: Vec<(String, u64)>| {
                let rows: Vec<String> = rows.iter().map(|(k, n)| format!("{k} {n}")).collect();
                format!("{name}: {}", rows.join(", "))
            };
            writeln!(out, "events: {}", aggregates.events)?;
            writeln!(out, "{}", line("actions", aggregates.by_action.top(args.top)))?;
            writeln!(out, "{}", line("services", aggregates.by_service.top(args.top)))?;
            writeln!(out, "{}", line("users", aggregates.by_user.top(args.top)))?;
            for (class, row) in &patterns.by_class {
                writeln!(
                    out,
                    "{class}: {} addresses, {} hostile, {} block-listed, {} failed logins",
                    row.addresses, row.hostile, row.blocklisted, row.failed_logins
                )?;
            }
        }
    }
    match out.flush() {
        Err(err) if err.kind() == io::ErrorKind::BrokenPipe => return Ok(ExitCode::SUCCESS),
        other => other?,
    }
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(crate::EXIT_PROBLEMS) })
}
