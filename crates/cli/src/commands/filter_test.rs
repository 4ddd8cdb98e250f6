//! `vigil filter-test`: the `fail2ban-regex` equivalent. Runs a fail2ban filter file (unchanged,
//! optionally with `[key=value,…]` options) or a bare regex over a log file and prints a summary,
//! or with `--json` one verdict per input line so the result can be compared with fail2ban's.

use std::{
    collections::BTreeMap,
    io::{BufRead, BufReader, BufWriter, Read, Write},
    path::{Path, PathBuf},
    process::ExitCode,
    time::Instant,
};

use chrono::{DateTime, Datelike, SecondsFormat, TimeZone, Utc};
use vigil_f2b::{
    Clock, Filter, FilterDefinition, LineResult, Matcher, Scan, chrono_tz::Tz, read_filter,
    split_options,
};

/// Arguments of `vigil filter-test`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
FILTER is a fail2ban filter file (its directory resolves [INCLUDES]), optionally followed by \
options as in a jail: 'filter.d/sshd.conf[mode=aggressive]'. Anything else is taken as one \
failregex (Python syntax, fail2ban tags such as <HOST>) with fail2ban's default date detection.

With --json, each input line yields exactly one object, comment lines included:
{\"line\": N, \"matched\": bool, \"ignored\": bool, \"host\": \"addr\"|null, \"time\": \"RFC3339\"|null}

With --usedns yes|warn, a host name matched by <HOST> is resolved (system resolver, 3 s timeout, \
cached) and \"host\" is its first address; the object then also has \"hosts\": every address \
(fail2ban reports one failure per address). With --usedns no, <HOST> matches addresses only.

With the option logtype=journal, lines are journal messages: no date is parsed and the time is \
--now.

Exit codes: 0 the log was processed; 1 processed, but some lines were not valid UTF-8 (they were \
read with replacement characters, as fail2ban does); 2 usage error, unreadable log, or a filter \
that fails to load (unreadable or malformed file, interpolation error, a regex or datepattern \
that does not compile — fail2ban would refuse such a filter too).")]
pub struct Args {
    /// The log file to test (`-` reads standard input).
    #[arg(value_name = "LOG")]
    log: PathBuf,
    /// A fail2ban filter file with optional `[key=value,…]` options, or a bare failregex.
    #[arg(value_name = "FILTER")]
    filter: String,
    /// One JSON object per input line instead of the summary.
    #[arg(long)]
    json: bool,
    /// IANA zone of timestamps without an offset (default: the system's zone).
    #[arg(long, value_name = "ZONE")]
    tz: Option<String>,
    /// Freeze the clock (RFC 3339) used to complete year-less timestamps and to date journal
    /// lines (default: now).
    #[arg(long, value_name = "RFC3339")]
    now: Option<String>,
    /// fail2ban's `usedns` (yes, warn, no, raw), overriding the filter's; without it host names
    /// are reported raw, as fail2ban's test mode does.
    #[arg(long, value_name = "MODE")]
    usedns: Option<String>,
    /// fail2ban's `logtimezone` (`UTC`, `UTC+0200`, `-04:00`, `CET`…): the fixed zone of
    /// timestamps without one; it wins over --tz for reading them (fail2ban-regex --timezone).
    #[arg(long, value_name = "ZONE")]
    logtimezone: Option<String>,
}

const EXIT_PROBLEMS: u8 = 1;
const EXIT_USAGE: u8 = 2;

fn usage(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(EXIT_USAGE)
}

/// The system's zone: `TZ`, `/etc/timezone`, or the `/etc/localtime` link; UTC otherwise.
fn system_zone() -> Tz {
    let parse = |s: &str| s.trim().trim_start_matches(':').parse::<Tz>().ok();
    if let Ok(tz) = std::env::var("TZ")
        && let Some(z) = parse(&tz)
    {
        return z;
    }
    if let Ok(s) = std::fs::read_to_string("/etc/timezone")
        && let Some(z) = parse(&s)
    {
        return z;
    }
    if let Ok(link) = std::fs::read_link("/etc/localtime")
        && let Some((_, name)) = link.to_string_lossy().split_once("zoneinfo/")
        && let Some(z) = parse(name)
    {
        return z;
    }
    Tz::UTC
}

/// Reads the log line by line as fail2ban's `FileContainer` does: split on `\n`, lossy UTF-8,
/// trailing `\r`/`\n` stripped. Calls `each` with the line; returns the number of lines that
/// were not valid UTF-8.
fn for_each_line(
    path: &Path,
    mut each: impl FnMut(&str) -> std::io::Result<()>,
) -> std::io::Result<usize> {
    let input: Box<dyn Read> = if path.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::fs::File::open(path)?)
    };
    let mut reader = BufReader::with_capacity(1 << 20, input);
    let mut raw = Vec::with_capacity(4096);
    let mut invalid = 0;
    loop {
        raw.clear();
        if reader.read_until(b'\n', &mut raw)? == 0 {
            return Ok(invalid);
        }
        while raw.last().is_some_and(|&b| b == b'\n' || b == b'\r') {
            raw.pop();
        }
        match std::str::from_utf8(&raw) {
            Ok(line) => each(line)?,
            Err(_) => {
                invalid += 1;
                each(String::from_utf8_lossy(&raw).trim_end_matches(['\r', '\n']))?;
            }
        }
    }
}

