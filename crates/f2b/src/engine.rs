//! Cheaper engines for the hot path of single-line filters, with the same results as the
//! `regex` crate's.
//!
//! - [`Direct`]: a capture search that runs the capture engine (bounded backtracker, or PikeVM
//!   for long texts) at once. `regex::Regex::captures` first runs a lazy DFA to find where the
//!   match ends and then the capture engine over that span; when the caller already knows that
//!   the pattern probably matches (the failregex set said so, or the date template's match was
//!   just found), the first pass is wasted work. The leftmost-first match, and so every group,
//!   is the same.
//! - [`heads`]: the leading part of each failregex, for the failregex set. A failregex matches
//!   only where its leading part does, so a set of leading parts tells which failregexes can
//!   match while its automaton stops after a few bytes instead of reading the whole line.

use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use regex_automata::{Input, MatchKind, PatternSet, meta, util::captures::Captures};

use crate::shape_memo::ShapeMemo;
use regex_syntax::hir::{Hir, HirKind};

/// A pattern's capture search without the lazy-DFA pass (ASCII, byte-oriented: the same
/// syntax as the `(?-u)` variant of a translated pattern).
#[derive(Debug)]
pub(crate) struct Direct {
    re: meta::Regex,
    /// The pattern can only match at the start of the text (`^…`).
    anchored_start: bool,
    /// Capture slots of the pattern (two per group), read once: the group info computes it.
    slot_len: usize,
    /// Cuts the large branches a text cannot take (see [`crate::prune`]).
    pruner: Option<crate::prune::Pruner>,
    /// The pattern, for the memo's automaton.
    hir: Arc<Hir>,
    /// Recent searches over known spans by the shape of their text
    /// ([`crate::shape_memo`]), made on first use (`None` inside: the pattern cannot have one).
    memo: OnceLock<Option<Mutex<ShapeMemo>>>,
}

impl Clone for Direct {
    fn clone(&self) -> Direct {
        let memo = OnceLock::new();
        if let Some(kept) = self.memo.get() {
            let kept = kept
                .as_ref()
                .map(|it| Mutex::new(it.lock().unwrap_or_else(PoisonError::into_inner).clone()));
            let _ = memo.set(kept);
        }
        Direct {
            re: self.re.clone(),
            anchored_start: self.anchored_start,
            slot_len: self.slot_len,
            pruner: self.pruner.clone(),
            hir: Arc::clone(&self.hir),
            memo,
        }
    }
}

impl Direct {
    /// Compiles `pattern` (a translated pattern) with ASCII classes; `None` if it does not.
    pub(crate) fn ascii(pattern: &str) -> Option<Direct> {
        let hir = regex_syntax::ParserBuilder::new()
            .utf8(false)
            .build()
            .parse(&format!("(?-u){pattern}"))
            .ok()?;
        let anchored_start =
            hir.properties().look_set_prefix().contains(regex_syntax::hir::Look::Start);
        let config = meta::Config::new()
            .hybrid(false)
            .dfa(false)
            .utf8_empty(false)
            .nfa_size_limit(Some(64 << 20));
        let re = meta::Builder::new()
            .configure(config.clone())
            .syntax(regex_automata::util::syntax::Config::new().utf8(false))
            .build_from_hir(&hir)
            .ok()?;
        let slot_len = re.group_info().slot_len();
        let pruner = crate::prune::Pruner::new(&hir, &config);
        Some(Direct {
            re,
            anchored_start,
            slot_len,
            pruner,
            hir: Arc::new(hir),
            memo: OnceLock::new(),
        })
    }

    /// Whether [`Direct::captures`] pays off: the pattern can only match at the start of the
    /// text, so the capture engine tries one start (otherwise it would try every start, and the
    /// lazy DFA's pass finds the match first for less).
    pub(crate) fn anchored_start(&self) -> bool {
        self.anchored_start
    }

    /// The groups of a match already found (by a search without groups, e.g. a DFA): the
    /// leftmost-first match in `hay` is `found`, so the capture engine runs over that span only,
    /// from its start.
    pub(crate) fn captures_found(&self, hay: &[u8], found: (usize, usize)) -> Option<GroupSpans> {
        if found.0 > found.1 || found.1 > hay.len() {
            // Not a match of this text: search it all.
            return self.captures(hay, 0, hay.len());
        }
        let input = Input::new(hay).range(found.0..found.1).anchored(regex_automata::Anchored::Yes);
        self.remembered(&input)
    }

