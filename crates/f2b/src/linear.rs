//! Linear-time forms of some backtracking patterns, so that they run on the `regex` crate.
//!
//! fail2ban's sshd filter has failregexes with conditionals on optional groups
//! (`(?P<g>…)?…(?(g)yes|no)`) and "any character, as long as a literal does not start here"
//! loops (`(?:(?! from ).)*`). Both have exact regular equivalents:
//!
//! - a conditional whose group is set by an optional group or by some branches of an
//!   alternation is resolved by distributing the rest of the sequence over that choice, in the
//!   same priority order (`(?P<g>a)?R` becomes `(?:(?P<g>a)R[g set]|R[g unset])`); a group that
//!   then appears twice gets a `__dupN` suffix, which [`crate::pyre::Rx`] maps back;
//! - a loop `(?:(?!L).)*` followed by the end of the line, or lazily followed by the literal `L`
//!   itself, matches exactly one text (the rest of the line without `L`, or the text up to the
//!   first `L`), which the automaton of "no `L` starts here" (Knuth–Morris–Pratt states) writes
//!   as a plain regex.
//!
//! Anything else (back-references, other look-arounds, conditionals inside repetitions, …) keeps
//! the backtracking engine: [`linearize`] returns `None`.

use std::collections::HashMap;

use fancy_regex::{Assertion, Expr, LookAround};

/// How many tree nodes distributing conditionals may copy before giving up (the expansion is
/// exponential in the number of conditionals).
const BUDGET: usize = 20_000;

fn size(n: &Node) -> usize {
    1 + match n {
        Node::Concat(v) | Node::Alt(v) => v.iter().map(size).sum(),
        Node::Group(_, c) | Node::Repeat(c, ..) => size(c),
        Node::Cond(_, y, n) => size(y) + size(n),
        Node::Leaf(_) | Node::NotLit(_) | Node::Raw(_) => 0,
    }
}

/// A pattern tree with numbered capture groups.
#[derive(Debug, Clone)]
enum Node {
    /// A leaf the `regex` crate understands (printed by `fancy-regex`).
    Leaf(Expr),
    Concat(Vec<Node>),
    Alt(Vec<Node>),
    Group(usize, Box<Node>),
    Repeat(Box<Node>, usize, usize, bool),
    Cond(usize, Box<Node>, Box<Node>),
    /// `(?!L)` for a case-sensitive literal `L`.
    NotLit(Vec<char>),
    /// A finished `regex` crate pattern.
    Raw(String),
}

/// The `regex` crate form of a translated pattern that `fancy-regex` would run, if it has one.
pub(crate) fn linearize(pattern: &str) -> Option<String> {
    let tree = Expr::parse_tree(pattern).ok()?;
    let mut names: HashMap<usize, String> = HashMap::new();
    for (name, indexes) in &tree.named_groups {
        for i in indexes {
            names.insert(*i, name.clone());
        }
    }
    let mut next = 0;
    let node = convert(&tree.expr, &mut next)?;
    let mut budget = BUDGET;
    let node = resolve(node, &HashMap::new(), 0, &mut budget)?;
    let node = loops(node, &Follow::Unknown)?;
    let mut out = String::with_capacity(pattern.len() * 2);
    let mut seen = HashMap::new();
    print(&node, &names, &mut seen, &mut out)?;
    // Expansion is exponential in the number of conditionals: keep it reasonable.
    (out.len() <= 64 * 1024).then_some(out)
}

fn literal_chars(e: &Expr) -> Option<Vec<char>> {
    match e {
        Expr::Literal { val, casei: false } => Some(val.chars().collect()),
        Expr::Concat(v) => {
            let mut out = Vec::new();
            for x in v {
                out.extend(literal_chars(x)?);
            }
            Some(out)
        }
        _ => None,
    }
}

