//! Capture results kept by the *shape* of the text they were found in, so that lines whose
//! prefix or timestamp differs from a recent one only in ways the pattern cannot see skip the
//! capture engine.
//!
//! Two kinds of capture search run on almost every line of a log with the same pattern over a
//! short span whose match is already known: `prefregex`'s groups (`web1 sshd[4242]: ` before
//! the content) and the date template's (`Nov 23 10:00:07`). The capture engine (a bounded
//! backtracker) costs about 300 ns for each, a sixth of `vigil filter-test`'s time on sshd.conf;
//! yet consecutive lines often differ there only in digits (another second, another process).
//!
//! A compiled pattern's automaton does not tell apart the bytes of one *byte class*: its
//! transitions are ranges of whole classes, and the classes also split the bytes its
//! look-around assertions test (word characters, line ends). An anchored search over
//! `hay[s..e]` reads only the bytes `hay[s - 1..e + 1]` (transitions inside the span, looks at
//! its positions reading one byte either side), and every read goes through those tests. So
//! two texts whose windows have the same length, at the same offsets, and the same class byte
//! by byte, give the same match and the same group spans. [`ShapeMemo`] keeps the last few
//! results keyed by that class sequence. A pattern with a Unicode word boundary (which decodes
//! characters beyond one byte) gets no memo.

use regex_automata::util::alphabet::ByteClasses;

use crate::engine::GroupSpans;

/// Longest window (span plus one byte either side) kept: prefixes and timestamps are short;
/// longer texts rarely repeat their shape and would only cost comparisons.
const MAX_WINDOW: usize = 96;

/// Results kept per pattern (and per scanning thread): enough for the processes whose lines
/// interleave in a busy log.
const ENTRIES: usize = 8;

/// One kept result: where the span was, the class of each byte of its window, and the groups.
#[derive(Debug, Clone)]
struct Entry {
    span: (usize, usize),
    len: u8,
    shape: [u8; MAX_WINDOW],
    groups: GroupSpans,
}

/// The last [`ENTRIES`] results of one pattern's capture searches over known spans (see the
/// module documentation).
#[derive(Debug, Clone)]
pub(crate) struct ShapeMemo {
    classes: ByteClasses,
    entries: Vec<Entry>,
    /// The entry the next new result replaces once all are used.
    next: usize,
    /// Searches answered from the memo.
    hits: u64,
}

/// The class sequence of a search's window: its length and bytes, `None` when too long.
type Shape = (usize, [u8; MAX_WINDOW]);

impl ShapeMemo {
    /// A memo for a pattern whose automaton has `classes`; `None` if it has a Unicode word
    /// boundary.
    pub(crate) fn new(classes: ByteClasses, unicode_word: bool) -> Option<ShapeMemo> {
        (!unicode_word).then(|| ShapeMemo { classes, entries: Vec::new(), next: 0, hits: 0 })
    }

    /// The class sequence of `hay[span.0 - 1..span.1 + 1]` (clipped to the text).
    fn shape(&self, hay: &[u8], span: (usize, usize)) -> Option<Shape> {
        let window = hay.get(span.0.saturating_sub(1)..(span.1 + 1).min(hay.len()))?;
        if window.len() > MAX_WINDOW {
            return None;
        }
        let mut shape = [0; MAX_WINDOW];
        for (class, &byte) in shape.iter_mut().zip(window) {
            *class = self.classes.get(byte);
        }
        Some((window.len(), shape))
    }

    /// The groups of an earlier search over `span` of a text of the same shape.
    pub(crate) fn get(&mut self, hay: &[u8], span: (usize, usize)) -> Option<GroupSpans> {
        let (len, shape) = self.shape(hay, span)?;
        let found = self
            .entries
            .iter()
            .find(|it| {
                it.span == span && usize::from(it.len) == len && it.shape[..len] == shape[..len]
            })
            .map(|it| it.groups.clone());
        if found.is_some() {
            self.hits += 1;
        }
        found
    }

    /// Searches answered from the memo so far.
    #[cfg(test)]
    pub(crate) fn hits(&self) -> u64 {
        self.hits
    }