    /// [`Direct::search`] through the memo of recent results by the shape of their text.
    fn remembered(&self, input: &Input<'_>) -> Option<GroupSpans> {
        fn lock(memo: &Mutex<ShapeMemo>) -> std::sync::MutexGuard<'_, ShapeMemo> {
            memo.lock().unwrap_or_else(PoisonError::into_inner)
        }
        let memo = self.memo.get_or_init(|| self.new_memo()).as_ref();
        let key = (input.start(), input.end(), input.get_anchored().is_anchored());
        if let Some(groups) = memo.and_then(|it| lock(it).get(input.haystack(), key)) {
            return Some(groups);
        }
        let groups = self.search(input)?;
        if let Some(memo) = memo {
            lock(memo).put(key, &groups);
        }
        Some(groups)
    }

    /// Searches answered from the memo so far.
    #[cfg(test)]
    pub(crate) fn memo_hits(&self) -> u64 {
        let memo = self.memo.get().and_then(Option::as_ref);
        memo.map_or(0, |it| it.lock().unwrap_or_else(PoisonError::into_inner).hits())
    }

    /// Searches left before the memo looks up again.
    #[cfg(test)]
    pub(crate) fn memo_resting(&self) -> u32 {
        let memo = self.memo.get().and_then(Option::as_ref);
        memo.map_or(0, |it| it.lock().unwrap_or_else(PoisonError::into_inner).resting())
    }

    /// The memo for [`Direct::remembered`]: the byte classes come from the pattern's
    /// automaton, compiled as the capture engines compile it.
    fn new_memo(&self) -> Option<Mutex<ShapeMemo>> {
        let nfa = regex_automata::nfa::thompson::Compiler::new()
            .syntax(regex_automata::util::syntax::Config::new().utf8(false))
            .configure(regex_automata::nfa::thompson::Config::new().nfa_size_limit(Some(64 << 20)))
            .build_from_hir(&self.hir)
            .ok()?;
        let unicode_word = nfa.look_set_any().contains_word_unicode();
        ShapeMemo::new(*nfa.byte_classes(), unicode_word).map(Mutex::new)
    }

    /// The groups of the leftmost-first match in `hay[..end]` starting the search at `start`.
    pub(crate) fn captures(&self, hay: &[u8], start: usize, end: usize) -> Option<GroupSpans> {
        let hay = hay.get(..end)?;
        if start > hay.len() {
            return None;
        }
        self.remembered(&Input::new(hay).range(start..))
    }

    /// Runs the capture engine: into slots on the stack when the pattern has at most
    /// [`INLINE_GROUPS`] groups and the text fits `u16` offsets (no allocation, and no shared
    /// reference count touched: scanning threads share the compiled pattern), else into a
    /// `Captures`.
    fn search(&self, input: &Input<'_>) -> Option<GroupSpans> {
        let slot_len = self.slot_len;
        let re = self.pruner.as_ref().and_then(|it| it.variant(input)).unwrap_or(&self.re);
        if slot_len <= 2 * INLINE_GROUPS && input.haystack().len() < usize::from(u16::MAX) {
            let mut slots = [None; 2 * INLINE_GROUPS];
            re.search_slots(input, &mut slots[..slot_len])?;
            let mut spans = [(u16::MAX, u16::MAX); INLINE_GROUPS];
            for (span, pair) in spans.iter_mut().zip(slots[..slot_len].chunks_exact(2)) {
                if let (Some(s), Some(e)) = (pair[0], pair[1]) {
                    *span = (s.get() as u16, e.get() as u16);
                }
            }
            return Some(GroupSpans::Inline { len: (slot_len / 2) as u8, spans });
        }
        let mut caps = re.create_captures();
        re.search_captures(input, &mut caps);
        caps.is_match().then_some(GroupSpans::Captures(caps))
    }
}

/// Most groups a match holds inline in [`GroupSpans`].
const INLINE_GROUPS: usize = 32;

/// The groups of one match found by [`Direct`]: by group index (0 = the whole match).
#[derive(Debug, Clone)]
pub(crate) enum GroupSpans {
    /// Start and end of each group (`u16::MAX` for a group that did not take part).
    Inline { len: u8, spans: [(u16, u16); INLINE_GROUPS] },
    /// More groups, or a longer text, than fit inline.
    Captures(Captures),
}

