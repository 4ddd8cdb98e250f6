//! Cutting, before a capture search, the alternatives a text cannot take because a literal
//! they need is missing from it.
//!
//! A fail2ban conditional such as sshd.conf's `(?(cond_user): |(?:(?! from ).)*$)` becomes, on
//! the linear engine, an alternation whose branches each repeat the rest of the pattern
//! ([`crate::linear`]). The capture engine (a bounded backtracker) tries the branches in order:
//! on a common `Failed password for root from 192.0.2.7 port 22 ssh2` line it walks the
//! `cond_user` branch through the user, the address, the port and `ssh2` — and every way to
//! read them — before it fails on the `: ` that branch needs and the line lacks. On sshd.conf's
//! `Failed` failregex that is half the search's time.
//!
//! A [`Pruner`] knows, for each large branch, literals that every match of the branch
//! contains and that the whole pattern does not need (`: ` above). Before a search it looks for
//! them in the text (`memmem`, a few nanoseconds) and searches with a variant of the pattern in
//! which every branch whose literal is missing starts with a class that matches nothing. That
//! cannot change the match or its groups: the leftmost-first match is the first successful path
//! in priority order, and only paths that cannot succeed are cut, so the order of the others is
//! unchanged. The cut branches keep their capture groups (behind the failing class), so group
//! numbers stay those of the whole pattern; a variant that would number them differently is
//! not used.
//!
//! The variants are compiled on first use. Each scanning thread holds its own copy of the
//! pattern ([`crate::Matcher::for_thread`]), and so its own variants and their caches.

use std::sync::OnceLock;

use memchr::memmem::Finder;
use regex_automata::{Input, meta};
use regex_syntax::hir::{Capture, Class, ClassBytes, Hir, HirKind, Literal, Repetition};

/// Branches smaller than this many HIR nodes are not considered: a backtracker leaves them
/// soon, so looking for their literals would cost more than it saves.
const LARGE_BRANCH: usize = 50;

/// Most branches a pruner can cut (the variants are indexed by a bit per branch).
const MAX_TARGETS: usize = 6;

/// Most literals looked for per search.
const MAX_LITERALS: usize = 4;

/// The literals of one pattern's large branches and the variants without the branches whose
/// literals a text lacks.
#[derive(Debug, Clone)]
pub(crate) struct Pruner {
    hir: Hir,
    config: meta::Config,
    /// Literals looked for, each at most once per search.
    literals: Vec<Finder<'static>>,
    /// Per branch that can be cut: the alternation (by its number in pre-order), the branch,
    /// and the literals (bits of [`Pruner::literals`]) of which any missing one cuts it.
    targets: Vec<(usize, usize, u32)>,
    /// The pattern with the branches of a bit mask of [`Pruner::targets`] cut, compiled on
    /// first use (`None` inside when it does not compile or numbers its groups differently:
    /// the whole pattern is then used).
    variants: Vec<OnceLock<Option<meta::Regex>>>,
}

impl Pruner {
    /// A pruner for `hir` (a byte-oriented pattern compiled with `config`), when it has large
    /// branches, outside any repetition, that need a literal the whole pattern does not.
    pub(crate) fn new(hir: &Hir, config: &meta::Config) -> Option<Pruner> {
        let mut branches = Vec::new();
        find_branches(hir, false, &mut 0, &mut branches);
        let everywhere = required(hir);
        let mut literals: Vec<Vec<u8>> = Vec::new();
        let mut targets = Vec::new();
        for (alternation, branch, sub) in branches {
            let mut bits = 0u32;
            let leading = leading_bytes(sub);
            for literal in required(sub) {
                // A literal the branch starts with stops the backtracker at once anyway.
                if everywhere.contains(&literal) || literal == leading {
                    continue;
                }
                let index = match literals.iter().position(|it| *it == literal) {
                    Some(index) => index,
                    None if literals.len() < MAX_LITERALS => {
                        literals.push(literal);
                        literals.len() - 1
                    }
                    None => continue,
                };
                bits |= 1 << index;
            }
            if bits != 0 && targets.len() < MAX_TARGETS {
                targets.push((alternation, branch, bits));
            }
        }
        if targets.is_empty() {
            return None;
        }
        let literals = literals.iter().map(|it| Finder::new(it).into_owned()).collect();
        let variants = (0..1usize << targets.len()).map(|_| OnceLock::new()).collect();
        Some(Pruner { hir: hir.clone(), config: config.clone(), literals, targets, variants })
    }

