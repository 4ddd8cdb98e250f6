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
    Clock, Filter, FilterDefinition, Guess, LineResult, Matcher, ScanBatch, Speculator,
    chrono_tz::Tz, read_filter, split_options,
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

/// Bytes of whole lines per unit of work handed to a scanning thread (a longer line makes a
/// larger chunk).
const CHUNK_BYTES: usize = 256 << 10;

/// A run of consecutive lines as read, and once scanned, per line: where it is, the scanning
/// thread's date [`Guess`] and the [`Scan`] of the text the guess cut out.
#[derive(Default)]
struct Chunk {
    id: u64,
    /// Whole lines, each ending in `\n` except perhaps the log's last one.
    raw: Vec<u8>,
    /// Each line's byte range in `raw`, without its line ending.
    lines: Vec<(usize, usize)>,
    guesses: Vec<Option<Guess>>,
    /// The scans, one per line (lines without a guess scan as matching nothing).
    scans: ScanBatch,
    /// Lines that were not valid UTF-8.
    invalid: usize,
    /// A scanning thread panicked on this chunk.
    failed: bool,
}

/// A line as fail2ban's `FileContainer` reads it: lossy UTF-8 (with its final `\r`/`\n`
/// already stripped); whether it was valid.
fn decode(bytes: &[u8]) -> (std::borrow::Cow<'_, str>, bool) {
    match std::str::from_utf8(bytes) {
        Ok(line) => (std::borrow::Cow::Borrowed(line), true),
        Err(_) => {
            let lossy = String::from_utf8_lossy(bytes);
            let line = lossy.trim_end_matches(['\r', '\n']).to_owned();
            (std::borrow::Cow::Owned(line), false)
        }
    }
}

/// The scanning thread's work on a chunk: split the lines (as [`for_each_line`] does), date
/// each with the thread's own date detector, and scan the lines whose date was guessed.
fn scan_chunk(
    chunk: &mut Chunk,
    matcher: &Matcher,
    spec: &mut Speculator,
    guess: &impl Fn(&mut Speculator, &str, &mut String) -> Option<Guess>,
    buf: &mut String,
) {
    let raw = &chunk.raw;
    let mut start = 0;
    while start < raw.len() {
        let (end, next) = match memchr::memchr(b'\n', &raw[start..]) {
            Some(p) => (start + p, start + p + 1),
            None => (raw.len(), raw.len()),
        };
        let mut stop = end;
        while stop > start && raw[stop - 1] == b'\r' {
            stop -= 1;
        }
        let (line, valid) = decode(&raw[start..stop]);
        if !valid {
            chunk.invalid += 1;
        }
        buf.clear();
        let g = guess(spec, &line, buf);
        if g.is_some() {
            matcher.scan_into(buf, &mut chunk.scans);
        } else {
            chunk.scans.push_unscanned();
        }
        chunk.guesses.push(g);
        chunk.lines.push((start, stop));
        start = next;
    }
}

/// Reads up to about [`CHUNK_BYTES`] of whole lines into `raw` (after `carry`, the start of a
/// line left over from the last read, which it empties); keeps what follows the last `\n` in
/// `carry`. Returns false at the end of the input with nothing read.
fn read_chunk(
    input: &mut impl Read,
    carry: &mut Vec<u8>,
    raw: &mut Vec<u8>,
) -> std::io::Result<bool> {
    raw.clear();
    raw.append(carry);
    loop {
        let len = raw.len();
        if len >= CHUNK_BYTES
            && let Some(p) = memchr::memrchr(b'\n', raw)
        {
            carry.extend_from_slice(&raw[p + 1..]);
            raw.truncate(p + 1);
            return Ok(true);
        }
        raw.resize(len + CHUNK_BYTES.max(len / 2), 0);
        let n = loop {
            match input.read(&mut raw[len..]) {
                Ok(n) => break n,
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
                Err(err) => {
                    raw.truncate(len);
                    return Err(err);
                }
            }
        };
        raw.truncate(len + n);
        if n == 0 {
            return Ok(!raw.is_empty());
        }
    }
}

