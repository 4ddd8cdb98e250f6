//! `vigil replay FILE…`: the whole detection pipeline over historic files — parse, tracers,
//! detectors, ban decisions (always a dry run) — as fast as the machine allows, with event-time
//! clocks so the result depends only on the files and the configuration.
//!
//! The tracers are the agent's log tracers (`[tracers.ip]`, `.event`, `.error`, built by
//! `crate::tracers::log_tracers` as `vigil run` builds them); the IP tracer's block-list
//! requests are reported apart (`blocklisted`), never mixed into the jails' `bans`.
//!
//! Files are read in large blocks and each line is parsed once in place (see `vigil parse`);
//! detectors read the borrowed line, so lines no detector counts cost only their parse. A
//! progress bar shows on a terminal (standard error), never when piped.

use std::{
    fs::File,
    io::{self, IsTerminal, Read, Write},
    path::PathBuf,
    process::ExitCode,
};

use serde::Serialize;
use vigil_core::event::{Ban, BanStage, Finding};
use vigil_detect::{JailSet, Replay, ReplaySummary};
use vigil_parse::{Clock, Format};
use vigil_respond::{BanManager, BansConfig};

use crate::{
    commands::{backfill::Backfill, parse::for_each_line},
    settings::Config,
};

/// Arguments of `vigil replay`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Log files to replay, in order; `-` reads standard input.
    #[arg(value_name = "FILE", required = true)]
    files: Vec<PathBuf>,
    /// Run only this jail (repeat for several); the default runs every enabled jail.
    #[arg(long, value_name = "NAME")]
    jail: Vec<String>,
    /// Print one JSON object: lines, events, findings, bans (ip, jail, at, until, failures),
    /// and blocklisted (ip, at, score, reasons: the IP tracer's block-list, apart from bans).
    #[arg(long)]
    json: bool,
    /// The time year-less timestamps are completed against, RFC 3339 (default: the newest
    /// modification time of the files, so a replay gives the same result whenever it runs).
    #[arg(long, value_name = "RFC3339")]
    now: Option<String>,
    /// Zone of timestamps written without one (default: the system's), e.g. Europe/Berlin.
    #[arg(long, value_name = "ZONE")]
    tz: Option<String>,
    /// Back-fill the SQLite store: every recognised line (once, however often the file is
    /// replayed), the findings and the dry-run ban decisions.
    #[arg(long)]
    store: bool,
    /// The database --store writes (default: `stores.sqlite.path` of the configuration, else
    /// `vigil.db` in the state directory).
    #[arg(long, value_name = "PATH", requires = "store")]
    db: Option<PathBuf>,
}

