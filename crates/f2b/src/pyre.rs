//! Python `re` patterns run on Rust engines.
//!
//! fail2ban filters are written in Python's regex dialect. [`translate`] rewrites a pattern into
//! the syntax of the `regex` crate (linear time) and notes when it needs a backtracking feature —
//! look-around, back-references, conditionals `(?(name)…)`, atomic groups or possessive
//! quantifiers — in which case [`Rx`] compiles it with `fancy-regex` under a backtrack limit. Both
//! engines pick the same match as Python's (leftmost-first, greedy/lazy priorities), so capture
//! groups agree.

use std::sync::Arc;

/// The backtrack limit of `fancy-regex` patterns (per search).
pub const BACKTRACK_LIMIT: usize = 1_000_000;

/// Why a pattern needs the backtracking engine (empty: it does not).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FancyFeatures(pub Vec<&'static str>);

impl FancyFeatures {
    fn add(&mut self, feature: &'static str) {
        if !self.0.contains(&feature) {
            self.0.push(feature);
        }
    }
}

/// A translated pattern.
#[derive(Debug, Clone)]
pub(crate) struct Translated {
    pub(crate) pattern: String,
    pub(crate) fancy: FancyFeatures,
}

fn is_meta(c: char) -> bool {
    matches!(
        c,
        '\\' | '.'
            | '+'
            | '*'
            | '?'
            | '('
            | ')'
            | '|'
            | '['
            | ']'
            | '{'
            | '}'
            | '^'
            | '$'
            | '#'
            | '&'
            | '-'
            | '~'
    )
}

/// Translates a Python `re` pattern. `multiline` is Python's `re.MULTILINE`; without it `$` is
/// written so that it also matches before the newline that ends every buffer fail2ban searches.
pub(crate) fn translate(py: &str, multiline: bool) -> Result<Translated, String> {
    translate_inner(py, multiline, false, false)
}

/// A linear-time superset of a pattern that needs backtracking: look-arounds dropped,
/// conditionals made alternations, back-references any text, atomic and possessive made plain.
/// Whenever the pattern matches a text, its relaxed form does too, so it is a cheap prefilter.
pub(crate) fn relaxed(py: &str, multiline: bool) -> Result<String, String> {
    translate_inner(py, multiline, true, false).map(|t| t.pattern)
}

/// How a `(` was translated.
enum Open {
    /// A group was opened (`true`: a conditional rewritten as an alternation).
    Group(bool),
    /// No group (inline flags, a comment, or a dropped look-around).
    None,
}

fn translate_inner(
    py: &str,
    multiline: bool,
    relaxed: bool,
    free: bool,
) -> Result<Translated, String> {
    let mut stack: Vec<(bool, bool)> = Vec::new();
    let chars: Vec<char> = py.chars().collect();
    let mut out = String::with_capacity(py.len() + 16);
    let mut fancy = FancyFeatures::default();
    let mut i = 0;
    // Whether the previous token can take a quantifier (for literal `{`).
    let mut repeatable = false;
    let n = chars.len();
    while i < n {
        let c = chars[i];
        match c {
            '\\' => {
                let (text, backref, consumed) = escape(&chars, i, false)?;
                if backref {
                    fancy.add("back-reference");
                }
                if backref && relaxed {
                    out.push_str("(?s:.*?)");
                } else if free && matches!(text.as_str(), "\\b" | "\\B" | "\\A" | "\\z") {
                    out.push_str("(?:)");
                } else {
                    out.push_str(&text);
                }
                i += consumed;
                repeatable = true;
            }
            '[' => {
                let consumed = class(&chars, i, &mut out)?;
                i += consumed;
                repeatable = true;
            }
            '(' => {
                let (consumed, open) = group_open(&chars, i, &mut out, &mut fancy, relaxed)?;
                i += consumed;
                match open {
                    Open::Group(cond) => {
                        stack.push((cond, false));
                        repeatable = false;
                    }
                    // A dropped look-around leaves an empty group behind.
                    Open::None => repeatable = relaxed && out.ends_with("(?:)"),
                }
            }
            ')' => {
                if let Some((true, false)) = stack.pop() {
                    out.push('|');
                }
                out.push(')');
                i += 1;
                repeatable = true;
            }
            '{' => {
                if let Some((text, consumed)) = quantifier(&chars, i).filter(|_| repeatable) {
                    out.push_str(&text);
                    i += consumed;
                    possessive_or_lazy(&chars, &mut i, &mut out, &mut fancy, relaxed);
                    repeatable = false;
                } else {
                    out.push_str("\\{");
                    i += 1;
                    repeatable = true;
                }
            }
            '}' => {
                out.push_str("\\}");
                i += 1;
                repeatable = true;
            }
            '*' | '+' | '?' => {
                out.push(c);
                i += 1;
                possessive_or_lazy(&chars, &mut i, &mut out, &mut fancy, relaxed);
                repeatable = false;
            }
            '$' => {
                out.push_str(if free {
                    "(?:)"
                } else if multiline {
                    "$"
                } else {
                    "(?m:$)"
                });
                i += 1;
                repeatable = false;
            }
            '^' => {
                out.push_str(if free { "(?:)" } else { "^" });
                i += 1;
                repeatable = false;
            }
            '|' => {
                if let Some(top) = stack.last_mut() {
                    top.1 = true;
                }
                out.push('|');
                i += 1;
                repeatable = false;
            }
            '#' | '&' | '~' => {
                out.push('\\');
                out.push(c);
                i += 1;
                repeatable = true;
            }
            _ => {
                out.push(c);
                i += 1;
                repeatable = true;
            }
        }
    }
    let pattern = if multiline && !free { format!("(?m){out}") } else { out };
    Ok(Translated { pattern, fancy })
}

