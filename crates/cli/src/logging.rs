//! The agent's own log: tracing records to standard error, as text or JSON.
//!
//! Precedence, most specific first: the `VIGIL_LOG` variable (tracing filter syntax, e.g.
//! `vigil_runtime=debug,info`), then `-v`/`-q` on the command line, then `log.level` from the
//! configuration. Standard output stays free for data (`--print`, `--json`).

use std::io::IsTerminal;

use tracing_subscriber::{EnvFilter, fmt};

use crate::settings::{LogFormat, LogLevel, LogSection};

/// Installs the global subscriber. `verbosity` is the number of `-v` minus the number of `-q`.
pub fn init(section: &LogSection, verbosity: i8, debug_logging: bool) {
    let configured = if debug_logging { LogLevel::Debug.max(section.level) } else { section.level };
    let level = shift(configured, verbosity);
    let filter = std::env::var("VIGIL_LOG")
        .ok()
        .and_then(|it| EnvFilter::try_new(it).ok())
        .unwrap_or_else(|| EnvFilter::new(level.as_directive()));
    let builder = fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false);
    let result = match section.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    // A subscriber already installed (tests) is fine.
    let _ = result;
}

fn shift(level: LogLevel, by: i8) -> LogLevel {
    const ORDER: [LogLevel; 5] =
        [LogLevel::Error, LogLevel::Warn, LogLevel::Info, LogLevel::Debug, LogLevel::Trace];
    let idx = ORDER.iter().position(|it| *it == level).unwrap_or(2) as i8;
    ORDER[(idx + by).clamp(0, 4) as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbosity_shifts_within_bounds() {
        assert_eq!(shift(LogLevel::Info, 1), LogLevel::Debug);
        assert_eq!(shift(LogLevel::Info, -1), LogLevel::Warn);
        assert_eq!(shift(LogLevel::Info, 9), LogLevel::Trace);
        assert_eq!(shift(LogLevel::Warn, -9), LogLevel::Error);
    }
}