    /// The pattern to search `input` with: `None` for the whole pattern (no branch can be cut
    /// or its variant did not build).
    pub(crate) fn variant(&self, input: &Input<'_>) -> Option<&meta::Regex> {
        let text = input.haystack().get(input.start()..input.end())?;
        let missing = self
            .literals
            .iter()
            .enumerate()
            .filter(|(_, finder)| finder.find(text).is_none())
            .fold(0u32, |mask, (i, _)| mask | 1 << i);
        if missing == 0 {
            return None;
        }
        let cut = self
            .targets
            .iter()
            .enumerate()
            .filter(|(_, (_, _, bits))| bits & missing != 0)
            .fold(0usize, |mask, (i, _)| mask | 1 << i);
        if cut == 0 {
            return None;
        }
        self.variants.get(cut)?.get_or_init(|| self.build(cut)).as_ref()
    }

    /// The pattern with the branches of the targets in `mask` cut.
    fn build(&self, mask: usize) -> Option<meta::Regex> {
        let cut: Vec<(usize, usize)> = (0..self.targets.len())
            .filter(|i| mask & 1 << i != 0)
            .map(|i| (self.targets[i].0, self.targets[i].1))
            .collect();
        let never = Hir::class(Class::Bytes(ClassBytes::empty()));
        let hir = rewrite(&self.hir, &mut 0, &|id, subs| {
            let subs = subs
                .into_iter()
                .enumerate()
                .map(|(branch, sub)| {
                    if cut.contains(&(id, branch)) {
                        Hir::concat(vec![never.clone(), sub])
                    } else {
                        sub
                    }
                })
                .collect();
            Hir::alternation(subs)
        });
        let re = meta::Builder::new()
            .configure(self.config.clone())
            .syntax(regex_automata::util::syntax::Config::new().utf8(false))
            .build_from_hir(&hir)
            .ok()?;
        // The groups must be numbered as in the whole pattern.
        (re.group_info().slot_len() == slot_len(&self.hir)).then_some(re)
    }
}

/// Slots of a pattern (two per group, the whole match included).
fn slot_len(hir: &Hir) -> usize {
    2 * (hir.properties().explicit_captures_len() + 1)
}

/// Numbers every alternation of `h` in pre-order (from `next`) and collects its large
/// branches (all but the last: cutting the last saves no work before a match) of those
/// outside any repetition, as (alternation, branch, branch pattern).
fn find_branches<'h>(
    h: &'h Hir,
    repeated: bool,
    next: &mut usize,
    out: &mut Vec<(usize, usize, &'h Hir)>,
) {
    match h.kind() {
        HirKind::Alternation(subs) => {
            let id = *next;
            *next += 1;
            if !repeated {
                for (branch, sub) in subs.iter().enumerate().take(subs.len() - 1) {
                    if size(sub) >= LARGE_BRANCH {
                        out.push((id, branch, sub));
                    }
                }
            }
            for sub in subs {
                find_branches(sub, repeated, next, out);
            }
        }
        HirKind::Concat(subs) => subs.iter().for_each(|s| find_branches(s, repeated, next, out)),
        HirKind::Capture(c) => find_branches(&c.sub, repeated, next, out),
        HirKind::Repetition(r) => {
            let repeated = repeated || r.max != Some(1) || r.min > 1;
            find_branches(&r.sub, repeated, next, out);
        }
        _ => {}
    }
}

/// HIR nodes in `h`.
fn size(h: &Hir) -> usize {
    1 + match h.kind() {
        HirKind::Alternation(subs) | HirKind::Concat(subs) => subs.iter().map(size).sum(),
        HirKind::Capture(c) => size(&c.sub),
        HirKind::Repetition(r) => size(&r.sub),
        _ => 0,
    }
}