/// After a quantifier: a lazy `?` is copied; a possessive `+` needs the backtracking engine.
fn possessive_or_lazy(
    chars: &[char],
    i: &mut usize,
    out: &mut String,
    fancy: &mut FancyFeatures,
    relaxed: bool,
) {
    match chars.get(*i) {
        Some('?') => {
            out.push('?');
            *i += 1;
        }
        Some('+') => {
            if !relaxed {
                out.push('+');
            }
            *i += 1;
            fancy.add("possessive quantifier");
        }
        _ => {}
    }
}

/// `{m}`, `{m,}`, `{,n}`, `{m,n}` as Python reads them; `None` if the brace is a literal.
fn quantifier(chars: &[char], start: usize) -> Option<(String, usize)> {
    let mut j = start + 1;
    let mut lo = String::new();
    while j < chars.len() && chars[j].is_ascii_digit() {
        lo.push(chars[j]);
        j += 1;
    }
    let mut hi: Option<String> = None;
    if chars.get(j) == Some(&',') {
        j += 1;
        let mut h = String::new();
        while j < chars.len() && chars[j].is_ascii_digit() {
            h.push(chars[j]);
            j += 1;
        }
        hi = Some(h);
    }
    if chars.get(j) != Some(&'}') {
        return None;
    }
    if lo.is_empty() && hi.is_none() {
        return None;
    }
    let lo = if lo.is_empty() { "0".to_owned() } else { lo };
    let text = match hi {
        None => format!("{{{lo}}}"),
        Some(h) if h.is_empty() => format!("{{{lo},}}"),
        Some(h) => format!("{{{lo},{h}}}"),
    };
    Some((text, j + 1 - start))
}

/// Reads `n` hex digits after position `at`.
fn hex(chars: &[char], at: usize, n: usize) -> Result<u32, String> {
    let s: String = chars.get(at..at + n).ok_or("incomplete escape")?.iter().collect();
    u32::from_str_radix(&s, 16).map_err(|_| format!("bad escape \\{s}"))
}

