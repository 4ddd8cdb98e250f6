//! `vigil parse FILE…`: runs the built-in log parsers over files (or standard input) and prints
//! one result per recognised line, as text or JSON, or counts per action with `--stats`.
//!
//! Input is read in large blocks and split with `memchr`; a line is parsed in place, borrowing
//! from the block, so the loop allocates nothing per line unless it prints. Invalid UTF-8 is
//! replaced lossily (and counted); a line longer than [`MAX_LINE`] is cut there (and counted)
//! and the rest of it skipped, so memory stays bounded whatever the input.

use std::{
    borrow::Cow,
    fs::File,
    io::{self, Read, Write},
    path::{Path, PathBuf},
    process::ExitCode,
};

use clap::ValueEnum;
use serde::Serialize;
use vigil_parse::{Action, Clock, Format, Parsed};

/// Lines longer than this many bytes are truncated.
pub const MAX_LINE: usize = 1 << 20;
/// Read block size.
const BLOCK: usize = 1 << 20;

/// `--parser` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ParserName {
    /// Detect the format of each line.
    Auto,
    /// sshd messages (auth.log, or bare as in the journal).
    Sshd,
    /// RFC 3164 / RFC 5424 syslog (sshd, kernel firewall and fail2ban messages read too).
    Syslog,
    /// nginx access log (combined).
    NginxAccess,
    /// nginx error log.
    NginxError,
    /// Django logs.
    Django,
    /// fail2ban's own log.
    Fail2ban,
    /// Kernel firewall (UFW / iptables LOG) lines.
    Firewall,
    /// Any line with a timestamp and a level keyword.
    Generic,
}

impl ParserName {
    fn format(self) -> Format {
        match self {
            ParserName::Auto => Format::Auto,
            ParserName::Sshd => Format::Sshd,
            ParserName::Syslog => Format::Syslog,
            ParserName::NginxAccess => Format::NginxAccess,
            ParserName::NginxError => Format::NginxError,
            ParserName::Django => Format::Django,
            ParserName::Fail2ban => Format::Fail2ban,
            ParserName::Firewall => Format::Firewall,
            ParserName::Generic => Format::Generic,
        }
    }
}

/// Arguments of `vigil parse`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Log files to read; `-` reads standard input.
    #[arg(value_name = "FILE", required = true)]
    files: Vec<PathBuf>,
    /// The format of the lines.
    #[arg(long, value_enum, default_value_t = ParserName::Auto)]
    parser: ParserName,
    /// One JSON object per recognised line: line, source, timestamp, level, action, ip, user,
    /// port, service, pid, message (with --stats: the counts as one JSON object).
    #[arg(long)]
    json: bool,
    /// Print only the number of lines per action (and of unrecognised lines).
    #[arg(long)]
    stats: bool,
    /// Zone of timestamps written without one (default: the system's), e.g. Europe/Berlin.
    #[arg(long, value_name = "ZONE")]
    tz: Option<String>,
    /// The time year-less timestamps are completed against (default: now), RFC 3339.
    #[arg(long, value_name = "RFC3339")]
    now: Option<String>,
}

/// Counts of a read (shared with `vigil replay`, which reads files the same way).
#[derive(Debug, Default)]
pub(crate) struct Totals {
    lines: u64,
    recognised: u64,
    no_action: u64,
    per_action: Vec<u64>,
    pub(crate) invalid_utf8: u64,
    pub(crate) truncated: u64,
}

/// Runs `vigil parse`.
pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let clock = match clock_from(args.tz.as_deref(), args.now.as_deref(), jiff::Timestamp::now) {
        Ok(it) => it,
        Err(err) => {
            eprintln!("error: {err}");
            return Ok(ExitCode::from(crate::EXIT_USAGE));
        }
    };
    let parser = args.parser.format().parser(clock);
    let stdout = io::stdout().lock();
    let mut out = io::BufWriter::with_capacity(64 * 1024, stdout);
    let mut totals = Totals { per_action: vec![0; Action::ALL.len()], ..Totals::default() };
    let mut failed = false;
    for path in &args.files {
        let input: Box<dyn Read> = if path.as_os_str() == "-" {
            Box::new(io::stdin().lock())
        } else {
            match File::open(path) {
                Ok(it) => Box::new(it),
                Err(err) => {
                    eprintln!("error: cannot read {}: {err}", path.display());
                    failed = true;
                    continue;
                }
            }
        };
        let mut printer = Printer { args, out: &mut out, error: None };
        let res = for_each_line(input, &mut totals, |number, line, totals| {
            let got = parser.parse(line);
            totals.lines += 1;
            let Some(got) = got else { return true };
            totals.recognised += 1;
            match got.action {
                Some(action) => totals.per_action[action as usize] += 1,
                None => totals.no_action += 1,
            }
            if args.stats {
                return true;
            }
            printer.print(number, &got)
        });
        if let Some(err) = printer.error {
            if err.kind() == io::ErrorKind::BrokenPipe {
                return Ok(ExitCode::SUCCESS);
            }
            return Err(err.into());
        }
        if let Err(err) = res {
            eprintln!("error: cannot read {}: {err}", display(path));
            failed = true;
        }
    }
    if args.stats {
        print_stats(&mut out, &totals, args.json)?;
    }
    match out.flush() {
        Err(err) if err.kind() == io::ErrorKind::BrokenPipe => return Ok(ExitCode::SUCCESS),
        other => other?,
    }
    if totals.truncated > 0 {
        eprintln!(
            "warning: {} lines longer than {MAX_LINE} bytes were truncated",
            totals.truncated
        );
    }
    if totals.invalid_utf8 > 0 {
        eprintln!("warning: {} lines had invalid UTF-8 (replaced)", totals.invalid_utf8);
    }
    Ok(if failed { ExitCode::from(crate::EXIT_PROBLEMS) } else { ExitCode::SUCCESS })
}

