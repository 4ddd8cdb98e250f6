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

use regex_automata::{Input, MatchKind, PatternSet, meta, util::captures::Captures};
use regex_syntax::hir::{Hir, HirKind};

/// A pattern's capture search without the lazy-DFA pass (ASCII, byte-oriented: the same
/// syntax as the `(?-u)` variant of a translated pattern).
#[derive(Debug, Clone)]
pub(crate) struct Direct {
    re: meta::Regex,
    /// The pattern can only match at the start of the text (`^…`).
    anchored_start: bool,
    /// The pattern split at its alternations, for anchored searches.
    split: Option<Split>,
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
        let split = Split::new(&hir, &config);
        Some(Direct { re, anchored_start, split })
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
    pub(crate) fn captures_found(&self, hay: &[u8], found: (usize, usize)) -> Option<Captures> {
        if found.0 > found.1 || found.1 > hay.len() {
            // Not a match of this text: search it all.
            return self.captures(hay, 0, hay.len());
        }
        let input = Input::new(hay).range(found.0..found.1).anchored(regex_automata::Anchored::Yes);
        if let Some(split) = &self.split {
            return split.captures(&input);
        }
        let mut caps = self.re.create_captures();
        self.re.search_captures(&input, &mut caps);
        caps.is_match().then_some(caps)
    }

    /// The groups of the leftmost-first match in `hay[..end]` starting the search at `start`.
    pub(crate) fn captures(&self, hay: &[u8], start: usize, end: usize) -> Option<Captures> {
        let hay = hay.get(..end)?;
        if start > hay.len() {
            return None;
        }
        if let Some(split) = self.split.as_ref().filter(|_| self.anchored_start) {
            // Every match starts at the start of the text: the search is anchored.
            return split
                .captures(&Input::new(hay).range(start..).anchored(regex_automata::Anchored::Yes));
        }
        let mut caps = self.re.create_captures();
        let input = Input::new(hay).range(start..);
        self.re.search_captures(&input, &mut caps);
        caps.is_match().then_some(caps)
    }
}

/// At most this many branches per split pattern (each is a regex of its own).
const MAX_BRANCHES: usize = 32;

/// A pattern split at its alternations into branches, tried in order: [`Split::select`] (an
/// automaton without groups) tells which branches match, and the first of them (pattern
/// order, as the backtracker would find it) gives the groups with its own small regex.
#[derive(Debug, Clone)]
struct Split {
    select: meta::Regex,
    branches: Vec<meta::Regex>,
}

