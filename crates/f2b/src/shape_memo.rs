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

/// Longest window (span plus one byte either side) kept: a line's prefix, its timestamp, or a
/// short message; longer texts rarely repeat their shape and would only cost comparisons.
const MAX_WINDOW: usize = 128;

/// Results kept per pattern (and per scanning thread): enough for the processes whose lines
/// interleave in a busy log, and for the shapes of a failregex's common lines.
const ENTRIES: usize = 32;

/// Searches per period over which the memo measures how often it answers.
const PERIOD: u32 = 4096;

/// Periods the memo stands aside after one in which it answered less than one search in
/// eight: looking up costs more than it saves then (a failregex whose lines vary in length).
const REST_PERIODS: u32 = 8;

/// One kept result: the search, the class of each byte of its window (and a hash of them, to
/// compare first), and the groups.
#[derive(Debug, Clone)]
struct Entry {
    key: Key,
    hash: u64,
    len: u8,
    shape: [u8; MAX_WINDOW],
    groups: GroupSpans,
}

/// The last [`ENTRIES`] results of one pattern's capture searches (see the module
/// documentation).
#[derive(Debug, Clone)]
pub(crate) struct ShapeMemo {
    classes: ByteClasses,
    entries: Vec<Entry>,
    /// The entry the next new result replaces once all are used.
    next: usize,
    /// The shape of the last search looked up and not found, for [`ShapeMemo::put`].
    missed: Option<(Key, u64, usize, [u8; MAX_WINDOW])>,
    /// Searches and answers in the current period.
    period: (u32, u32),
    /// Searches left before the memo looks up again (see [`REST_PERIODS`]).
    resting: u32,
    /// Searches answered from the memo.
    hits: u64,
}

/// What a search was asked: the span searched and whether the match had to start at its
/// start.
pub(crate) type Key = (usize, usize, bool);

impl ShapeMemo {
    /// A memo for a pattern whose automaton has `classes`; `None` if it has a Unicode word
    /// boundary.
    pub(crate) fn new(classes: ByteClasses, unicode_word: bool) -> Option<ShapeMemo> {
        (!unicode_word).then(|| ShapeMemo {
            classes,
            entries: Vec::new(),
            next: 0,
            missed: None,
            period: (0, 0),
            resting: 0,
            hits: 0,
        })
    }

    /// The groups an earlier search like `key` found in a text of the same shape.
    pub(crate) fn get(&mut self, hay: &[u8], key: Key) -> Option<GroupSpans> {
        self.missed = None;
        if self.resting > 0 {
            self.resting -= 1;
            return None;
        }
        let (start, end, _) = key;
        let window = hay.get(start.saturating_sub(1)..(end + 1).min(hay.len()))?;
        if window.len() > MAX_WINDOW {
            return None;
        }
        let mut shape = [0; MAX_WINDOW];
        for (class, &byte) in shape.iter_mut().zip(window) {
            *class = self.classes.get(byte);
        }
        let len = window.len();
        // Eight classes at a time (the bytes past `len` are zero).
        let hash = shape[..len.next_multiple_of(8)].chunks_exact(8).fold(len as u64, |hash, it| {
            let word = u64::from_le_bytes(it.try_into().unwrap_or_default());
            (hash ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95).rotate_left(29)
        });
        let found = self
            .entries
            .iter()
            .find(|it| {
                it.hash == hash
                    && it.key == key
                    && usize::from(it.len) == len
                    && it.shape[..len] == shape[..len]
            })
            .map(|it| it.groups.clone());
        self.period.0 += 1;
        if found.is_some() {
            self.hits += 1;
            self.period.1 += 1;
        } else {
            self.missed = Some((key, hash, len, shape));
        }
        if self.period.0 == PERIOD {
            if self.period.1 < PERIOD / 8 {
                self.resting = PERIOD * REST_PERIODS;
            }
            self.period = (0, 0);
        }
        found
    }

    /// Searches answered from the memo so far.
    #[cfg(test)]
    pub(crate) fn hits(&self) -> u64 {
        self.hits
    }

    /// Searches left before the memo looks up again.
    #[cfg(test)]
    pub(crate) fn resting(&self) -> u32 {
        self.resting
    }

    /// Keeps the groups found by the search last looked up (with [`ShapeMemo::get`]) and not
    /// found.
    pub(crate) fn put(&mut self, key: Key, groups: &GroupSpans) {
        let Some((missed, hash, len, shape)) = self.missed.take() else { return };
        if missed != key || !matches!(groups, GroupSpans::Inline { .. }) {
            return;
        }
        let entry = Entry { key, hash, len: len as u8, shape, groups: groups.clone() };
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
                // The search from the start (not anchored at the match) has its own entries.
                let from_start = direct.captures(text.as_bytes(), 0, text.len()).unwrap();
                hits += direct.memo_hits() - before;
                searched += 1;
                for i in 0..caps.len() {
                    let want = caps.get(i).map(|it| (it.start(), it.end()));
                    assert_eq!(got.get_group(i), want, "{pattern} on {text:?}, group {i}");
                    assert_eq!(from_start.get_group(i), want, "{pattern} on {text:?}, group {i}");
                }
            }
            assert!(
                searched > 500 && hits > searched / 10,
                "{pattern}: {hits} memo hits of {searched} searches"
            );
        }
    }

    #[test]
    fn a_memo_that_rarely_answers_stands_aside_and_comes_back() {
        let direct = Direct::ascii(r"^(?P<n>\d+)x").unwrap();
        // Every text a new shape (digits, then other bytes), so no answer.
        for n in 0..super::PERIOD as usize {
            let text = format!("{}x{}", "7".repeat(n % 64 + 1), "b".repeat(n / 64));
            assert!(direct.captures(text.as_bytes(), 0, text.len()).is_some());
        }
        let resting = direct.memo_resting();
        assert!(resting > 0, "the memo still looks up after {} misses", super::PERIOD);
        // Resting, it neither answers nor keeps, and the searches stay right.
        for _ in 0..100 {
            let caps = direct.captures(b"123x", 0, 4).unwrap();
            assert_eq!(caps.get_group(1), Some((0, 3)));
        }
        assert_eq!(direct.memo_resting(), resting - 100);
        let hits = direct.memo_hits();
        for _ in 0..resting - 100 {
            direct.captures(b"123x", 0, 4).unwrap();
        }
        // Back at work: the same text twice is one answer.
        direct.captures(b"123x", 0, 4).unwrap();
        direct.captures(b"456x", 0, 4).unwrap();
        assert_eq!(direct.memo_hits(), hits + 1);
    }
}