fn display(path: &Path) -> Cow<'_, str> {
    if path.as_os_str() == "-" { "<stdin>".into() } else { path.to_string_lossy() }
}

/// The clock that completes zone-less and year-less timestamps: `--tz` (default the system's
/// zone) and `--now` (default `default_now`). `vigil replay` builds its clock here too.
pub(crate) fn clock_from(
    tz: Option<&str>,
    now: Option<&str>,
    default_now: impl FnOnce() -> jiff::Timestamp,
) -> anyhow::Result<Clock> {
    let tz = match tz {
        Some(name) => jiff::tz::TimeZone::get(name)
            .map_err(|err| anyhow::anyhow!("--tz {name}: unknown time zone ({err})"))?,
        None => jiff::tz::TimeZone::system(),
    };
    let now = match now {
        Some(text) => text
            .parse::<jiff::Timestamp>()
            .map_err(|err| anyhow::anyhow!("--now {text}: not an RFC 3339 time ({err})"))?,
        None => default_now(),
    };
    Ok(Clock::new(tz, now))
}

/// Calls `f(line_number, line, totals)` for each line of `input` (without its `\n` or `\r\n`);
/// stops early when `f` returns false.
///
/// Whole blocks of complete lines are checked as UTF-8 at once (one pass, then each line is a
/// slice of the checked text); a block that fails is decoded line by line, lossily.
pub(crate) fn for_each_line(
    mut input: impl Read,
    totals: &mut Totals,
    mut f: impl FnMut(u64, &str, &mut Totals) -> bool,
) -> io::Result<()> {
    let mut buf = vec![0u8; BLOCK + MAX_LINE];
    let mut filled = 0;
    let mut lines = Lines { number: 0, f: &mut f };
    // While skipping the rest of a truncated line.
    let mut skipping = false;
    loop {
        let n = match input.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        };
        let scan_from = filled;
        filled += n;
        let Some(last_nl) =
            memchr::memrchr(b'\n', &buf[scan_from..filled]).map(|it| scan_from + it)
        else {
            if skipping {
                filled = 0;
            } else if filled >= MAX_LINE {
                // Cut the line at MAX_LINE (on a character boundary) and skip to its end.
                let mut cut = MAX_LINE;
                while cut > 0 && (buf[cut] & 0xC0) == 0x80 {
                    cut -= 1;
                }
                totals.truncated += 1;
                if !lines.one(&buf[..cut], totals) {
                    return Ok(());
                }
                filled = 0;
                skipping = true;
            }
            continue;
        };
        let mut start = 0;
        if skipping {
            // The first line here ends the truncated one.
            start = memchr::memchr(b'\n', &buf[..=last_nl]).unwrap_or(last_nl) + 1;
            skipping = false;
        }
        if start <= last_nl && !lines.block(&buf[start..last_nl], totals) {
            return Ok(());
        }
        buf.copy_within(last_nl + 1..filled, 0);
        filled -= last_nl + 1;
    }
    if filled > 0 && !skipping {
        lines.one(&buf[..filled], totals);
    }
    Ok(())
}

struct Lines<'f, F> {
    number: u64,
    f: &'f mut F,
}

