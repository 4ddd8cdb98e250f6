//! fail2ban filter compatibility: load fail2ban filter files unchanged and match log lines with
//! the verdicts fail2ban 1.0.2 gives.
//!
//! Users coming from fail2ban bring their filters (`/etc/fail2ban/filter.d/*.conf`). This crate
//! reads them with fail2ban's configuration rules ([`read_filter`]: `[INCLUDES]`, `[DEFAULT]`,
//! `[Init]`, `%(name)s` interpolation, `<tag>` substitution, options such as
//! `sshd.conf[mode=aggressive]`), translates their Python regexes to the `regex` crate (or to
//! `fancy-regex` with a backtrack limit when a pattern needs look-around, back-references or
//! conditionals), and runs them like fail2ban's `Filter` ([`Filter`]): date detection and
//! removal, `prefregex` with `<F-CONTENT>`, every `failregex`, `ignoreregex`, `maxlines`
//! buffering and multi-line failure IDs.
//!
//! ```
//! use vigil_f2b::{Clock, Filter, FilterDefinition};
//!
//! let def = FilterDefinition {
//!     failregex: vec![r"^\s*Failed password for \S+ from <HOST>".into()],
//!     maxlines: 1,
//!     ..FilterDefinition::default()
//! };
//! let mut filter = Filter::new(&def, 2026);
//! let clock = Clock { now: 1_124_013_600.0, zone: chrono_tz::UTC, real_year: 2026 };
//! let r = filter.process_line("Aug 14 09:00:00 Failed password for x from 192.0.2.7", &clock);
//! assert!(r.matched);
//! assert_eq!(r.host.as_deref(), Some("192.0.2.7"));
//! ```

#![deny(missing_docs)]

mod date;
mod dns;
mod engine;
mod failregex;
mod filter;
mod ini;
mod linear;
mod prune;
mod pyre;
mod reader;
mod scan_batch;
mod shape_memo;
mod speculate;

use std::path::PathBuf;

/// A group's value: short ones (addresses, user names, pids) are held inline, without an
/// allocation per group of every line that matches.
pub(crate) type Value = compact_str::CompactString;

pub use chrono_tz;
pub use date::{Clock, DateDetector, parse_log_timezone};
pub use dns::{Lookup, Resolver, ResolverStats, UseDns};
pub use filter::{FancyUse, Filter, LineResult, Matcher, Problem, Scan};
pub use pyre::BACKTRACK_LIMIT;
pub use reader::{FilterDefinition, parse_filter, read_filter, split_options};
pub use scan_batch::ScanBatch;
pub use speculate::{Guess, Speculator};

/// Why a filter could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A configuration file is malformed.
    #[error("{}:{line}: {message}", path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// 1-based line (0 when the whole file is concerned).
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// Interpolation or tag substitution failed.
    #[error("{}: {message}", path.display())]
    Config {
        /// The filter file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}