/// Lines per unit of work handed to a scanning thread.
const CHUNK_LINES: usize = 2048;

/// A run of consecutive lines: the text each line's regexes search (one after the other in
/// `text`, each ending at its `ends` entry), their times, and once scanned their [`Scan`]s.
#[derive(Default)]
struct Chunk {
    id: u64,
    text: String,
    ends: Vec<usize>,
    dates: Vec<Option<f64>>,
    scans: Vec<Scan>,
    /// A scanning thread panicked on this chunk.
    failed: bool,
}

/// Runs a single-line filter over the log on `workers` threads: this thread reads the lines and
/// cuts out their timestamps in order (`prepare`), the workers run the regexes over chunks of
/// lines (`Matcher::scan`, which needs no state), and this thread applies the results in line
/// order (`Filter::apply`, which keeps the multi-line failure IDs) and hands them to `emit`.
/// The output is the same as line-by-line processing. At most `2 * workers + 2` chunks are in
/// flight, so memory stays bounded.
fn scan_in_parallel(
    path: &Path,
    filter: &mut Filter,
    workers: usize,
    mut prepare: impl FnMut(&mut Filter, &str, &mut String) -> Option<f64>,
    emit: &mut impl FnMut(LineResult) -> std::io::Result<()>,
) -> std::io::Result<usize> {
    let matcher = filter.matcher();
    let limit = 2 * workers + 2;
    let (job_tx, job_rx) = std::sync::mpsc::sync_channel::<Chunk>(limit);
    let (done_tx, done_rx) = std::sync::mpsc::sync_channel::<Chunk>(limit);
    let job_rx = std::sync::Mutex::new(job_rx);
    std::thread::scope(|s| {
        for _ in 0..workers {
            // Each worker has its own copy: the regex engines' caches then need no locking.
            let (matcher, job_rx, done_tx) = (Matcher::clone(&matcher), &job_rx, done_tx.clone());
            s.spawn(move || {
                loop {
                    let job =
                        job_rx.lock().unwrap_or_else(std::sync::PoisonError::into_inner).recv();
                    let Ok(mut chunk) = job else { return };
                    let scanned = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        let mut start = 0;
                        for &end in &chunk.ends {
                            let scan = matcher.scan(&chunk.text[start..end]);
                            chunk.scans.push(scan);
                            start = end;
                        }
                    }));
                    chunk.failed = scanned.is_err();
                    if done_tx.send(chunk).is_err() {
                        return;
                    }
                }
            });
        }
        drop(done_tx);
        let mut state = InOrder {
            done: &done_rx,
            pending: BTreeMap::new(),
            next: 0,
            in_flight: 0,
            spare: Vec::new(),
        };
        let mut current = Chunk::default();
        let mut next_id = 0;
        let mut send = |chunk: Chunk, state: &mut InOrder<'_>, filter: &mut Filter| {
            while state.in_flight >= limit {
                state.collect(filter, emit)?;
            }
            job_tx
                .send(chunk)
                .map_err(|_| std::io::Error::other("the scanning threads stopped"))?;
            state.in_flight += 1;
            Ok::<(), std::io::Error>(())
        };
        let read = for_each_line(path, |line| {
            let date = prepare(filter, line, &mut current.text);
            current.ends.push(current.text.len());
            current.dates.push(date);
            if current.ends.len() >= CHUNK_LINES {
                let mut next = state.spare.pop().unwrap_or_default();
                next_id += 1;
                next.id = next_id;
                send(std::mem::replace(&mut current, next), &mut state, filter)?;
            }
            Ok(())
        });
        let result = read.and_then(|invalid| {
            if !current.ends.is_empty() {
                send(std::mem::take(&mut current), &mut state, filter)?;
            }
            Ok(invalid)
        });
        let result = result.and_then(|invalid| {
            while state.in_flight > 0 {
                state.collect(filter, emit)?;
            }
            Ok(invalid)
        });
        drop(job_tx);
        result
    })
}