/// Runs `vigil replay`.
pub fn run(args: &Args, config: &Config) -> anyhow::Result<ExitCode> {
    let usage = |message: String| {
        eprintln!("error: {message}");
        Ok(ExitCode::from(crate::EXIT_USAGE))
    };
    let clock = match clock(args) {
        Ok(it) => it,
        Err(err) => return usage(format!("{err:#}")),
    };
    let mut jails = config.jails.effective();
    if !args.jail.is_empty() {
        for name in &args.jail {
            match jails.get_mut(name) {
                Some(jail) => jail.enabled = true,
                None => {
                    let known: Vec<&str> = jails.keys().map(String::as_str).collect();
                    return usage(format!("no jail {name:?} (jails: {})", known.join(", ")));
                }
            }
        }
        jails.retain(|name, _| args.jail.contains(name));
    }
    let jails = match JailSet::build(&jails) {
        Ok(it) => it,
        Err(err) => return usage(err.to_string()),
    };
    let sshd = config.detectors.sshd.build();
    let others = crate::agent_detect::line_detectors(config);
    // The IP tracer's block-list is always reported; whether the agent also hands it to the
    // ban manager (`request_bans`) does not change what the tracer decides.
    let mut tracers_config = config.tracers.clone();
    tracers_config.ip.request_bans = true;
    let tracers = match crate::tracers::log_tracers(&tracers_config) {
        Ok(it) => it,
        Err(err) => return usage(format!("{err:#}")),
    };
    let host = config.agent.host.clone().unwrap_or_else(|| "replay".to_owned());
    let mut replay = Replay::new(Format::Auto.parser(clock), jails, sshd, others)
        .with_tracers(tracers.chain, host.into());

    let total_bytes: u64 =
        args.files.iter().filter_map(|it| std::fs::metadata(it).ok()).map(|it| it.len()).sum();
    let bar = if io::stderr().is_terminal() && !args.files.iter().any(|it| it.as_os_str() == "-") {
        let bar = indicatif::ProgressBar::new(total_bytes);
        let style = indicatif::ProgressStyle::with_template(
            "{bar:40} {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
        );
        if let Ok(style) = style {
            bar.set_style(style);
        }
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };

    let mut decisions = match BanDecisions::new(&config.bans) {
        Ok(it) => it,
        Err(err) => return usage(format!("{err:#}")),
    };
    let mut backfill = match args.store {
        false => None,
        true => {
            let db = args.db.clone().unwrap_or_else(|| crate::stores::database_path(config));
            let host = config.agent.host.clone().unwrap_or_else(vigil_runtime::default_host);
            match Backfill::start(&db, &host) {
                Ok(it) => Some(it),
                Err(err) => {
                    eprintln!("error: {err:#}");
                    return Ok(ExitCode::from(crate::EXIT_PROBLEMS));
                }
            }
        }
    };
    let mut store_error = None;
    let mut bans = Vec::new();
    let mut requests = Vec::new();
    let mut failed = false;
    let mut totals = super::parse::Totals::default();
    let mut read_bytes = 0u64;
    for path in &args.files {
        let input: Box<dyn Read> = if path.as_os_str() == "-" {
            Box::new(io::stdin().lock())
        } else {
            match File::open(path) {
                Ok(it) => Box::new(it),
                Err(err) => {
                    bar.suspend(|| eprintln!("error: cannot read {}: {err}", path.display()));
                    failed = true;
                    continue;
                }
            }
        };
        if let Some(backfill) = &mut backfill {
            backfill.begin_file(path);
        }
        let mut offset = 0u64;
        let res = for_each_line(input, &mut totals, |_, line, _| {
            match &mut backfill {
                Some(backfill) if store_error.is_none() => {
                    let mut kept = None;
                    replay.line_keeping(line, &mut requests, |log| kept = Some(log));
                    if let Some(log) = kept
                        && let Err(err) = backfill.line(log, offset, line.len())
                    {
                        store_error = Some(err);
                    }
                }
                _ => replay.line(line, &mut requests),
            }
            offset += line.len() as u64 + 1;
            if !requests.is_empty() {
                for ban in decisions.decide(requests.drain(..)) {
                    if ban.stage == BanStage::Banned {
                        replay.ban_decided(&ban);
                        bans.push(ban);
                    }
                }
            }
            read_bytes += line.len() as u64 + 1;
            if replay.lines().is_multiple_of(65_536) {
                bar.set_position(read_bytes);
            }
            true
        });
        if let Err(err) = res {
            bar.suspend(|| eprintln!("error: cannot read {}: {err}", path.display()));
            failed = true;
        }
    }
    bar.finish_and_clear();
    let summary = replay.finish();
    if let Some(err) = store_error {
        eprintln!("error: {err:#}");
        return Ok(ExitCode::from(crate::EXIT_PROBLEMS));
    }
    let stored = match backfill.map(|it| it.finish(&summary.findings, &bans)).transpose() {
        Ok(it) => it,
        Err(err) => {
            eprintln!("error: {err:#}");
            return Ok(ExitCode::from(crate::EXIT_PROBLEMS));
        }
    };
    let printed = if args.json { print_json(&summary, &bans) } else { print_text(&summary, &bans) };
    match printed {
        Err(err) if err.kind() == io::ErrorKind::BrokenPipe => return Ok(ExitCode::SUCCESS),
        other => other?,
    }
    if totals.truncated > 0 {
        eprintln!(
            "warning: {} lines longer than {} bytes were truncated",
            totals.truncated,
            super::parse::MAX_LINE
        );
    }
    if totals.invalid_utf8 > 0 {
        eprintln!("warning: {} lines had invalid UTF-8 (replaced)", totals.invalid_utf8);
    }
    if let Some(stored) = stored {
        eprintln!(
            "stored {} events ({} lines were already in the store)",
            stored.inserted, stored.duplicates
        );
    }
    Ok(if failed { ExitCode::from(crate::EXIT_PROBLEMS) } else { ExitCode::SUCCESS })
}

/// The ban decisions of a replay: the ban manager's own decision step (`vigil_respond`), in
/// dry-run whatever the configuration says, with event-time clocks. It refuses what the agent's
/// manager refuses (loopback, special ranges, `[bans] ignoreip` and `own_addresses`), extends a
/// ban requested again, and aggregates prefixes when `[bans.aggregate]` asks for it. The
/// addresses of the machine running the replay are not added: the files may come from another
/// host, and the result must depend only on the files and the configuration.
pub struct BanDecisions {
    manager: BanManager,
}

