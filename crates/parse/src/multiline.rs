//! Joins a multi-line Python traceback (and similar continuation lines) into one record.
//!
//! Python writes an unhandled exception as a first line (a logger's `ERROR … Internal Server
//! Error: /path`, or the traceback header itself), `Traceback (most recent call last):`,
//! indented `File "…", line N, in f` frames with their source lines, and a final unindented
//! `XxxError: message` line; chained exceptions add `During handling of the above exception…`
//! or `The above exception was the direct cause…` and another traceback. A record is complete
//! when a line arrives that does not continue it.
//!
//! [`PythonRecords`] is the rule alone: it says whether a line continues the record held, so a
//! caller that keeps the lines itself (the file tailer, which must know each line's byte range)
//! can apply it. [`Joiner`] applies it to text: it holds the current record and returns each
//! completed one, bounded by `max_lines` and `max_bytes` (`vigil errors`).

/// The continuation rule of Python tracebacks (see the module documentation). It keeps two
/// flags about the record held, so one value follows one stream of lines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PythonRecords {
    /// Inside a traceback, after its header, until its final exception line.
    in_traceback: bool,
    /// The record holds a traceback (blank lines between chained tracebacks continue it).
    had_traceback: bool,
}

impl PythonRecords {
    /// The rule at the start of a stream.
    pub fn new() -> PythonRecords {
        PythonRecords::default()
    }

    /// Whether `line` continues the record held; `held` says whether one is held at all (a
    /// line never continues nothing). A line that does not continue starts a new record.
    pub fn continues(&mut self, line: &str, held: bool) -> bool {
        let continues = held
            && (line.starts_with([' ', '\t'])
                || is_header(line)
                || (self.in_traceback && is_exception_line(line))
                || (self.had_traceback && line.is_empty()));
        if continues {
            if is_header(line) {
                self.in_traceback = true;
                self.had_traceback = true;
            } else if self.in_traceback && !line.starts_with([' ', '\t']) && !line.is_empty() {
                // The final exception line ends the traceback (a chained one may follow).
                self.in_traceback = false;
            }
        } else {
            self.in_traceback = is_header(line);
            self.had_traceback = self.in_traceback;
        }
        continues
    }
}

/// Joins continuation lines into records (see the module documentation).
#[derive(Debug)]
pub struct Joiner {
    pending: Option<String>,
    lines: usize,
    rule: PythonRecords,
    max_lines: usize,
    max_bytes: usize,
}

impl Default for Joiner {
    fn default() -> Self {
        Joiner::new(200, 64 * 1024)
    }
}

fn is_header(line: &str) -> bool {
    line.starts_with("Traceback (most recent call last)")
        || line.starts_with("During handling of the above exception")
        || line.starts_with("The above exception was the direct cause")
}

/// `pkg.module.SomeError: message` or a bare `SomeError`: the last line of a traceback.
fn is_exception_line(line: &str) -> bool {
    let name = line.split(':').next().unwrap_or(line);
    !name.is_empty()
        && !name.contains(' ')
        && name.chars().all(|it| it.is_alphanumeric() || it == '_' || it == '.')
        && name.chars().next().is_some_and(|it| it.is_alphabetic() || it == '_')
}

impl Joiner {
    /// A joiner whose records hold at most `max_lines` lines and `max_bytes` bytes (more
    /// continuation lines are dropped from the record, never kept in memory).
    pub fn new(max_lines: usize, max_bytes: usize) -> Joiner {
        Joiner { pending: None, lines: 0, rule: PythonRecords::new(), max_lines, max_bytes }
    }

    /// Feeds one line; returns the record it completed, if any.
    pub fn push(&mut self, line: &str) -> Option<String> {
        let continues = self.rule.continues(line, self.pending.is_some());
        if continues {
            let pending = self.pending.as_mut().expect("continues only with a pending record");
            if self.lines < self.max_lines && pending.len() + line.len() < self.max_bytes {
                pending.push('\n');
                pending.push_str(line);
                self.lines += 1;
            }
            return None;
        }
        let done = self.pending.take().map(|it| it.trim_end().to_owned());
        self.lines = 1;
        let mut start = line.to_owned();
        start.truncate(floor_char_boundary(line, self.max_bytes));
        self.pending = Some(start);
        done
    }