impl GroupSpans {
    /// The span of group `i`, when it took part in the match.
    pub(crate) fn get_group(&self, i: usize) -> Option<(usize, usize)> {
        match self {
            GroupSpans::Inline { len, spans } => spans[..usize::from(*len)]
                .get(i)
                .filter(|(s, _)| *s != u16::MAX)
                .map(|&(s, e)| (usize::from(s), usize::from(e))),
            GroupSpans::Captures(caps) => caps.get_group(i).map(|s| (s.start, s.end)),
        }
    }
}

/// A multi-pattern automaton over the leading parts of the failregexes (ASCII syntax).
#[derive(Debug, Clone)]
pub(crate) struct Heads {
    set: meta::Regex,
    /// Every pattern starts with `^`: the search is anchored, so the automaton stops as soon
    /// as no leading part can match any more.
    anchored: bool,
}

impl Heads {
    /// The leading parts of `patterns` (translated, linear-time patterns) as one set; `None`
    /// if one does not parse or the set does not build.
    pub(crate) fn new(patterns: &[String]) -> Option<Heads> {
        let mut parser = regex_syntax::ParserBuilder::new().utf8(false).build();
        let hirs = patterns
            .iter()
            .map(|p| parser.parse(&format!("(?-u){p}")).ok().map(|h| head(&h).0))
            .collect::<Option<Vec<Hir>>>()?;
        let config = meta::Config::new()
            .match_kind(MatchKind::All)
            .utf8_empty(false)
            .nfa_size_limit(Some(64 << 20))
            .hybrid_cache_capacity(4 << 20);
        let anchored = hirs
            .iter()
            .all(|h| h.properties().look_set_prefix().contains(regex_syntax::hir::Look::Start));
        let set = meta::Builder::new().configure(config).build_many_from_hir(&hirs).ok()?;
        Some(Heads { set, anchored })
    }

    /// Sets `maybe[i]` for every pattern whose leading part matches `hay` (all others are
    /// false); whether any does.
    pub(crate) fn read(&self, hay: &[u8], maybe: &mut [bool]) -> bool {
        thread_local! {
            /// One pattern set per thread, reused (`PatternSet::new` allocates).
            static FOUND: std::cell::RefCell<PatternSet> = std::cell::RefCell::new(PatternSet::new(0));
        }
        FOUND.with(|found| {
            let mut found = found.borrow_mut();
            if found.capacity() != self.set.pattern_len() {
                *found = PatternSet::new(self.set.pattern_len());
            }
            found.clear();
            let input = Input::new(hay).anchored(if self.anchored {
                regex_automata::Anchored::Yes
            } else {
                regex_automata::Anchored::No
            });
            self.set.which_overlapping_matches(&input, &mut found);
            maybe.fill(false);
            for id in found.iter() {
                if let Some(m) = maybe.get_mut(id.as_usize()) {
                    *m = true;
                }
            }
            !found.is_empty()
        })
    }
}

/// Whether `h` is cheap for an automaton to get past: it cannot run over words and spaces to
/// the end of the line, so the automaton stops soon after it when the rest is cut off.
fn short(h: &Hir) -> bool {
    match h.kind() {
        HirKind::Empty | HirKind::Literal(_) | HirKind::Look(_) => true,
        HirKind::Class(_) => true,
        HirKind::Repetition(r) => match r.sub.kind() {
            HirKind::Class(c) => {
                let matches = |b: u8| match c {
                    regex_syntax::hir::Class::Bytes(c) => {
                        c.ranges().iter().any(|r| (r.start()..=r.end()).contains(&b))
                    }
                    regex_syntax::hir::Class::Unicode(c) => {
                        c.ranges().iter().any(|r| (r.start()..=r.end()).contains(&char::from(b)))
                    }
                };
                // A run of word characters or of spaces ends soon; `.*` or `[^:]+` do not.
                !(matches(b' ') && matches(b'a'))
            }
            _ => r.max.is_some_and(|m| m <= 8) && short(&r.sub),
        },
        HirKind::Capture(c) => short(&c.sub),
        HirKind::Concat(items) | HirKind::Alternation(items) => items.iter().all(short),
    }
}