/// Translates the escape at `chars[i] == '\\'`: (text, is back-reference, chars consumed).
fn escape(chars: &[char], i: usize, in_class: bool) -> Result<(String, bool, usize), String> {
    let Some(&c) = chars.get(i + 1) else { return Err("bad escape (end of pattern)".into()) };
    let code = |v: u32| -> Result<String, String> {
        char::from_u32(v).map(|_| format!("\\x{{{v:X}}}")).ok_or_else(|| format!("bad code {v}"))
    };
    Ok(match c {
        '1'..='9' if !in_class => {
            // Back-reference (one or two digits), or octal with three octal digits.
            let mut j = i + 1;
            let mut digits = String::new();
            while j < chars.len() && chars[j].is_ascii_digit() && digits.len() < 2 {
                digits.push(chars[j]);
                j += 1;
            }
            (format!("\\{digits}"), true, j - i)
        }
        '0'..='7' => {
            let mut j = i + 1;
            let mut v = 0u32;
            let mut k = 0;
            while j < chars.len() && k < 3 && ('0'..='7').contains(&chars[j]) {
                v = v * 8 + chars[j].to_digit(8).unwrap_or(0);
                j += 1;
                k += 1;
            }
            (code(v)?, false, j - i)
        }
        'Z' if !in_class => ("\\z".into(), false, 2),
        'A' | 'B' if !in_class => (format!("\\{c}"), false, 2),
        'b' => (if in_class { "\\x08".into() } else { "\\b".into() }, false, 2),
        'd' | 'D' | 'w' | 'W' | 's' | 'S' | 'n' | 't' | 'r' | 'f' | 'v' | 'a' => {
            (format!("\\{c}"), false, 2)
        }
        'x' => (code(hex(chars, i + 2, 2)?)?, false, 4),
        'u' => (code(hex(chars, i + 2, 4)?)?, false, 6),
        'U' => (code(hex(chars, i + 2, 8)?)?, false, 10),
        c if c.is_ascii_alphanumeric() => return Err(format!("bad escape \\{c}")),
        c if is_meta(c) => (format!("\\{c}"), false, 2),
        c => (c.to_string(), false, 2),
    })
}

/// Copies a character class starting at `chars[start] == '['`; returns the chars consumed.
fn class(chars: &[char], start: usize, out: &mut String) -> Result<usize, String> {
    let mut i = start + 1;
    out.push('[');
    if chars.get(i) == Some(&'^') {
        out.push('^');
        i += 1;
    }
    if chars.get(i) == Some(&']') {
        out.push_str("\\]");
        i += 1;
    }
    let mut prev_dash = false;
    while i < chars.len() {
        let c = chars[i];
        match c {
            ']' => {
                out.push(']');
                return Ok(i + 1 - start);
            }
            '\\' => {
                let (text, _, consumed) = escape(chars, i, true)?;
                out.push_str(&text);
                i += consumed;
                prev_dash = false;
                continue;
            }
            '[' | '&' | '~' => {
                out.push('\\');
                out.push(c);
            }
            '-' if prev_dash => out.push_str("\\-"),
            '-' if chars.get(i + 1) == Some(&']') => out.push_str("\\-"),
            _ => out.push(c),
        }
        prev_dash = c == '-';
        i += 1;
    }
    Err("unterminated character set".into())
}

/// Translates a group opening at `chars[i] == '('`; returns the chars consumed.
fn group_open(
    chars: &[char],
    i: usize,
    out: &mut String,
    fancy: &mut FancyFeatures,
    relaxed: bool,
) -> Result<(usize, Open), String> {
    let group = |n: usize| Ok((n, Open::Group(false)));
    if chars.get(i + 1) != Some(&'?') {
        out.push('(');
        return group(1);
    }
    let rest: String = chars[i + 2..chars.len().min(i + 6)].iter().collect();
    let starts = |p: &str| rest.starts_with(p);
    if starts("P<") {
        let end = chars[i..].iter().position(|&c| c == '>').ok_or("unterminated group name")?;
        let name: String = chars[i + 4..i + end].iter().collect();
        out.push_str("(?P<");
        out.push_str(&name);
        out.push('>');
        return group(end + 1);
    }
    if starts("P=") {
        let end = chars[i..].iter().position(|&c| c == ')').ok_or("unterminated reference")?;
        let name: String = chars[i + 4..i + end].iter().collect();
        fancy.add("back-reference");
        if relaxed {
            out.push_str("(?s:.*?)");
        } else {
            out.push_str(&format!("\\k<{name}>"));
        }
        return Ok((end + 1, Open::None));
    }
    if starts(":") {
        out.push_str("(?:");
        return group(3);
    }
    for (p, feature) in [
        ("<=", "look-behind"),
        ("<!", "look-behind"),
        ("=", "look-ahead"),
        ("!", "look-ahead"),
        (">", "atomic group"),
    ] {
        if starts(p) {
            fancy.add(feature);
            if relaxed && p != ">" {
                out.push_str("(?:)");
                return Ok((skip_group(chars, i)?, Open::None));
            }
            if relaxed {
                out.push_str("(?:");
            } else {
                out.push_str("(?");
                out.push_str(p);
            }
            return group(2 + p.len());
        }
    }
    if starts("#") {
        let end = chars[i..].iter().position(|&c| c == ')').ok_or("unterminated comment")?;
        return Ok((end + 1, Open::None));
    }
    if starts("(") {
        let end = chars[i + 3..].iter().position(|&c| c == ')').ok_or("unterminated condition")?;
        let cond: String = chars[i + 3..i + 3 + end].iter().collect();
        fancy.add("conditional");
        if relaxed {
            out.push_str("(?:");
            return Ok((3 + end + 1, Open::Group(true)));
        }
        if cond.chars().all(|c| c.is_ascii_digit()) {
            out.push_str(&format!("(?({cond})"));
        } else {
            out.push_str(&format!("(?(<{cond}>)"));
        }
        return group(3 + end + 1);
    }
    // Inline flags: (?aiLmsux) or (?aiLmsux-imsx:...)
    let mut j = i + 2;
    let mut on = String::new();
    let mut off = String::new();
    let mut negative = false;
    while let Some(&c) = chars.get(j) {
        match c {
            'i' | 'm' | 's' | 'x' => {
                if negative {
                    off.push(c);
                } else {
                    on.push(c);
                }
            }
            'a' | 'u' | 'L' => {}
            '-' => negative = true,
            ':' | ')' => break,
            _ => return Err(format!("unknown extension ?{c}")),
        }
        j += 1;
    }
    let close = *chars.get(j).ok_or("missing ), unterminated subpattern")?;
    let flags = if off.is_empty() { on } else { format!("{on}-{off}") };
    if close == ':' {
        if flags.is_empty() {
            out.push_str("(?:");
        } else {
            out.push_str(&format!("(?{flags}:"));
        }
        return group(j + 1 - i);
    } else if !flags.is_empty() {
        out.push_str(&format!("(?{flags})"));
    }
    Ok((j + 1 - i, Open::None))
}

