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

#[cfg(test)]
mod tests {
    use crate::{Clock, Filter, FilterDefinition, LineResult};

    /// Runs `lines` the way `vigil filter-test` does on two threads: chunks of 7 lines go to
    /// one speculator or the other in turn (each started from the filter's initial state and
    /// sees only its chunks), the filter confirms the guesses in order and processes the other
    /// lines itself.
    fn speculated(def: &FilterDefinition, lines: &[String], clock: &Clock) -> Vec<LineResult> {
        let mut filter = Filter::new(def, 2026);
        let mut specs = [filter.speculator(), filter.speculator()];
        let matcher = filter.matcher();
        let mut accepted = 0;
        let results = lines
            .iter()
            .enumerate()
            .map(|(i, line)| {
                let mut buf = String::new();
                let guess = specs[i / 7 % 2].prepare_line(line, clock, &mut buf);
                match guess.and_then(|g| filter.accept(&g)) {
                    Some(date) => {
                        accepted += 1;
                        filter.apply(matcher.scan(&buf), date)
                    }
                    None => filter.process_line(line, clock),
                }
            })
            .collect();
        assert!(accepted > lines.len() / 2, "most guesses hold ({accepted} of {})", lines.len());
        results
    }

    #[test]
    fn speculative_dates_give_the_results_of_line_by_line_processing() {
        let def = FilterDefinition {
            failregex: vec![
                r"^\s*(?:\S+ )?sshd\[\d+\]: Failed \S+ for (?:invalid user )?<F-USER>\S+</F-USER> from <HOST>".into(),
                r"^<HOST> - - \[".into(),
            ],
            maxlines: 1,
            ..FilterDefinition::default()
        };
        let clock =
            Clock { now: 1_124_020_000.0, zone: chrono_tz::Europe::Zurich, real_year: 2026 };
        let mut lines = Vec::new();
        for i in 0..400 {
            let (m, s) = (i / 60 % 60, i % 60);
            let addr = format!("192.0.2.{}", i % 250);
            lines.push(match i / 50 {
                // Syslog, then ISO 8601, then syslog again: the template order changes.
                0 | 3 => format!("Aug 14 11:{m:02}:{s:02} web sshd[{i}]: Failed password for root from {addr} port 22 ssh2"),
                1 => format!("2005-08-14T11:{m:02}:{s:02}+02:00 web sshd[{i}]: Failed password for invalid user a b from {addr}"),
                2 => format!("{addr} - - [14/Aug/2005:11:{m:02}:{s:02} +0200] \"GET / HTTP/1.1\" 401 0"),
                // Lines without a timestamp take the last one (or now), and the same
                // timestamp at another place.
                4 => format!("web sshd[{i}]: Failed password for root from {addr}"),
                5 => format!("x Aug 14 11:{m:02}:{s:02} web sshd[{i}]: Failed password for root from {addr}"),
                6 => format!("Aug 14 11:{m:02}:{s:02} web sshd[{i}]: Failed password for rööt from {addr}"),
                _ => format!("@40000000{:08x}00000000 web sshd[{i}]: Failed publickey for root from {addr}", 1_124_010_000 + i),
            });
        }
        let mut filter = Filter::new(&def, 2026);
        let expected: Vec<LineResult> =
            lines.iter().map(|line| filter.process_line(line, &clock)).collect();
        let matched = expected.iter().filter(|r| r.matched).count();
        assert!(matched >= 300, "{matched}");
        assert_eq!(speculated(&def, &lines, &clock), expected);
    }
}