impl BanDecisions {
    /// A dry-run ban manager built from the `[bans]` section.
    pub fn new(config: &BansConfig) -> anyhow::Result<BanDecisions> {
        let dry_run = BansConfig { enforce: false, ..config.clone() };
        let manager = BanManager::new(&dry_run, std::iter::empty())
            .map_err(|err| anyhow::anyhow!("[bans]: {err}"))?;
        Ok(BanDecisions { manager })
    }

    /// Decides `requests` in order; bans that ended before a request are lifted first.
    pub fn decide(&mut self, requests: impl IntoIterator<Item = Ban>) -> Vec<Ban> {
        let mut decided = Vec::new();
        for request in requests {
            self.manager.expire(request.at);
            decided.extend(self.manager.decide(&request, request.at).events);
        }
        decided
    }
}

fn clock(args: &Args) -> anyhow::Result<Clock> {
    super::parse::clock_from(args.tz.as_deref(), args.now.as_deref(), || {
        newest_mtime(&args.files).unwrap_or_else(jiff::Timestamp::now)
    })
}

/// The newest modification time of the files that exist.
fn newest_mtime(files: &[PathBuf]) -> Option<jiff::Timestamp> {
    let newest = files.iter().filter_map(|it| std::fs::metadata(it).ok()?.modified().ok()).max()?;
    jiff::Timestamp::try_from(newest).ok()
}

/// One block-list request of the IP tracer as `--json` prints it.
#[derive(Serialize)]
struct JsonBlocklisted<'a> {
    ip: &'a str,
    at: String,
    score: &'a serde_json::Value,
    reasons: &'a serde_json::Value,
}

/// One ban as `--json` prints it (the keys are the contract of `vigil replay --json`).
#[derive(Serialize)]
struct JsonBan<'a> {
    ip: &'a str,
    jail: &'a str,
    at: String,
    until: Option<String>,
    failures: u64,
}

#[derive(Serialize)]
struct JsonSummary<'a> {
    lines: u64,
    events: u64,
    findings: &'a [Finding],
    bans: Vec<JsonBan<'a>>,
    findings_total: u64,
    blocklisted: Vec<JsonBlocklisted<'a>>,
}

fn rfc3339(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

fn print_json(summary: &ReplaySummary, bans: &[Ban]) -> io::Result<()> {
    let json = JsonSummary {
        lines: summary.lines,
        events: summary.events,
        findings: &summary.findings,
        bans: bans
            .iter()
            .map(|b| JsonBan {
                ip: &b.ip,
                jail: &b.jail,
                at: rfc3339(b.at),
                until: b.until.map(rfc3339),
                failures: b.failures,
            })
            .collect(),
        findings_total: summary.findings_total,
        blocklisted: summary
            .blocklisted
            .iter()
            .map(|b| JsonBlocklisted {
                ip: &b.ip,
                at: rfc3339(b.at),
                score: b.evidence.data.get("score").unwrap_or(&serde_json::Value::Null),
                reasons: b.evidence.data.get("score_reasons").unwrap_or(&serde_json::Value::Null),
            })
            .collect(),
    };
    let mut out = io::BufWriter::new(io::stdout().lock());
    serde_json::to_writer(&mut out, &json)?;
    writeln!(out)?;
    out.flush()
}

fn print_text(summary: &ReplaySummary, bans: &[Ban]) -> io::Result<()> {
    let mut out = io::BufWriter::new(io::stdout().lock());
    for ban in bans {
        let until = ban.until.map_or_else(|| "permanent".to_owned(), rfc3339);
        writeln!(
            out,
            "ban {} jail {} at {} until {} after {} failures",
            ban.ip,
            ban.jail,
            rfc3339(ban.at),
            until,
            ban.failures
        )?;
    }
    writeln!(out, "lines     {:>12}", summary.lines)?;
    writeln!(out, "events    {:>12}", summary.events)?;
    writeln!(out, "findings  {:>12}", summary.findings_total)?;
    writeln!(out, "bans      {:>12}", bans.len())?;
    let mut addresses: Vec<&str> = bans.iter().map(|it| it.ip.as_str()).collect();
    addresses.sort_unstable();
    addresses.dedup();
    writeln!(out, "addresses {:>12}", addresses.len())?;
    writeln!(out, "block-listed by threat score: {}", summary.blocklisted_total)?;
    out.flush()
}