/// The index just after the `)` closing the group that opens at `chars[i]`.
fn skip_group(chars: &[char], i: usize) -> Result<usize, String> {
    let mut depth = 0usize;
    let mut j = i;
    let mut in_class = false;
    while j < chars.len() {
        match chars[j] {
            '\\' => j += 1,
            '[' if !in_class => {
                in_class = true;
                if chars.get(j + 1) == Some(&'^') {
                    j += 1;
                }
                if chars.get(j + 1) == Some(&']') {
                    j += 1;
                }
            }
            ']' if in_class => in_class = false,
            '(' if !in_class => depth += 1,
            ')' if !in_class => {
                depth -= 1;
                if depth == 0 {
                    return Ok(j + 1 - i);
                }
            }
            _ => {}
        }
        j += 1;
    }
    Err("missing ), unterminated subpattern".into())
}

/// A compiled pattern on one of the two engines.
#[derive(Debug, Clone)]
pub struct Rx {
    engine: Engine,
    /// The `regex` crate pattern (linear-time engine only).
    pattern: Option<String>,
    /// For backtracking patterns: a linear-time superset checked first.
    pre: Option<regex::Regex>,
    names: Arc<Vec<(Arc<str>, usize)>>,
    fancy: FancyFeatures,
    /// The same pattern with ASCII-only classes, used on ASCII text (where it matches exactly
    /// what the Unicode pattern matches, with much smaller automata).
    ascii: Option<regex::bytes::Regex>,
    /// `ascii` for capture searches without the lazy-DFA pass ([`crate::engine::Direct`]).
    direct: Option<crate::engine::Direct>,
}

/// The ASCII variant of a translated pattern, if it compiles.
pub(crate) fn ascii_variant(pattern: &str) -> Option<regex::bytes::Regex> {
    regex::bytes::RegexBuilder::new(&format!("(?-u){pattern}")).size_limit(64 << 20).build().ok()
}

#[derive(Debug, Clone)]
enum Engine {
    Std(regex::Regex),
    Fancy(Box<fancy_regex::Regex>),
}

/// The spans of one match's groups, by group index (0 = whole match), as the engine left them.
#[derive(Debug, Clone)]
pub(crate) enum Spans {
    Str(regex::CaptureLocations),
    Bytes(regex::bytes::CaptureLocations),
    Fancy(Vec<Option<(usize, usize)>>),
    Meta(regex_automata::util::captures::Captures),
}

impl Spans {
    pub(crate) fn get(&self, i: usize) -> Option<(usize, usize)> {
        match self {
            Spans::Str(locs) => locs.get(i),
            Spans::Bytes(locs) => locs.get(i),
            Spans::Fancy(v) => v.get(i).copied().flatten(),
            Spans::Meta(caps) => caps.get_group(i).map(|s| (s.start, s.end)),
        }
    }
}