fn convert(e: &Expr, next: &mut usize) -> Option<Node> {
    Some(match e {
        Expr::Empty
        | Expr::Any { .. }
        | Expr::Literal { .. }
        | Expr::Delegate { .. }
        | Expr::Assertion(
            Assertion::StartText
            | Assertion::EndText
            | Assertion::StartLine { .. }
            | Assertion::EndLine { .. }
            | Assertion::WordBoundary
            | Assertion::NotWordBoundary
            | Assertion::LeftWordHalfBoundary
            | Assertion::RightWordHalfBoundary,
        ) => Node::Leaf(e.clone()),
        Expr::Concat(v) => Node::Concat(v.iter().map(|x| convert(x, next)).collect::<Option<_>>()?),
        Expr::Alt(v) => Node::Alt(v.iter().map(|x| convert(x, next)).collect::<Option<_>>()?),
        Expr::Group(child) => {
            *next += 1;
            let i = *next;
            Node::Group(i, Box::new(convert(child, next)?))
        }
        Expr::Repeat { child, lo, hi, greedy } => {
            Node::Repeat(Box::new(convert(child, next)?), *lo, *hi, *greedy)
        }
        Expr::Conditional { condition, true_branch, false_branch } => match &**condition {
            Expr::BackrefExistsCondition { group, relative_recursion_level: None } => Node::Cond(
                *group,
                Box::new(convert(true_branch, next)?),
                Box::new(convert(false_branch, next)?),
            ),
            _ => return None,
        },
        Expr::LookAround(child, LookAround::LookAheadNeg) => {
            let l = literal_chars(child)?;
            if l.is_empty() {
                return None;
            }
            Node::NotLit(l)
        }
        _ => return None,
    })
}

fn groups_in(n: &Node, out: &mut Vec<usize>) {
    match n {
        Node::Group(i, c) => {
            out.push(*i);
            groups_in(c, out);
        }
        Node::Concat(v) | Node::Alt(v) => v.iter().for_each(|x| groups_in(x, out)),
        Node::Repeat(c, ..) => groups_in(c, out),
        Node::Cond(_, y, n) => {
            groups_in(y, out);
            groups_in(n, out);
        }
        Node::Leaf(_) | Node::NotLit(_) | Node::Raw(_) => {}
    }
}

fn conds_in(n: &Node, out: &mut Vec<usize>) {
    match n {
        Node::Cond(g, y, n) => {
            out.push(*g);
            conds_in(y, out);
            conds_in(n, out);
        }
        Node::Group(_, c) | Node::Repeat(c, ..) => conds_in(c, out),
        Node::Concat(v) | Node::Alt(v) => v.iter().for_each(|x| conds_in(x, out)),
        Node::Leaf(_) | Node::NotLit(_) | Node::Raw(_) => {}
    }
}

/// Whether every match of `n` sets group `g`.
fn always(n: &Node, g: usize) -> bool {
    match n {
        Node::Group(i, c) => *i == g || always(c, g),
        Node::Concat(v) => v.iter().any(|x| always(x, g)),
        Node::Alt(v) => !v.is_empty() && v.iter().all(|x| always(x, g)),
        Node::Repeat(c, lo, ..) => *lo >= 1 && always(c, g),
        _ => false,
    }
}

fn never(n: &Node, g: usize) -> bool {
    let mut v = Vec::new();
    groups_in(n, &mut v);
    !v.contains(&g)
}

/// The ways `n` can match, in priority order, each with whether it sets `g`.
fn split(n: &Node, g: usize) -> Option<Vec<(Node, bool)>> {
    let decide = |b: &Node| {
        if always(b, g) {
            Some(true)
        } else if never(b, g) {
            Some(false)
        } else {
            None
        }
    };
    match n {
        Node::Repeat(c, 0, 1, greedy) if always(c, g) => {
            let (with, without) = ((*c.clone(), true), (Node::Leaf(Expr::Empty), false));
            Some(if *greedy { vec![with, without] } else { vec![without, with] })
        }
        Node::Alt(v) => v.iter().map(|b| Some((b.clone(), decide(b)?))).collect(),
        Node::Group(i, c) if *i != g => Some(
            split(c, g)?.into_iter().map(|(b, set)| (Node::Group(*i, Box::new(b)), set)).collect(),
        ),
        _ => None,
    }
}

/// Resolves every conditional, given which groups are known to be set.
fn resolve(
    n: Node,
    known: &HashMap<usize, bool>,
    depth: usize,
    budget: &mut usize,
) -> Option<Node> {
    if depth > 8 {
        return None;
    }
    Some(match n {
        Node::Cond(g, yes, no) => {
            let branch = if *known.get(&g)? { yes } else { no };
            resolve(*branch, known, depth, budget)?
        }
        Node::Concat(items) => resolve_seq(items, known, depth, budget)?,
        Node::Alt(v) => Node::Alt(
            v.into_iter().map(|x| resolve(x, known, depth, budget)).collect::<Option<_>>()?,
        ),
        Node::Group(i, c) => Node::Group(i, Box::new(resolve(*c, known, depth, budget)?)),
        Node::Repeat(c, lo, hi, greedy) => {
            let mut conds = Vec::new();
            conds_in(&c, &mut conds);
            // A group set in an earlier repetition stays set: not modelled.
            if hi > 1 && !conds.is_empty() {
                return None;
            }
            Node::Repeat(Box::new(resolve(*c, known, depth, budget)?), lo, hi, greedy)
        }
        other => other,
    })
}