/// Literals (non-empty byte strings) that every match of `h` contains. Runs of literals and
/// one-byte classes next to each other in a concatenation make one literal; an alternation
/// needs what all its branches need.
fn required(h: &Hir) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    let add = |literal: Vec<u8>, out: &mut Vec<Vec<u8>>| {
        if !literal.is_empty() && !out.contains(&literal) {
            out.push(literal);
        }
    };
    match h.kind() {
        HirKind::Concat(subs) => {
            let mut run = Vec::new();
            for sub in subs {
                match exact_bytes(sub) {
                    Some(bytes) => run.extend_from_slice(&bytes),
                    None => {
                        add(std::mem::take(&mut run), &mut out);
                        for literal in required(sub) {
                            add(literal, &mut out);
                        }
                    }
                }
            }
            add(run, &mut out);
        }
        HirKind::Alternation(subs) => {
            let mut subs = subs.iter().map(required);
            if let Some(first) = subs.next() {
                let rest: Vec<Vec<Vec<u8>>> = subs.collect();
                for literal in first {
                    if rest.iter().all(|it| it.contains(&literal)) {
                        add(literal, &mut out);
                    }
                }
            }
        }
        HirKind::Capture(c) => return required(&c.sub),
        HirKind::Repetition(r) if r.min >= 1 => return required(&r.sub),
        _ => {
            if let Some(bytes) = exact_bytes(h) {
                add(bytes, &mut out);
            }
        }
    }
    out
}

/// The literal run `h` starts with (empty if none).
fn leading_bytes(h: &Hir) -> Vec<u8> {
    match h.kind() {
        HirKind::Concat(subs) => subs.iter().map_while(exact_bytes).collect::<Vec<_>>().concat(),
        HirKind::Capture(c) => leading_bytes(&c.sub),
        _ => exact_bytes(h).unwrap_or_default(),
    }
}

/// The bytes `h` matches when it matches exactly one byte string (a literal, a class of one
/// byte or character, or a concatenation of those).
fn exact_bytes(h: &Hir) -> Option<Vec<u8>> {
    match h.kind() {
        HirKind::Literal(Literal(bytes)) => Some(bytes.to_vec()),
        HirKind::Class(Class::Bytes(c)) => match c.ranges() {
            [r] if r.start() == r.end() => Some(vec![r.start()]),
            _ => None,
        },
        HirKind::Class(Class::Unicode(c)) => match c.ranges() {
            [r] if r.start() == r.end() => {
                let mut buf = [0; 4];
                Some(r.start().encode_utf8(&mut buf).as_bytes().to_vec())
            }
            _ => None,
        },
        HirKind::Concat(subs) => {
            subs.iter().map(exact_bytes).collect::<Option<Vec<_>>>().map(|it| it.concat())
        }
        HirKind::Capture(c) => exact_bytes(&c.sub),
        _ => None,
    }
}