    /// The record still held, at the end of the input.
    pub fn finish(&mut self) -> Option<String> {
        self.rule = PythonRecords::new();
        self.pending.take().map(|it| it.trim_end().to_owned())
    }
}

fn floor_char_boundary(text: &str, max: usize) -> usize {
    if text.len() <= max {
        return text.len();
    }
    let mut at = max;
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    fn join(text: &str) -> Vec<String> {
        let mut joiner = Joiner::default();
        let mut out: Vec<String> = text.lines().filter_map(|it| joiner.push(it)).collect();
        out.extend(joiner.finish());
        out
    }

    #[test]
    fn a_django_traceback_is_one_record() {
        let log = "\
ERROR 2026-11-23 10:00:00,123 log 1234 140 Internal Server Error: /orders/42
Traceback (most recent call last):
  File \"/srv/app/venv/lib/python3.11/site-packages/django/core/handlers/exception.py\", line 55, in inner
    response = get_response(request)
  File \"/srv/app/orders/views.py\", line 17, in detail
    order = Order.objects.get(pk=pk)
orders.models.Order.DoesNotExist: Order matching query does not exist.
INFO 2026-11-23 10:00:01,000 basehttp 1234 140 \"GET / HTTP/1.1\" 200 512";
        let records = join(log);
        assert_eq!(records.len(), 2, "{records:#?}");
        assert!(records[0].starts_with("ERROR 2026-11-23"));
        assert!(records[0].ends_with("Order matching query does not exist."));
        assert_eq!(records[0].lines().count(), 7);
        assert!(records[1].starts_with("INFO"));
    }

    #[test]
    fn chained_tracebacks_stay_together() {
        let log = "\
Traceback (most recent call last):
  File \"a.py\", line 2, in <module>
    int('x')
ValueError: invalid literal for int() with base 10: 'x'

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File \"a.py\", line 4, in <module>
    raise RuntimeError('wrapped')
RuntimeError: wrapped
next line";
        let records = join(log);
        assert_eq!(records.len(), 2, "{records:#?}");
        assert!(records[0].ends_with("RuntimeError: wrapped"));
        assert_eq!(records[1], "next line");
    }

    #[test]
    fn plain_lines_are_records_of_their_own_and_limits_hold() {
        assert_eq!(join("one\ntwo\nthree"), ["one", "two", "three"]);
        let mut joiner = Joiner::new(3, 1024);
        joiner.push("start");
        for _ in 0..100 {
            assert!(joiner.push("  more").is_none());
        }
        assert_eq!(joiner.finish().unwrap().lines().count(), 3);
        let mut joiner = Joiner::new(10, 8);
        joiner.push("ééééééé");
        assert!(joiner.finish().unwrap().len() <= 8);
    }

    #[test]
    fn the_rule_alone_marks_the_same_records_as_the_joiner() {
        let log = "ERROR x Internal Server Error: /\nTraceback (most recent call last):\n  \
                   File \"a.py\", line 1, in f\nKeyError: 'k'\n\nnext\n  indented\nlast";
        let mut rule = PythonRecords::new();
        let mut held = false;
        let mut starts = Vec::new();
        for (idx, line) in log.lines().enumerate() {
            if !rule.continues(line, held) {
                starts.push(idx);
            }
            held = true;
        }
        assert_eq!(starts, [0, 5, 7]);
        assert_eq!(join(log).len(), starts.len());
        // After a cut (nothing held), an indented line starts a record of its own.
        let mut rule = PythonRecords::new();
        assert!(!rule.continues("  File \"a.py\", line 1, in f", false));
        assert!(rule.continues("    code()", true));
    }
}