fn resolve_seq(
    items: Vec<Node>,
    known: &HashMap<usize, bool>,
    depth: usize,
    budget: &mut usize,
) -> Option<Node> {
    for k in 0..items.len() {
        let mut defined = Vec::new();
        groups_in(&items[k], &mut defined);
        let mut later = Vec::new();
        items[k + 1..].iter().for_each(|x| conds_in(x, &mut later));
        let Some(g) = defined.into_iter().find(|g| later.contains(g) && !known.contains_key(g))
        else {
            continue;
        };
        let mut out: Vec<Node> = Vec::with_capacity(k + 1);
        for x in &items[..k] {
            out.push(resolve(x.clone(), known, depth, budget)?);
        }
        let mut alts = Vec::new();
        for (variant, set) in split(&items[k], g)? {
            let mut known = known.clone();
            known.insert(g, set);
            let mut rest = vec![variant];
            rest.extend(items[k + 1..].iter().cloned());
            *budget = budget.checked_sub(rest.iter().map(size).sum())?;
            alts.push(resolve_seq(rest, &known, depth + 1, budget)?);
        }
        out.push(Node::Alt(alts));
        return Some(Node::Concat(out));
    }
    Some(Node::Concat(
        items.into_iter().map(|x| resolve(x, known, depth, budget)).collect::<Option<_>>()?,
    ))
}

/// What follows a node.
#[derive(Debug, Clone)]
enum Follow {
    Unknown,
    EndLine,
    Literal(Vec<char>),
}

/// The literal run or line end that starts at `items[j..]`, continued by `after`.
fn follow_at(items: &[Node], after: &Follow) -> Follow {
    let mut run = Vec::new();
    for x in items {
        match x {
            Node::Leaf(Expr::Literal { val, casei: false }) => run.extend(val.chars()),
            Node::Leaf(Expr::Assertion(Assertion::EndLine { crlf: false })) if run.is_empty() => {
                return Follow::EndLine;
            }
            _ => return if run.is_empty() { Follow::Unknown } else { Follow::Literal(run) },
        }
    }
    match after {
        Follow::Literal(l) => {
            run.extend(l);
            Follow::Literal(run)
        }
        _ if run.is_empty() => after.clone(),
        _ => Follow::Literal(run),
    }
}

/// Replaces every `(?:(?!L).)*` loop by its regular form; `None` if one is left.
fn loops(n: Node, follow: &Follow) -> Option<Node> {
    Some(match n {
        Node::Repeat(child, 0, usize::MAX, greedy) if not_lit_loop(&child).is_some() => {
            let l = not_lit_loop(&child)?;
            // The automaton's regex grows quickly with the literal's length.
            if l.len() > 16 {
                return None;
            }
            match follow {
                Follow::EndLine if !l.contains(&'\n') => Node::Raw(without(&l, |_| true)),
                Follow::Literal(next) if !greedy && next.starts_with(&l) => {
                    Node::Raw(without(&l, |s| first_at_end(&l, s)))
                }
                _ => return None,
            }
        }
        Node::Concat(items) => {
            let mut out = Vec::with_capacity(items.len());
            for j in 0..items.len() {
                let f = follow_at(&items[j + 1..], follow);
                out.push(loops(items[j].clone(), &f)?);
            }
            Node::Concat(out)
        }
        Node::Alt(v) => Node::Alt(v.into_iter().map(|x| loops(x, follow)).collect::<Option<_>>()?),
        Node::Group(i, c) => Node::Group(i, Box::new(loops(*c, follow)?)),
        Node::Repeat(c, lo, hi, greedy) => {
            Node::Repeat(Box::new(loops(*c, &Follow::Unknown)?), lo, hi, greedy)
        }
        Node::NotLit(_) | Node::Cond(..) => return None,
        other => other,
    })
}

/// `L` if `n` is `(?!L).` with `.` not matching newlines.
fn not_lit_loop(n: &Node) -> Option<Vec<char>> {
    match n {
        Node::Concat(v) if v.len() == 2 => match (&v[0], &v[1]) {
            (Node::NotLit(l), Node::Leaf(Expr::Any { newline: false, crlf: false })) => {
                Some(l.clone())
            }
            _ => None,
        },
        _ => None,
    }
}

