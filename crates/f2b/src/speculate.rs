//! Speculative date detection for single-line filters, so that the timestamps can be found on
//! the scanning threads instead of in line order on one thread.
//!
//! fail2ban's date detector has state (the template that matched last, where, the template
//! order), so strictly each line's timestamp depends on every line before it. In practice one
//! template matches every line at the same place, and then the detector's first step decides
//! the match from that state alone. A [`Speculator`] runs its own copy of the detector over the
//! lines it is given and notes, per line, whether the first step decided the match and from
//! which state ([`Guess`]). In line order, [`Filter::accept`](crate::Filter::accept) replays the
//! guess on the real detector when that is in the same state (a comparison and a few counter
//! updates); otherwise the caller processes the line normally. The result is the same as
//! line-by-line processing either way.

use crate::date::{Clock, DateDetector, FastStep};

/// A scanning thread's copy of a filter's date detector.
#[derive(Debug, Clone)]
pub struct Speculator {
    pub(crate) dates: DateDetector,
}

/// What a [`Speculator`] found for one line, to be confirmed in line order by
/// [`Filter::accept`](crate::Filter::accept).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Guess(pub(crate) GuessKind);

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum GuessKind {
    /// The detector's first step found a timestamp with a time.
    Date(FastStep),
    /// A journal message with a known time (no date detection).
    Journal(f64),
}

impl Speculator {
    /// Dates `line` with this thread's detector. When the first step of the detector decided
    /// the match (and it has a time), appends the text the regexes search (the line without its
    /// timestamp, then `\n`) to `buf` and returns the guess; otherwise returns `None` and leaves
    /// `buf` alone: the line must then be processed in order.
    pub fn prepare_line(&mut self, line: &str, clock: &Clock, buf: &mut String) -> Option<Guess> {
        let (_, step) = self.dates.find_noting(line, clock);
        let step = step?;
        let (s, e) = step.span;
        if s >= e || step.time.is_none() || !line.is_char_boundary(s) || !line.is_char_boundary(e) {
            return None;
        }
        buf.push_str(&line[..s]);
        buf.push_str(&line[e..]);
        buf.push('\n');
        Some(Guess(GuessKind::Date(step)))
    }

    /// [`Speculator::prepare_line`] for a journal message whose time is known: always a guess.
    pub fn prepare_journal_line(&mut self, line: &str, time: f64, buf: &mut String) -> Guess {
        buf.push_str(line);
        buf.push('\n');
        Guess(GuessKind::Journal(time))
    }
}