impl Split {
    fn new(hir: &Hir, config: &meta::Config) -> Option<Split> {
        let parts = branches(hir);
        if parts.len() < 2 {
            return None;
        }
        let select_config = meta::Config::new()
            .match_kind(MatchKind::All)
            .utf8_empty(false)
            .nfa_size_limit(Some(64 << 20))
            .hybrid_cache_capacity(4 << 20);
        let select = meta::Builder::new()
            .configure(select_config)
            .syntax(regex_automata::util::syntax::Config::new().utf8(false))
            .build_many_from_hir(&parts)
            .ok()?;
        let branches = parts
            .iter()
            .map(|p| {
                meta::Builder::new()
                    .configure(config.clone())
                    .syntax(regex_automata::util::syntax::Config::new().utf8(false))
                    .build_from_hir(p)
                    .ok()
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Split { select, branches })
    }

    /// The groups of the first branch that matches `input` (an anchored search).
    fn captures(&self, input: &Input<'_>) -> Option<Captures> {
        thread_local! {
            /// One pattern set per thread, reused (`PatternSet::new` allocates).
            static FOUND: std::cell::RefCell<PatternSet> = std::cell::RefCell::new(PatternSet::new(0));
        }
        let first = FOUND.with(|found| {
            let mut found = found.borrow_mut();
            if found.capacity() < self.select.pattern_len() {
                *found = PatternSet::new(self.select.pattern_len());
            }
            found.clear();
            self.select.which_overlapping_matches(input, &mut found);
            found.iter().next()
        })?;
        let re = self.branches.get(first.as_usize())?;
        let mut caps = re.create_captures();
        re.search_captures(input, &mut caps);
        caps.is_match().then_some(caps)
    }
}

/// The bytes a match of `items` (in sequence) can start with; `None` if unknown (or if the
/// items can match the empty text).
fn first_bytes(items: &[Hir]) -> Option<[bool; 256]> {
    for item in items {
        match item.kind() {
            HirKind::Empty | HirKind::Look(_) => {}
            HirKind::Literal(l) => {
                let mut set = [false; 256];
                set[usize::from(*l.0.first()?)] = true;
                return Some(set);
            }
            HirKind::Class(c) => return Some(class_bytes(c)),
            _ if item.properties().minimum_len().unwrap_or(0) == 0 => return None,
            HirKind::Capture(c) => return first_bytes(std::slice::from_ref(&*c.sub)),
            HirKind::Concat(v) => return first_bytes(v),
            HirKind::Repetition(r) => return first_bytes(std::slice::from_ref(&*r.sub)),
            HirKind::Alternation(v) => {
                let mut set = [false; 256];
                for a in v {
                    let s = first_bytes(std::slice::from_ref(a))?;
                    for (x, y) in set.iter_mut().zip(s) {
                        *x |= y;
                    }
                }
                return Some(set);
            }
        }
    }
    None
}

fn class_bytes(c: &regex_syntax::hir::Class) -> [bool; 256] {
    let mut set = [false; 256];
    match c {
        regex_syntax::hir::Class::Bytes(c) => {
            for r in c.ranges() {
                for b in r.start()..=r.end() {
                    set[usize::from(b)] = true;
                }
            }
        }
        regex_syntax::hir::Class::Unicode(c) => {
            for r in c.ranges() {
                for ch in r.start()..=r.end() {
                    match u8::try_from(u32::from(ch)) {
                        Ok(b) if b < 0x80 => set[usize::from(b)] = true,
                        // Any non-ASCII character: any of its UTF-8 bytes.
                        _ => {
                            set[0x80..].fill(true);
                            break;
                        }
                    }
                }
            }
        }
    }
    set
}

/// Whether `h`, from a given start and followed by a text that starts with one of `next`,
/// can end at one position only (so what follows it sees the same text whichever way `h`
/// matched).
fn unique_end(h: &Hir, next: Option<&[bool; 256]>) -> bool {
    match h.kind() {
        HirKind::Empty | HirKind::Literal(_) | HirKind::Class(_) | HirKind::Look(_) => true,
        HirKind::Capture(c) => unique_end(&c.sub, next),
        HirKind::Concat(v) => v.iter().enumerate().all(|(i, item)| {
            let after = v.get(i + 1..).filter(|rest| !rest.is_empty()).map(first_bytes);
            match after {
                Some(Some(f)) => unique_end(item, Some(&f)),
                Some(None) => unique_end(item, None),
                None => unique_end(item, next),
            }
        }),
        HirKind::Repetition(r) => {
            let fixed = r.sub.properties().minimum_len().is_some()
                && r.sub.properties().minimum_len() == r.sub.properties().maximum_len();
            if fixed && Some(r.min) == r.max && unique_end(&r.sub, None) {
                return true;
            }
            // A run of a class stops at the first byte out of it when what follows cannot
            // start with a byte of the class.
            match (r.sub.kind(), next) {
                (HirKind::Class(c), Some(next)) => {
                    class_bytes(c).iter().zip(next).all(|(a, b)| !(*a && *b))
                }
                _ => false,
            }
        }
        HirKind::Alternation(_) => false,
    }
}

/// The alternatives of `h` if it is an alternation (possibly inside capture groups, which
/// each alternative then keeps).
fn alternatives(h: &Hir) -> Option<Vec<Hir>> {
    match h.kind() {
        HirKind::Alternation(v) => Some(v.clone()),
        HirKind::Capture(c) => Some(
            alternatives(&c.sub)?
                .into_iter()
                .map(|a| {
                    Hir::capture(regex_syntax::hir::Capture {
                        index: c.index,
                        name: c.name.clone(),
                        sub: Box::new(a),
                    })
                })
                .collect(),
        ),
        _ => None,
    }
}

/// `h` as branches `B1|B2|…` with the same leftmost-first matches and groups for an anchored
/// search: the first alternation in the sequence is distributed over (`P(a|b)R` becomes
/// `PaR|PbR`), which is exact when `P` can end at one position only.
fn branches(h: &Hir) -> Vec<Hir> {
    let items = match h.kind() {
        HirKind::Concat(v) => v.clone(),
        _ => vec![h.clone()],
    };
    split_items(items, MAX_BRANCHES)
}

fn split_items(items: Vec<Hir>, budget: usize) -> Vec<Hir> {
    for i in 0..items.len() {
        if let Some(alts) = alternatives(&items[i]) {
            if alts.len() < 2 || alts.len() > budget {
                break;
            }
            let per = budget / alts.len();
            let mut out = Vec::new();
            for a in alts {
                let mut v = items[..i].to_vec();
                match a.kind() {
                    HirKind::Concat(parts) => v.extend(parts.iter().cloned()),
                    _ => v.push(a),
                }
                v.extend(items[i + 1..].iter().cloned());
                out.extend(split_items(v, per));
            }
            return out;
        }
        let next = items.get(i + 1..).and_then(first_bytes);
        if !unique_end(&items[i], next.as_ref()) {
            break;
        }
    }
    vec![Hir::concat(items)]
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
        assert_eq!(caps.get_group(1).map(|s| (s.start, s.end)), Some((0, 2)));
        assert!(direct.captures_found(b"aa", (0, 7)).is_some());
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
                    let ga = a.get_group(i).map(|s| (s.start, s.end));
                    let gb = b.get(i).map(|m| (m.start(), m.end()));
                    assert_eq!(ga, gb, "{line:?} group {i}");
                }
            }
        }
    }
    /// The groups of every branch-split capture search equal those of the whole pattern's
    /// (the `regex` crate's leftmost-first match) on tricky `sshd.conf` lines.
    #[test]
    fn split_branches_capture_the_same_groups_as_the_whole_pattern() {
        let sources = [
            // sshd.conf's `Failed …` failregex with `publickey = nofail`.
            r"^Failed (?:<F-NOFAIL>publickey</F-NOFAIL>|\S+) for (?P<cond_inv>invalid user )?<F-USER>(?P<cond_user>\S+)|(?(cond_inv)(?:(?! from ).)*?|[^:]+)</F-USER> from <HOST>(?: (?:port \d+|on \S+)){0,2}(?: ssh\d*)?(?(cond_user): |(?:(?:(?! from ).)*)$)",
            r"^[aA]uthentication (?:failure|error|failed) for <F-USER>.*</F-USER> from <HOST>( via \S+)?(?: (?:port \d+|on \S+|\[preauth\])){0,3}\s*$",
            r"^(?:(?:error|fatal): (?:PAM: )?)?(?P<x>a|b) c(?:d|e)?$",
        ];
        let lines = [
            "Failed password for root from 1.2.3.4 port 22 ssh2",
            "Failed password for invalid user admin from 1.2.3.4 port 22 ssh2",
            "Failed password for invalid user x from 1.2.3.4 port 22 from 5.6.7.8 port 22 ssh2",
            "Failed password for x from 1.2.3.4 port 22 from 5.6.7.8 port 2 ssh2",
            "Failed password for invalid user invalid user from 1.2.3.4 port 22 ssh2",
            "Failed password for authenticating user root from 1.2.3.4 port 22 ssh2",
            "Failed publickey for invalid user a b c from 2001:db8::1 port 22 ssh2: RSA SHA256:x",
            "Failed publickey for root from ::ffff:10.0.0.1 port 22 ssh2: ED25519 SHA256:y",
            "Failed keyboard-interactive/pam for  from [2001:db8::2] port 22 ssh2",
            "Failed password for r:oot from host.example.com port 22",
            "Failed password for  from 1.2.3.4",
            "Failed none for x from from 1.2.3.4 port 1 on eth0 ssh2",
            "Authentication failure for root from 1.2.3.4 via 5.6.7.8 port 2 [preauth]",
            "authentication error for a from b from 1.2.3.4 port 2 on x [preauth]  ",
            "error: PAM: b c",
            "a ce",
            "a cd",
            "Failed",
            "",
        ];
        let mut split = Vec::new();
        for source in sources {
            let py = crate::failregex::resolve_tags(source);
            let rx = crate::pyre::Rx::new(&py, false).unwrap();
            let pattern = rx.linear_pattern().unwrap();
            let direct = Direct::ascii(pattern).unwrap();
            split.push(direct.split.as_ref().map_or(0, |s| s.branches.len()));
            let re = regex::bytes::RegexBuilder::new(&format!("(?-u){pattern}"))
                .size_limit(64 << 20)
                .build()
                .unwrap();
            for line in lines {
                let a = direct.captures(line.as_bytes(), 0, line.len());
                let b = re.captures(line.as_bytes());
                assert_eq!(a.is_some(), b.is_some(), "{line:?} {source}");
                let found = re.find(line.as_bytes()).map(|m| (m.start(), m.end()));
                let c = found.and_then(|f| direct.captures_found(line.as_bytes(), f));
                assert_eq!(c.is_some(), b.is_some(), "{line:?} {source}");
                if let (Some(a), Some(b), Some(c)) = (a, b, c) {
                    for i in 0..b.len() {
                        let ga = a.get_group(i).map(|s| (s.start, s.end));
                        let gc = c.get_group(i).map(|s| (s.start, s.end));
                        let gb = b.get(i).map(|m| (m.start(), m.end()));
                        assert_eq!(ga, gb, "{line:?} group {i} {source}");
                        assert_eq!(gc, gb, "{line:?} group {i} {source}");
                    }
                }
            }
        }
        // The `Failed …` and `Authentication …` failregexes split; the third starts with an
        // optional group (not an alternation after a fixed prefix) and keeps its one regex.
        assert!(split[0] >= 4 && split[1] >= 2 && split[2] == 0, "{split:?}");
    }

    #[test]
    fn a_prefix_that_can_end_in_several_places_is_not_split() {
        let parse =
            |p: &str| regex_syntax::ParserBuilder::new().utf8(false).build().parse(p).unwrap();
        // `a*` could give up characters to either branch: splitting would change priorities.
        assert_eq!(branches(&parse(r"(?-u)^a*(?:ab|b)")).len(), 1);
        assert_eq!(branches(&parse(r"(?-u)^\S+ (?:ab|b)")).len(), 2);
        assert_eq!(branches(&parse(r"(?-u)^x(?P<g>a|b(?:c|d))")).len(), 2);
    }
}