/// The Knuth–Morris–Pratt step: the longest prefix of `l` that ends `l[..s]` + `c`.
fn step(l: &[char], s: usize, c: char) -> usize {
    let mut text: Vec<char> = l[..s].to_vec();
    text.push(c);
    (0..=text.len().min(l.len())).rev().find(|&j| text.ends_with(&l[..j])).unwrap_or(0)
}

/// Whether, from state `s`, reading `l` completes `l` only at its last character.
fn first_at_end(l: &[char], s: usize) -> bool {
    let mut state = s;
    for &c in &l[..l.len() - 1] {
        state = step(l, state, c);
        if state == l.len() {
            return false;
        }
    }
    true
}

fn class(chars: &[char], negated: bool) -> String {
    let mut s = String::from(if negated { "[^" } else { "[" });
    for c in chars {
        s.push_str(&format!("\\x{{{:X}}}", u32::from(*c)));
    }
    if negated {
        s.push_str("\\n");
    }
    s.push(']');
    s
}

/// A regex for the texts without a newline in which no `l` starts (with the text that follows
/// them), ending in a Knuth–Morris–Pratt state that `accept` allows: state elimination over the
/// automaton's states.
fn without(l: &[char], accept: impl Fn(usize) -> bool) -> String {
    let k = l.len();
    let mut alphabet: Vec<char> = l.to_vec();
    alphabet.sort_unstable();
    alphabet.dedup();
    // Edges between states 0..k (k+1 = start, k+2 = final), as regex texts.
    let n = k + 3;
    let (start, fin) = (k + 1, k + 2);
    let mut r: Vec<Vec<Option<String>>> = vec![vec![None; n]; n];
    for (s, row) in r.iter_mut().enumerate().take(k) {
        let mut to: HashMap<usize, Vec<char>> = HashMap::new();
        for &c in &alphabet {
            to.entry(step(l, s, c)).or_default().push(c);
        }
        for (t, chars) in &to {
            if *t < k && *t != 0 {
                row[*t] = Some(class(chars, false));
            }
        }
        // Every other character (no newline) goes back to state 0.
        let back: Vec<char> = alphabet
            .iter()
            .copied()
            .filter(|c| !to.get(&0).is_some_and(|v| v.contains(c)))
            .collect();
        row[0] = Some(class(&back, true));
        if accept(s) {
            row[fin] = Some(String::new());
        }
    }
    r[start][0] = Some(String::new());
    let alt = |a: Option<String>, b: Option<String>| match (a, b) {
        (None, x) | (x, None) => x,
        (Some(a), Some(b)) => Some(format!("(?:{a}|{b})")),
    };
    // Deepest states first: the result nests like the literal itself.
    for x in (0..k).rev() {
        let lp = r[x][x].take().map(|s| format!("(?:{s})*")).unwrap_or_default();
        for p in (0..n).filter(|&p| p != x) {
            let Some(px) = r[p][x].clone() else { continue };
            for q in (0..n).filter(|&q| q != x) {
                let Some(xq) = r[x][q].clone() else { continue };
                let path = Some(format!("(?:{px}{lp}{xq})"));
                r[p][q] = alt(r[p][q].take(), path);
            }
        }
        for row in &mut r {
            row[x] = None;
        }
        r[x].fill(None);
    }
    r[start][fin].take().unwrap_or_else(|| "[^\\s\\S]".to_owned())
}

fn print(
    n: &Node,
    names: &HashMap<usize, String>,
    seen: &mut HashMap<String, usize>,
    out: &mut String,
) -> Option<()> {
    match n {
        Node::Leaf(e) => {
            out.push_str("(?:");
            e.to_str(out, 0);
            out.push(')');
        }
        Node::Raw(s) => {
            out.push_str("(?:");
            out.push_str(s);
            out.push(')');
        }
        Node::Concat(v) => {
            out.push_str("(?:");
            for x in v {
                print(x, names, seen, out)?;
            }
            out.push(')');
        }
        Node::Alt(v) => {
            out.push_str("(?:");
            for (j, x) in v.iter().enumerate() {
                if j > 0 {
                    out.push('|');
                }
                print(x, names, seen, out)?;
            }
            out.push(')');
        }
        Node::Group(i, c) => {
            match names.get(i) {
                Some(name) => {
                    let count = seen.entry(name.clone()).or_insert(0);
                    if *count == 0 {
                        out.push_str(&format!("(?P<{name}>"));
                    } else {
                        out.push_str(&format!("(?P<{name}{DUP}{count}>"));
                    }
                    *count += 1;
                }
                None => out.push('('),
            }
            print(c, names, seen, out)?;
            out.push(')');
        }
        Node::Repeat(c, lo, hi, greedy) => {
            out.push_str("(?:");
            print(c, names, seen, out)?;
            out.push(')');
            if *hi == usize::MAX {
                out.push_str(&format!("{{{lo},}}"));
            } else {
                out.push_str(&format!("{{{lo},{hi}}}"));
            }
            if !greedy {
                out.push('?');
            }
        }
        Node::Cond(..) | Node::NotLit(_) => return None,
    }
    Some(())
}