impl<F: FnMut(u64, &str, &mut Totals) -> bool> Lines<'_, F> {
    /// Lines separated by `\n` (the block's own end is a line end).
    fn block(&mut self, block: &[u8], totals: &mut Totals) -> bool {
        match std::str::from_utf8(block) {
            Ok(text) => {
                let mut start = 0;
                for end in memchr::memchr_iter(b'\n', block).chain(std::iter::once(block.len())) {
                    self.number += 1;
                    let line = &text[start..end];
                    let line = line.strip_suffix('\r').unwrap_or(line);
                    if !(self.f)(self.number, line, totals) {
                        return false;
                    }
                    start = end + 1;
                }
                true
            }
            Err(_) => block.split(|it| *it == b'\n').all(|line| self.one(line, totals)),
        }
    }

    fn one(&mut self, line: &[u8], totals: &mut Totals) -> bool {
        self.number += 1;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let text = match std::str::from_utf8(line) {
            Ok(it) => Cow::Borrowed(it),
            Err(_) => {
                totals.invalid_utf8 += 1;
                String::from_utf8_lossy(line)
            }
        };
        (self.f)(self.number, &text, totals)
    }
}

/// One JSON object per recognised line (the keys are the contract of `vigil parse --json`).
#[derive(Serialize)]
struct JsonLine<'a> {
    line: u64,
    source: &'a str,
    timestamp: Option<String>,
    level: Option<&'a str>,
    action: Option<&'a str>,
    ip: Option<std::net::IpAddr>,
    user: Option<&'a str>,
    port: Option<u16>,
    service: Option<&'a str>,
    pid: Option<u32>,
    message: &'a str,
}

struct Printer<'o, 'w> {
    args: &'o Args,
    out: &'o mut io::BufWriter<io::StdoutLock<'w>>,
    error: Option<io::Error>,
}

impl Printer<'_, '_> {
    fn print(&mut self, number: u64, p: &Parsed<'_>) -> bool {
        let res = if self.args.json {
            let line = JsonLine {
                line: number,
                source: p.source,
                timestamp: p.timestamp.and_then(|it| it.to_rfc3339()),
                level: p.level.map(|it| it.as_str()),
                action: p.action.map(|it| it.as_str()),
                ip: p.ip,
                user: p.user,
                port: p.port,
                service: p.service,
                pid: p.pid,
                message: p.message,
            };
            serde_json::to_writer(&mut *self.out, &line)
                .map_err(io::Error::from)
                .and_then(|()| self.out.write_all(b"\n"))
        } else {
            text_line(&mut *self.out, number, p)
        };
        match res {
            Ok(()) => true,
            Err(err) => {
                self.error = Some(err);
                false
            }
        }
    }
}

/// `N action key=value … message`, one line, control characters escaped.
fn text_line(out: &mut impl Write, number: u64, p: &Parsed<'_>) -> io::Result<()> {
    write!(out, "{number}\t{}\t{}", p.source, p.action.map_or("-", |it| it.as_str()))?;
    if let Some(stamp) = p.timestamp.and_then(|it| it.to_rfc3339()) {
        write!(out, "\ttime={stamp}")?;
    }
    if let Some(ip) = p.ip {
        write!(out, "\tip={ip}")?;
    }
    if let Some(port) = p.port {
        write!(out, "\tport={port}")?;
    }
    if let Some(user) = p.user {
        write!(out, "\tuser={}", user.escape_debug())?;
    }
    if let Some(service) = p.service {
        write!(out, "\tservice={}", service.escape_debug())?;
    }
    writeln!(out, "\t{}", p.message.escape_debug())
}

fn print_stats(out: &mut impl Write, totals: &Totals, json: bool) -> io::Result<()> {
    let mut rows: Vec<(&str, u64)> = Action::ALL
        .iter()
        .zip(&totals.per_action)
        .filter(|(_, n)| **n > 0)
        .map(|(action, n)| (action.as_str(), *n))
        .collect();
    rows.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let unrecognised = totals.lines - totals.recognised;
    if json {
        let actions: serde_json::Map<String, serde_json::Value> =
            rows.iter().map(|(name, n)| ((*name).to_owned(), (*n).into())).collect();
        let value = serde_json::json!({
            "lines": totals.lines,
            "recognised": totals.recognised,
            "unrecognised": unrecognised,
            "no_action": totals.no_action,
            "actions": actions,
            "invalid_utf8": totals.invalid_utf8,
            "truncated": totals.truncated,
        });
        serde_json::to_writer(&mut *out, &value)?;
        return writeln!(out);
    }
    let width = rows.iter().map(|it| it.0.len()).max().unwrap_or(0).max(14);
    for (name, n) in &rows {
        writeln!(out, "{name:<width$} {n:>10}")?;
    }
    writeln!(out, "{:<width$} {:>10}", "(no action)", totals.no_action)?;
    writeln!(out, "{:<width$} {:>10}", "(unrecognised)", unrecognised)?;
    writeln!(out, "{:<width$} {:>10}", "lines", totals.lines)
}