impl Rx {
    /// Translates and compiles a Python pattern.
    pub(crate) fn new(py: &str, multiline: bool) -> Result<Rx, String> {
        let t = translate(py, multiline)?;
        if !t.fancy.0.is_empty()
            && let Some(pattern) = crate::linear::linearize(&t.pattern)
            && let Ok(rx) =
                Rx::from_translated(&Translated { pattern, fancy: FancyFeatures::default() })
        {
            return Ok(rx);
        }
        let mut rx = Rx::from_translated(&t)?;
        if !t.fancy.0.is_empty() {
            rx.pre = relaxed(py, multiline)
                .ok()
                .and_then(|p| regex::RegexBuilder::new(&p).size_limit(64 << 20).build().ok());
        }
        Ok(rx)
    }

    pub(crate) fn from_translated(t: &Translated) -> Result<Rx, String> {
        let (engine, names) = if t.fancy.0.is_empty() {
            let re = regex::RegexBuilder::new(&t.pattern)
                .size_limit(64 << 20)
                .build()
                .map_err(|e| e.to_string())?;
            let names = re
                .capture_names()
                .enumerate()
                .filter_map(|(i, n)| {
                    n.map(|n| (Arc::from(n.split(crate::linear::DUP).next().unwrap_or(n)), i))
                })
                .collect();
            (Engine::Std(re), names)
        } else {
            let re = fancy_regex::RegexBuilder::new(&t.pattern)
                .backtrack_limit(BACKTRACK_LIMIT)
                .delegate_size_limit(64 << 20)
                .build()
                .map_err(|e| e.to_string())?;
            let names = re
                .capture_names()
                .enumerate()
                .filter_map(|(i, n)| n.map(|n| (Arc::from(n), i)))
                .collect();
            (Engine::Fancy(Box::new(re)), names)
        };
        let ascii = if t.fancy.0.is_empty() { ascii_variant(&t.pattern) } else { None };
        let pattern = t.fancy.0.is_empty().then(|| t.pattern.clone());
        let direct = ascii.as_ref().and_then(|_| crate::engine::Direct::ascii(&t.pattern));
        Ok(Rx {
            engine,
            pattern,
            pre: None,
            names: Arc::new(names),
            fancy: t.fancy.clone(),
            ascii,
            direct,
        })
    }

    /// The backtracking features this pattern needs (empty: linear-time engine).
    pub fn fancy_features(&self) -> &[&'static str] {
        &self.fancy.0
    }

    /// The pattern the linear-time engine runs (`None` for the backtracking engine).
    pub(crate) fn linear_pattern(&self) -> Option<&str> {
        self.pattern.as_deref()
    }

    /// Named groups and their indexes (a name can have several: one per branch that sets it).
    pub(crate) fn names(&self) -> &[(Arc<str>, usize)] {
        &self.names
    }

    pub(crate) fn has_group(&self, name: &str) -> bool {
        self.names.iter().any(|(n, _)| &**n == name)
    }

    /// Searches `hay[..end]` from `start`. A backtrack-limit overrun counts as no match.
    pub(crate) fn search_in(&self, hay: &str, start: usize, end: usize) -> Option<Spans> {
        self.search_in_with(hay, start, end, true)
    }

    /// The span of the match [`Rx::search_in`] would find, without capture groups: `Some(None)`
    /// for no match, `None` when only the backtracking engine can tell.
    pub(crate) fn find_in(
        &self,
        hay: &str,
        start: usize,
        end: usize,
    ) -> Option<Option<(usize, usize)>> {
        let Some(hay) = hay.get(..end) else { return Some(None) };
        if let Some(ascii) = &self.ascii
            && hay.is_ascii()
        {
            return Some(ascii.find_at(hay.as_bytes(), start).map(|m| (m.start(), m.end())));
        }
        match &self.engine {
            Engine::Std(re) => Some(re.find_at(hay, start).map(|m| (m.start(), m.end()))),
            Engine::Fancy(_) => None,
        }
    }