/// Runs a single-line filter over the log on `workers` threads: this thread reads blocks of
/// whole lines, the workers split them into lines, date them speculatively (each with its own
/// copy of the date detector, [`Speculator`]) and run the regexes (`Matcher::scan`, which
/// needs no state), and this thread, in line order, confirms each line's date guess against the
/// real date detector (`Filter::accept`), applies the scan (`Filter::apply`, which keeps the
/// multi-line failure IDs) and hands the result to `emit`. A line whose guess does not hold is
/// processed here from scratch (`redo`). The output is the same as line-by-line processing. At
/// most `2 * workers + 2` chunks are in flight, so memory stays bounded.
fn scan_in_parallel(
    path: &Path,
    filter: &mut Filter,
    workers: usize,
    guess: impl Fn(&mut Speculator, &str, &mut String) -> Option<Guess> + Sync,
    mut redo: impl FnMut(&mut Filter, &str) -> LineResult,
    emit: &mut impl FnMut(LineResult) -> std::io::Result<()>,
) -> std::io::Result<usize> {
    let mut input: Box<dyn Read> = if path.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::fs::File::open(path)?)
    };
    let matcher = filter.matcher();
    let limit = 2 * workers + 2;
    let (job_tx, job_rx) = std::sync::mpsc::sync_channel::<Chunk>(limit);
    let (done_tx, done_rx) = std::sync::mpsc::sync_channel::<Chunk>(limit);
    let job_rx = std::sync::Mutex::new(job_rx);
    let guess = &guess;
    std::thread::scope(|s| {
        for _ in 0..workers {
            // Each worker has its own copies: the regex engines' caches then need no locking.
            let (matcher, mut spec) = (matcher.for_thread(), filter.speculator());
            let (job_rx, done_tx) = (&job_rx, done_tx.clone());
            s.spawn(move || {
                let mut buf = String::new();
                loop {
                    let job =
                        job_rx.lock().unwrap_or_else(std::sync::PoisonError::into_inner).recv();
                    let Ok(mut chunk) = job else { return };
                    let scanned = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        scan_chunk(&mut chunk, &matcher, &mut spec, guess, &mut buf);
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
            invalid: 0,
        };
        let mut carry = Vec::new();
        let mut next_id = 0;
        let result = (|| {
            loop {
                let mut chunk = state.spare.pop().unwrap_or_default();
                if !read_chunk(&mut input, &mut carry, &mut chunk.raw)? {
                    break;
                }
                chunk.id = next_id;
                next_id += 1;
                while state.in_flight >= limit {
                    state.collect(filter, &mut redo, emit)?;
                }
                job_tx
                    .send(chunk)
                    .map_err(|_| std::io::Error::other("the scanning threads stopped"))?;
                state.in_flight += 1;
            }
            while state.in_flight > 0 {
                state.collect(filter, &mut redo, emit)?;
            }
            Ok(state.invalid)
        })();
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
    /// Lines that were not valid UTF-8 so far.
    invalid: usize,
}

impl InOrder<'_> {
    /// Waits for one scanned chunk, then applies every chunk that is next in line.
    fn collect(
        &mut self,
        filter: &mut Filter,
        redo: &mut impl FnMut(&mut Filter, &str) -> LineResult,
        emit: &mut impl FnMut(LineResult) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        let chunk =
            self.done.recv().map_err(|_| std::io::Error::other("the scanning threads stopped"))?;
        if chunk.failed {
            return Err(std::io::Error::other("a scanning thread failed"));
        }
        self.pending.insert(chunk.id, chunk);
        while let Some(mut chunk) = self.pending.remove(&self.next) {
            let lines = chunk.lines.iter().zip(&chunk.guesses);
            for (at, (&(start, stop), guess)) in lines.enumerate() {
                let result = match guess.as_ref().and_then(|g| filter.accept(g)) {
                    Some(date) => filter.apply_batched(&chunk.scans, at, date),
                    None => redo(filter, &decode(&chunk.raw[start..stop]).0),
                };
                emit(result)?;
            }
            chunk.scans.clear();
            self.invalid += chunk.invalid;
            self.next += 1;
            self.in_flight -= 1;
            chunk.raw.clear();
            chunk.lines.clear();
            chunk.guesses.clear();
            chunk.invalid = 0;
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
            |spec, line, buf| {
                if journal {
                    Some(spec.prepare_journal_line(line, now, buf))
                } else {
                    spec.prepare_line(line, &clock, buf)
                }
            },
            |filter, line| {
                if journal {
                    filter.process_journal_line(line, now)
                } else {
                    filter.process_line(line, &clock)
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