    /// Keeps the groups a search over `span` of `hay` found.
    pub(crate) fn put(&mut self, hay: &[u8], span: (usize, usize), groups: &GroupSpans) {
        if !matches!(groups, GroupSpans::Inline { .. }) {
            return;
        }
        let Some((len, shape)) = self.shape(hay, span) else { return };
        let entry = Entry { span, len: len as u8, shape, groups: groups.clone() };
        if self.entries.len() < ENTRIES {
            self.entries.push(entry);
        } else {
            self.entries[self.next] = entry;
            self.next = (self.next + 1) % ENTRIES;
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::engine::Direct;

    /// Texts made of random pieces around each pattern's shape (digits the patterns split
    /// into ranges, word and non-word bytes, line ends), searched over the span the `regex`
    /// crate finds: every answer, from the memo or not, is the regex crate's.
    #[test]
    fn remembered_groups_equal_a_fresh_search() {
        let digits: &[&str] = &["0", "1", "2", "3", "5", "6", "9", "", "00", "31", "61", "29"];
        let cases: [(&str, Vec<&[&str]>); 3] = [
            // A date template: digit ranges, alternations of names, a word-boundary look.
            (
                r"^(?:\W{0,2})?((?:(?P<a>mon|tue) )?(?P<b>jan|nov) (?P<d>[1-2]\d|[0 ]?[1-9]|3[0-1])  ?(?P<H>[0-2]?\d):(?P<M>[0-5]?\d):(?P<S>[0-5]?\d|6[0-1]))(?:\b|$)",
                vec![
                    &["", "-", " ", "--"],
                    &["", "mon ", "tue "],
                    &["nov", "jan", "feb"],
                    &[" ", "  "],
                    digits,
                    &[" ", "  "],
                    digits,
                    &[":"],
                    digits,
                    &[":", ""],
                    digits,
                    &["", "x", " a", "\n", "0", "_"],
                ],
            ),
            // A prefregex head: a host, a daemon with an optional pid, the content's first byte.
            (
                r"^(?P<mlfid>\s*(?:\S+\s+)?(?:sshd(?:\[\d+\])?:?\s+)?)(?:(?:error|fatal): )?(?P<content>.)",
                vec![
                    &["", " ", "web1 ", "a-b "],
                    &["sshd", "cron", ""],
                    &["[", ""],
                    digits,
                    &["]", ""],
                    &[":", ""],
                    &[" ", "  ", ""],
                    &["error: ", "fatal: ", ""],
                    &["F", "x", "\n", " "],
                ],
            ),
            // Line anchors in multi-line mode.
            (
                r"(?m)^(?P<x>a+)(?P<y>\d?)$",
                vec![&["", "b\n"], &["a", "aa"], digits, &["", "\n", "b"]],
            ),
        ];
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        for (pattern, slots) in cases {
            let direct = Direct::ascii(pattern).unwrap();
            let re = regex::bytes::Regex::new(&format!("(?-u){pattern}")).unwrap();
            let (mut searched, mut hits) = (0, 0);
            // Each text differs from the one before in one piece, as consecutive log lines
            // often differ in a digit or two.
            let mut picks: Vec<usize> = slots.iter().map(|it| next(it.len())).collect();
            for _ in 0..20_000 {
                let slot = next(slots.len());
                picks[slot] = next(slots[slot].len());
                let text: String = slots.iter().zip(&picks).map(|(it, &i)| it[i]).collect();
                let Some(m) = re.find(text.as_bytes()) else { continue };
                let caps = re.captures(text.as_bytes()).unwrap();
                let before = direct.memo_hits();
                let got = direct.captures_found(text.as_bytes(), (m.start(), m.end())).unwrap();
                hits += direct.memo_hits() - before;
                searched += 1;
                for i in 0..caps.len() {
                    let want = caps.get(i).map(|it| (it.start(), it.end()));
                    assert_eq!(got.get_group(i), want, "{pattern} on {text:?}, group {i}");
                }
            }
            assert!(
                searched > 500 && hits > searched / 10,
                "{pattern}: {hits} memo hits of {searched} searches"
            );
        }
    }
}