/// The scanned chunks that came back, applied in line order.
struct InOrder<'a> {
    done: &'a std::sync::mpsc::Receiver<Chunk>,
    /// Chunks that came back before their predecessors.
    pending: BTreeMap<u64, Chunk>,
    /// The id of the next chunk to apply.
    next: u64,
    in_flight: usize,
    /// Applied chunks, to reuse their buffers.
    spare: Vec<Chunk>,
}

impl InOrder<'_> {
    /// Waits for one scanned chunk, then applies every chunk that is next in line.
    fn collect(
        &mut self,
        filter: &mut Filter,
        emit: &mut impl FnMut(LineResult) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        let chunk =
            self.done.recv().map_err(|_| std::io::Error::other("the scanning threads stopped"))?;
        if chunk.failed {
            return Err(std::io::Error::other("a scanning thread failed"));
        }
        self.pending.insert(chunk.id, chunk);
        while let Some(mut chunk) = self.pending.remove(&self.next) {
            for (scan, date) in chunk.scans.drain(..).zip(chunk.dates.iter()) {
                emit(filter.apply(scan, *date))?;
            }
            self.next += 1;
            self.in_flight -= 1;
            chunk.text.clear();
            chunk.ends.clear();
            chunk.dates.clear();
            self.spare.push(chunk);
        }
        Ok(())
    }
}

fn format_time(t: f64, zone: Tz) -> Option<String> {
    let secs = t.floor();
    let micros = ((t - secs) * 1_000_000.0).round() as u32;
    let (secs, micros) = if micros >= 1_000_000 { (secs + 1.0, 0) } else { (secs, micros) };
    let dt = zone.timestamp_opt(secs as i64, micros * 1000).single()?;
    let format = if micros == 0 { SecondsFormat::Secs } else { SecondsFormat::Micros };
    Some(dt.to_rfc3339_opts(format, false))
}