/// The leading part of `h`: a pattern that matches wherever `h` matches (at the same start),
/// made of the items of `h` up to the first one that is not [`short`]. The flag tells whether
/// that is all of `h`.
fn head(h: &Hir) -> (Hir, bool) {
    match h.kind() {
        HirKind::Concat(items) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                let (part, whole) = head(item);
                out.push(part);
                if !whole {
                    return (Hir::concat(out), false);
                }
            }
            (Hir::concat(out), true)
        }
        HirKind::Capture(c) => head(&c.sub),
        _ if short(h) => (h.clone(), true),
        _ => (Hir::empty(), false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_keep_the_leading_literals_and_stop_at_the_first_long_item() {
        let parse = |p: &str| regex_syntax::ParserBuilder::new().build().parse(p).unwrap();
        let (h, whole) = head(&parse(r"^Failed (?:\S+) for (?P<u>.*) from x$"));
        assert!(!whole);
        let re = regex::Regex::new(&format!("^(?:{h})$")).unwrap();
        assert!(re.is_match("Failed password for "));
        let (_, whole) = head(&parse(r"^abc\d+ x"));
        assert!(whole);
    }

    #[test]
    fn a_head_set_flags_every_pattern_that_matches() {
        let patterns = [
            r"^Failed \S+ for (?P<user>.*) from (?P<ip>\S+)$".to_owned(),
            r"^Invalid user (?P<user>.*?) from (?P<ip>\S+)".to_owned(),
            r"^(?P<x>.*)$".to_owned(),
        ];
        let heads = Heads::new(&patterns).unwrap();
        let mut maybe = [false; 3];
        for line in ["Failed password for root from 1.2.3.4", "Invalid user a from b", "zz", ""] {
            assert!(heads.read(line.as_bytes(), &mut maybe));
            for (i, p) in patterns.iter().enumerate() {
                let full = regex::Regex::new(p).unwrap().is_match(line);
                assert!(!full || maybe[i], "{line:?} {p}");
            }
        }
    }

    #[test]
    fn out_of_range_searches_do_not_panic() {
        let direct = Direct::ascii(r"^(?P<a>a+)").unwrap();
        assert!(direct.captures(b"aa", 3, 2).is_none());
        assert!(direct.captures(b"aa", 0, 9).is_none());
        let caps = direct.captures_found(b"aa", (2, 1)).unwrap();
        assert_eq!(caps.get_group(1), Some((0, 2)));
        assert!(direct.captures_found(b"aa", (0, 7)).is_some());
    }

    #[test]
    fn groups_beyond_the_inline_slots_and_long_texts_read_the_same() {
        // 40 groups: more than fit inline.
        let many: String = (0..40).map(|i| format!("(?P<g{i}>x)?")).collect::<String>() + "(y+)";
        let direct = Direct::ascii(&format!("^{many}")).unwrap();
        let re = regex::bytes::Regex::new(&format!("(?-u)^{many}")).unwrap();
        let long = "x".repeat(20) + &"y".repeat(70_000);
        for hay in ["xxxy", "yyy", long.as_str()] {
            let a = direct.captures(hay.as_bytes(), 0, hay.len()).unwrap();
            let b = re.captures(hay.as_bytes()).unwrap();
            for i in 0..b.len() {
                assert_eq!(a.get_group(i), b.get(i).map(|m| (m.start(), m.end())), "group {i}");
            }
        }
        // A long text with few groups: past the inline offsets.
        let direct = Direct::ascii(r"^(x*)(?P<y>y+)$").unwrap();
        let caps = direct.captures(long.as_bytes(), 0, long.len()).unwrap();
        assert_eq!(caps.get_group(2), Some((20, long.len())));
        assert!(matches!(caps, GroupSpans::Captures(_)));
    }

    #[test]
    fn direct_captures_equal_the_regex_crate() {
        let p =
            r"^(?P<a>\S+) for (?:invalid user )?(?P<u>\S+|.*?) from (?P<h>[\d.]+)(?: port \d+)?$";
        let direct = Direct::ascii(p).unwrap();
        let re = regex::bytes::Regex::new(&format!("(?-u){p}")).unwrap();
        for line in ["x for invalid user a b from 1.2.3.4 port 2", "x for y from 1.2", "nope", ""] {
            let a = direct.captures(line.as_bytes(), 0, line.len());
            let b = re.captures(line.as_bytes());
            assert_eq!(a.is_some(), b.is_some(), "{line:?}");
            if let (Some(a), Some(b)) = (a, b) {
                for i in 0..b.len() {
                    let ga = a.get_group(i);
                    let gb = b.get(i).map(|m| (m.start(), m.end()));
                    assert_eq!(ga, gb, "{line:?} group {i}");
                }
            }
        }
    }
}