/// `h` rebuilt with each alternation replaced by `edit(number, rewritten branches)`; the
/// alternations are numbered in pre-order from `next`, as [`find_branches`] numbers them.
fn rewrite(h: &Hir, next: &mut usize, edit: &dyn Fn(usize, Vec<Hir>) -> Hir) -> Hir {
    match h.kind() {
        HirKind::Alternation(subs) => {
            let id = *next;
            *next += 1;
            let subs = subs.iter().map(|s| rewrite(s, next, edit)).collect();
            edit(id, subs)
        }
        HirKind::Concat(subs) => Hir::concat(subs.iter().map(|s| rewrite(s, next, edit)).collect()),
        HirKind::Capture(c) => Hir::capture(Capture {
            index: c.index,
            name: c.name.clone(),
            sub: Box::new(rewrite(&c.sub, next, edit)),
        }),
        HirKind::Repetition(r) => Hir::repetition(Repetition {
            min: r.min,
            max: r.max,
            greedy: r.greedy,
            sub: Box::new(rewrite(&r.sub, next, edit)),
        }),
        _ => h.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pattern: &str) -> Hir {
        regex_syntax::ParserBuilder::new()
            .utf8(false)
            .build()
            .parse(&format!("(?-u){pattern}"))
            .unwrap()
    }

    fn config() -> meta::Config {
        meta::Config::new().hybrid(false).dfa(false).utf8_empty(false)
    }

    fn build(hir: &Hir) -> meta::Regex {
        meta::Builder::new()
            .configure(config())
            .syntax(regex_automata::util::syntax::Config::new().utf8(false))
            .build_from_hir(hir)
            .unwrap()
    }

    /// A large branch: a user, fail2ban's `<HOST>` and optional parts (> LARGE_BRANCH nodes).
    /// Unnamed groups: the branches repeat it.
    const BODY: &str = r"(\S+) from (?:\[?(?:(?:::f{4,6}:)?((?:\d{1,3}\.){3}\d{1,3})|((?:[0-9a-fA-F]{1,4}::?|::){1,7}(?:[0-9a-fA-F]{1,4}|:)))\]?|([\w\-.^_]*\w))(?: port (\d+))?(?: on \S+)?(?: ssh\d*)?";

    fn pattern() -> String {
        format!(
            r"^Failed (?:publickey|\S+) for (?:(?P<inv>invalid user )(?:{BODY}: (?P<a>.*)|{BODY} tail(?P<b>.*))|(?:{BODY}: (?P<c>.*)|{BODY}(?P<d>.*)))$"
        )
    }

    #[test]
    fn required_literals_join_runs_and_intersect_alternations() {
        let hir = parse(r"ab[c](?P<x>d)e\d+f(?:gh|xgh|ghy)");
        assert_eq!(required(&hir), vec![b"abcde".to_vec(), b"f".to_vec()]);
        let hir = parse(r"(?:x: |y: )z");
        assert_eq!(required(&hir), vec![b"z".to_vec()]);
        let hir = parse(r"(?:: ){1,2}(?:q)?");
        assert_eq!(required(&hir), vec![b": ".to_vec()]);
        assert!(required(&parse(r"(?i)abc")).is_empty());
    }

    #[test]
    fn branches_that_need_a_missing_literal_are_cut() {
        let hir = parse(&pattern());
        let pruner = Pruner::new(&hir, &config()).expect("large branches with their own literals");
        let literals: Vec<&[u8]> = pruner.literals.iter().map(Finder::needle).collect();
        assert!(literals.contains(&&b": "[..]), "{literals:?}");
        assert!(!literals.contains(&&b" from "[..]), "needed by every branch: {literals:?}");
        let line = b"Failed password for root from 192.0.2.7 port 22 ssh2";
        assert!(pruner.variant(&Input::new(line)).is_some());
        let line = b"Failed password for root from 192.0.2.7 port 22: x tail";
        assert!(pruner.variant(&Input::new(line)).is_none());
    }

    #[test]
    fn a_pruned_search_finds_the_same_groups_as_the_whole_pattern() {
        let hir = parse(&pattern());
        let pruner = Pruner::new(&hir, &config()).unwrap();
        let whole = build(&hir);
        let words = [
            "Failed ",
            "password ",
            "publickey ",
            "for ",
            "invalid user ",
            "root",
            " from ",
            "from ",
            "192.0.2.7",
            "::1",
            "host.example",
            " port ",
            "22",
            " on ",
            "eth0",
            " ssh2",
            ": ",
            "tail",
            " ",
            "x",
            ":",
        ];
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        let (mut cut, mut matched) = (0, 0);
        for _ in 0..20_000 {
            let mut line = String::from("Failed password for ");
            for _ in 0..next(12) {
                line.push_str(words[next(words.len())]);
            }
            let input = Input::new(line.as_bytes());
            let variant = pruner.variant(&input);
            cut += usize::from(variant.is_some());
            let mut a = vec![None; whole.group_info().slot_len()];
            let mut b = a.clone();
            let found = whole.search_slots(&input, &mut a);
            let pruned = variant.unwrap_or(&whole).search_slots(&input, &mut b);
            assert_eq!(found.is_some(), pruned.is_some(), "{line:?}");
            assert_eq!(a, b, "{line:?}");
            matched += usize::from(found.is_some());
        }
        assert!(cut > 1000 && matched > 100, "cut {cut}, matched {matched}: the test covers both");
    }
}