/// Runs `vigil filter-test`.
pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let zone = match &args.tz {
        Some(name) => match name.parse::<Tz>() {
            Ok(z) => z,
            Err(_) => return Ok(usage(format!("--tz: unknown time zone {name:?}"))),
        },
        None => system_zone(),
    };
    let real_now = Utc::now();
    let now = match &args.now {
        Some(s) => match DateTime::parse_from_rfc3339(s) {
            Ok(d) => d.timestamp() as f64 + f64::from(d.timestamp_subsec_micros()) / 1e6,
            Err(err) => return Ok(usage(format!("--now: not an RFC 3339 time {s:?}: {err}"))),
        },
        None => real_now.timestamp() as f64,
    };
    let real_year = real_now.with_timezone(&zone).year();
    let clock = Clock { now, zone, real_year };

    // A filter file (with options) or a bare regex.
    let (path, opts) = match split_options(&args.filter) {
        Ok((p, o)) if Path::new(&p).is_file() => (Some(PathBuf::from(p)), o),
        Ok((p, _)) if p.ends_with(".conf") || p.ends_with(".local") => {
            return Ok(usage(format!("filter file not found: {p}")));
        }
        Err(err) if args.filter.ends_with(']') && args.filter.contains(".conf[") => {
            return Ok(usage(format!("bad filter options in {:?}: {err}", args.filter)));
        }
        _ => (None, BTreeMap::new()),
    };
    let mut def = match &path {
        Some(p) => match read_filter(p, &opts) {
            Ok(d) => d,
            Err(err) => {
                eprintln!("error: cannot load filter {}: {err}", args.filter);
                return Ok(ExitCode::from(EXIT_USAGE));
            }
        },
        None => FilterDefinition {
            failregex: vec![args.filter.clone()],
            maxlines: 1,
            ..FilterDefinition::default()
        },
    };
    if let Some(mode) = &args.usedns {
        if vigil_f2b::UseDns::parse(mode).is_none() {
            return Ok(usage(format!("--usedns: expected yes, warn, no or raw, not {mode:?}")));
        }
        def.usedns = Some(mode.clone());
    }
    let mut filter = Filter::new(&def, real_year);
    if let Some(tz) = &args.logtimezone
        && let Err(err) = filter.set_log_timezone(tz)
    {
        return Ok(usage(format!("--logtimezone: {err}")));
    }
    let warn_dns = filter.usedns() == vigil_f2b::UseDns::Warn;
    if !filter.problems().is_empty() {
        for p in filter.problems() {
            let at = if p.index > 0 { format!(" #{}", p.index) } else { String::new() };
            eprintln!("error: cannot load filter {}: {}{at}: {}", args.filter, p.option, p.message);
        }
        return Ok(ExitCode::from(EXIT_USAGE));
    }
    let journal = opts.get("logtype").is_some_and(|v| v == "journal");

    if args.log.as_os_str() != "-"
        && let Err(err) = std::fs::File::open(&args.log)
    {
        return Ok(usage(format!("cannot read {}: {err}", args.log.display())));
    }

    let started = Instant::now();
    let stdout = std::io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut hits = vec![0usize; filter.failregex_count()];
    let (mut matched, mut ignored, mut n) = (0usize, 0usize, 0usize);
    let mut emit = |r: LineResult| -> std::io::Result<()> {
        if r.matched {
            matched += 1;
            if let Some(i) = r.regex {
                hits[i] += 1;
            }
        }
        if r.ignored {
            ignored += 1;
        }
        n += 1;
        if warn_dns && let Some(name) = &r.resolved_from {
            eprintln!("warning: determined IP using DNS lookup: {name} = {:?}", r.hosts);
        }
        if args.json {
            let mut record = serde_json::json!({
                "line": n,
                "matched": r.matched,
                "ignored": r.ignored,
                "host": if r.matched { r.host.as_deref() } else { None },
                "time": if r.matched { r.time.and_then(|t| format_time(t, zone)) } else { None },
            });
            if r.matched && !r.hosts.is_empty() {
                record["hosts"] = serde_json::json!(r.hosts);
            }
            serde_json::to_writer(&mut out, &record).map_err(std::io::Error::from)?;
            out.write_all(b"\n")?;
        }
        Ok(())
    };
    let workers = std::thread::available_parallelism().map_or(1, std::num::NonZero::get).min(8);
    let processed = if filter.single_line() && workers > 1 {
        scan_in_parallel(
            &args.log,
            &mut filter,
            workers,
            |filter, line, buf| {
                if journal {
                    filter.prepare_journal_line(line, now, buf)
                } else {
                    filter.prepare_line(line, &clock, buf)
                }
            },
            &mut emit,
        )
    } else {
        for_each_line(&args.log, |line| {
            emit(if journal {
                filter.process_journal_line(line, now)
            } else {
                filter.process_line(line, &clock)
            })
        })
    };
    let invalid = match processed {
        Ok(invalid) => invalid,
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => return Ok(ExitCode::SUCCESS),
        Err(err) => return Err(anyhow::anyhow!("reading {}: {err}", args.log.display())),
    };
    let total = n;
    if !args.json {
        let elapsed = started.elapsed().as_secs_f64();
        let name =
            path.as_deref().map_or_else(|| "(regex)".to_owned(), |p| p.display().to_string());
        let mut s = String::new();
        s.push_str("Running tests\n=============\n\n");
        s.push_str(&format!("Use   failregex filter file : {name}\n"));
        for (k, v) in &opts {
            s.push_str(&format!("Use   filter option : {k} = {v}\n"));
        }
        if let Some(dp) = &def.datepattern {
            s.push_str(&format!("Use      datepattern : {}\n", dp.replace('\n', " ")));
        }
        s.push_str(&format!("Use         log file : {}\n", args.log.display()));
        s.push_str("Use         encoding : UTF-8\n\nResults\n=======\n\n");
        s.push_str(&format!("Failregex: {matched} total\n|-  #) [# of hits] regular expression\n"));
        for (i, src) in filter.failregex_sources().enumerate() {
            if hits[i] > 0 {
                s.push_str(&format!("|  {:>2}) [{}] {src}\n", i + 1, hits[i]));
            }
        }
        s.push_str("`-\n\n");
        s.push_str(&format!("Ignoreregex: {ignored} total\n\n"));
        if !filter.fancy().is_empty() {
            s.push_str("Backtracking engine (fancy-regex, backtrack limit ");
            s.push_str(&format!("{}):\n", vigil_f2b::BACKTRACK_LIMIT));
            for f in filter.fancy() {
                let at = if f.index > 0 { format!(" #{}", f.index) } else { String::new() };
                s.push_str(&format!("|- {}{at}: {}\n", f.option, f.features.join(", ")));
            }
            s.push_str("`-\n\n");
        }
        let missed = total - matched - ignored.min(total - matched);
        s.push_str(&format!(
            "Lines: {total} lines, {ignored} ignored, {matched} matched, {missed} missed\n"
        ));
        if invalid > 0 {
            s.push_str(&format!(
                "|- {invalid} lines were not valid UTF-8 (read with replacement)\n"
            ));
        }
        s.push_str(&format!("[processed in {elapsed:.2} sec]\n"));
        if let Err(err) = out.write_all(s.as_bytes())
            && err.kind() != std::io::ErrorKind::BrokenPipe
        {
            return Err(err.into());
        }
    }
    match out.flush() {
        Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => return Err(err.into()),
        _ => {}
    }
    if invalid > 0 {
        eprintln!("warning: {invalid} lines of {} were not valid UTF-8", args.log.display());
        return Ok(ExitCode::from(EXIT_PROBLEMS));
    }
    Ok(ExitCode::SUCCESS)
}