    /// [`Rx::search_in`] when [`Rx::find_in`] with the same arguments found `found`: the
    /// capture engine then runs over that span only.
    pub(crate) fn search_found(
        &self,
        hay: &str,
        start: usize,
        end: usize,
        found: (usize, usize),
    ) -> Option<Spans> {
        if let Some(direct) = &self.direct
            && let Some(hay) = hay.get(..end)
            && hay.is_ascii()
        {
            return direct.captures_found(hay.as_bytes(), found).map(Spans::Meta);
        }
        self.search_in(hay, start, end)
    }

    /// [`Rx::search`] without the linear-time superset check, for a caller that made it.
    pub(crate) fn search_prechecked(&self, hay: &str) -> Option<Spans> {
        self.search_in_with(hay, 0, hay.len(), false)
    }

    fn search_in_with(&self, hay: &str, start: usize, end: usize, pre: bool) -> Option<Spans> {
        let hay = hay.get(..end)?;
        if let Some(direct) = self.direct.as_ref().filter(|d| d.anchored_start())
            && hay.is_ascii()
        {
            return direct.captures(hay.as_bytes(), start, hay.len()).map(Spans::Meta);
        }
        if let Some(ascii) = &self.ascii
            && hay.is_ascii()
        {
            let mut locs = ascii.capture_locations();
            ascii.captures_read_at(&mut locs, hay.as_bytes(), start)?;
            return Some(Spans::Bytes(locs));
        }
        match &self.engine {
            Engine::Std(re) => {
                let mut locs = re.capture_locations();
                re.captures_read_at(&mut locs, hay, start)?;
                Some(Spans::Str(locs))
            }
            Engine::Fancy(re) => {
                if let Some(superset) = self.pre.as_ref().filter(|_| pre)
                    && !superset.is_match_at(hay, start)
                {
                    return None;
                }
                let caps = re.captures_from_pos(hay, start).ok()??;
                Some(Spans::Fancy(
                    (0..caps.len()).map(|i| caps.get(i).map(|m| (m.start(), m.end()))).collect(),
                ))
            }
        }
    }

    pub(crate) fn search(&self, hay: &str) -> Option<Spans> {
        self.search_in(hay, 0, hay.len())
    }

    #[cfg(test)]
    /// Whether the pattern matches anywhere (no group extraction).
    pub(crate) fn is_match(&self, hay: &str) -> bool {
        match &self.engine {
            Engine::Std(re) => re.is_match(hay),
            Engine::Fancy(re) => re.is_match(hay).unwrap_or(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tr(p: &str) -> String {
        translate(p, false).unwrap().pattern
    }

    #[test]
    fn python_syntax_becomes_rust_syntax() {
        assert_eq!(tr(r"a{,3}b{2}c{x}"), r"a{0,3}b{2}c\{x\}");
        assert_eq!(tr(r"[[\]a-]$"), r"[\[\]a\-](?m:$)");
        assert_eq!(tr(r"\<x\>\Z"), r"<x>\z");
        assert_eq!(tr(r"(?P<n>.)(?#c)(?i)x"), r"(?P<n>.)(?i)x");
        assert_eq!(tr(r"(?(n)a|b)"), r"(?(<n>)a|b)");
        assert!(translate(r"(?=x)", false).unwrap().fancy.0.contains(&"look-ahead"));
        assert!(translate(r"(?P<a>x)(?P=a)", false).unwrap().fancy.0.contains(&"back-reference"));
        assert!(translate(r"\q", false).is_err());
        assert_eq!(
            relaxed(r"a(?=b)c(?(n)x)y\1(?>z)w++", false).unwrap(),
            r"a(?:)c(?:x|)y(?s:.*?)(?:z)w+"
        );
        assert_eq!(relaxed(r"(?(n)x|(?!q)y)", false).unwrap(), r"(?:x|(?:)y)");
    }

    #[test]
    fn conditionals_match_like_python() {
        let rx = Rx::new(r"^(?P<a>x)?(?(a)y|z)$", false).unwrap();
        assert!(rx.is_match("xy\n"));
        assert!(rx.is_match("z\n"));
        assert!(!rx.is_match("xz\n"));
    }
}
#[cfg(test)]
mod ascii_tests {
    #[test]
    fn ascii_variant_builds_for_common_patterns() {
        let rx = super::Rx::new(
            r"^(?P<mlfid>\s*(?:\S+\s+)?(?:[\[\(]?sshd(?:\(\S+\))?[\]\)]?:?\s+)?)(?P<content>.+)$",
            false,
        )
        .unwrap();
        assert!(rx.ascii.is_some());
    }
}