/// The suffix of a group name that appears more than once after [`linearize`].
pub(crate) const DUP: &str = "__dup";

#[cfg(test)]
mod tests {
    use super::*;

    fn both(pattern: &str, texts: &[&str]) {
        let lin = linearize(pattern).unwrap_or_else(|| panic!("no linear form for {pattern}"));
        let fancy = fancy_regex::Regex::new(pattern).unwrap();
        let re = regex::Regex::new(&lin).unwrap();
        for t in texts {
            let a = fancy.captures(t).unwrap();
            let b = re.captures(t);
            assert_eq!(a.is_some(), b.is_some(), "{pattern} on {t:?}: {lin}");
            let (Some(a), Some(b)) = (a, b) else { continue };
            assert_eq!(a.get(0).map(|m| m.range()), b.get(0).map(|m| m.range()), "{t:?}");
            for name in re.capture_names().flatten() {
                let base = name.split(DUP).next().unwrap();
                let bv = re.capture_names().flatten().filter(|n| n.split(DUP).next() == Some(base));
                let got = bv.filter_map(|n| b.name(n)).map(|m| m.as_str()).next();
                assert_eq!(a.name(base).map(|m| m.as_str()), got, "{base} in {t:?}");
            }
        }
    }

    #[test]
    fn sshd_failed_regex_keeps_its_matches() {
        let p = r"^Failed (?:(?P<nofail>publickey)|\S+) for (?P<cond_inv>invalid user )?(?P<user>(?P<cond_user>\S+)|(?(<cond_inv>)(?:(?! from ).)*?|[^:]+)) from (?P<ip>[\d.]+)(?: port \d+)?(?: ssh\d*)?(?(<cond_user>): |(?:(?:(?! from ).)*)(?m:$))";
        both(
            p,
            &[
                "Failed password for root from 192.0.2.1 port 22 ssh2\n",
                "Failed password for invalid user a b from 192.0.2.1 port 22 ssh2\n",
                "Failed password for invalid user a from b from 192.0.2.1 port 22 ssh2\n",
                "Failed publickey for bob from 192.0.2.1 port 22 ssh2: RSA SHA256:x\n",
                "Failed password for  from  from 192.0.2.1\n",
                "Failed password for a:b from 192.0.2.1 port 22 ssh2\n",
                "Failed password for x from 192.0.2.1 port 22 ssh2 from 1.2.3.4\n",
                "Failed password for invalid user  from from  from 1.1.1.1 from \n",
                "Failed password for r from 1.2.3.4:  from\n",
                "Failed none for invalid user x from 10.0.0.1 port 5 ssh2 from 9\n",
            ],
        );
    }

    #[test]
    fn no_literal_automaton_handles_overlaps() {
        both(r"^(?P<a>(?:(?!abab).)*)(?m:$)", &["ababab\n", "abaabab\n", "aba\n", "abbab\n", "\n"]);
        both(
            r"^(?P<a>(?:(?!aab).)*?)aab(?P<r>.*)",
            &["aaab x", "aab", "abaab aab", "aaaab", "ab", "baabaab"],
        );
    }

    #[test]
    fn unsupported_shapes_stay_backtracking() {
        assert!(linearize(r"(a)\1").is_none());
        assert!(linearize(r"a(?=b)").is_none());
        assert!(linearize(r"(?:(?P<g>a)|b)+(?(<g>)x|y)").is_none());
        assert!(linearize(r"(?:(?!ab).)*c").is_none());
        // Many conditionals on many-branch alternations: the expansion gives up.
        let branches = (0..40).map(|i| format!("(?P<g{i}>a{i})")).collect::<Vec<_>>().join("|");
        let mut p = String::new();
        for j in 0..8 {
            p.push_str(&format!("(?:{})", branches.replace("(?P<g", &format!("(?P<h{j}_"))));
            p.push_str(&format!("(?(<h{j}_0>)x|y)"));
        }
        assert!(linearize(&p).is_none());
    }
}
