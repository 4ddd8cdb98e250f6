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

/// `re.ASCII`'s `\b` and `\B` on the linear-time engine.
const ASCII_BOUNDARY: &str = r"(?-u:\b)";
const ASCII_NON_BOUNDARY: &str = r"(?-u:\B)";
/// The same on fancy-regex, which has no `(?-u)`.
const ASCII_BOUNDARY_FANCY: &str =
    r"(?:(?<=[0-9A-Za-z_])(?![0-9A-Za-z_])|(?<![0-9A-Za-z_])(?=[0-9A-Za-z_]))";
const ASCII_NON_BOUNDARY_FANCY: &str =
    r"(?:(?<=[0-9A-Za-z_])(?=[0-9A-Za-z_])|(?<![0-9A-Za-z_])(?![0-9A-Za-z_]))";

/// How a `(` was translated.
enum Open {
    /// A group was opened (`true`: a conditional rewritten as an alternation).
    Group(bool),
    /// No group (a comment, or a dropped look-around).
    None,
    /// Inline flags: scoped `(?flags:…)` (a group was opened) or global `(?flags)`.
    Flags { scoped: bool, ascii: Option<bool>, verbose: Option<bool>, icase: Option<bool> },
}

/// The Python flags the translation itself implements (the others are the Rust engine's).
#[derive(Debug, Clone, Copy, Default)]
struct PyFlags {
    /// `re.ASCII` (`a`): `\w`, `\d`, `\s`, `\b` and their negations are ASCII-only.
    ascii: bool,
    /// `re.VERBOSE` (`x`): whitespace outside classes and `#` comments are dropped.
    verbose: bool,
    /// `re.IGNORECASE` (`i`, also passed to the engine): with `ascii`, only ASCII letters fold.
    icase: bool,
}

impl PyFlags {
    /// ASCII-only case folding (`(?ai)`), which the translation writes out.
    fn ascii_icase(self) -> bool {
        self.ascii && self.icase
    }

    fn apply(&mut self, ascii: Option<bool>, verbose: Option<bool>, icase: Option<bool>) {
        if let Some(a) = ascii {
            self.ascii = a;
        }
        if let Some(i) = icase {
            self.icase = i;
        }
        if let Some(v) = verbose {
            self.verbose = v;
        }
    }
}

/// fail2ban's `R_GLOB2LOCFLAGS`: a group that begins with global flags, `((?i)…)` or
/// `(?:(?i)…)`, is rewritten as the scoped `(?i:…)` before compiling (the first form loses its
/// capture). Returns the length of the opening to skip (`(` or `(?:`) when `chars[i]` starts one.
fn glob_to_local_flags(chars: &[char], i: usize) -> Option<usize> {
    let skip = if chars.get(i + 1..i + 3) == Some(&['?', ':'][..]) { 3 } else { 1 };
    let j = i + skip;
    if chars.get(j..j + 2) != Some(&['(', '?'][..]) {
        return None;
    }
    let letters = chars[j + 2..].iter().take_while(|c| c.is_ascii_lowercase()).count();
    (letters > 0 && chars.get(j + 2 + letters) == Some(&')')).then_some(skip)
}

fn translate_inner(
    py: &str,
    multiline: bool,
    relaxed: bool,
    free: bool,
) -> Result<Translated, String> {
    let mut stack: Vec<(bool, bool)> = Vec::new();
    // Flags in effect, and those to restore when each open group closes.
    let mut flags = PyFlags::default();
    let mut saved: Vec<PyFlags> = Vec::new();
    let chars: Vec<char> = py.chars().collect();
    // Global flags must come first (Python 3.11 refuses them elsewhere).
    let mut at_start = true;
    let mut out = String::with_capacity(py.len() + 16);
    let mut fancy = FancyFeatures::default();
    let mut i = 0;
    // Whether the previous token can take a quantifier (for literal `{`).
    let mut repeatable = false;
    let n = chars.len();
    while i < n {
        let c = chars[i];
        if flags.verbose {
            if matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c') {
                i += 1;
                continue;
            }
            if c == '#' {
                while i < n && chars[i] != '\n' {
                    i += 1;
                }
                continue;
            }
        }
        let was_start = std::mem::replace(&mut at_start, false);
        match c {
            '\\' => {
                let (mut text, backref, consumed) = escape(&chars, i, false, flags.ascii)?;
                if flags.ascii_icase()
                    && let Some(folded) = escape_code(&chars, i, false).and_then(ascii_fold)
                {
                    text = folded;
                }
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
                let consumed = class(&chars, i, &mut out, flags)?;
                i += consumed;
                repeatable = true;
            }
            '(' => {
                let local = glob_to_local_flags(&chars, i);
                let before = out.len();
                let (consumed, open) =
                    group_open(&chars, i + local.unwrap_or(0), &mut out, &mut fancy, relaxed)?;
                i += local.unwrap_or(0) + consumed;
                match open {
                    Open::Group(cond) => {
                        stack.push((cond, false));
                        saved.push(flags);
                        repeatable = false;
                    }
                    // A dropped look-around leaves an empty group behind.
                    Open::None => {
                        repeatable = relaxed && out.ends_with("(?:)");
                        // A comment does not end the place for global flags.
                        at_start = was_start && chars.get(i - consumed + 1) == Some(&'?') && {
                            chars.get(i - consumed + 2) == Some(&'#')
                        };
                    }
                    Open::Flags { scoped, ascii, verbose, icase } if scoped || local.is_some() => {
                        if !scoped {
                            // `(?flags)` of `((?flags)…)`: its group becomes `(?flags:…)`.
                            let text = out.split_off(before);
                            let body = text.trim_start_matches("(?").trim_end_matches(')');
                            out.push_str(&format!("(?{body}:"));
                        }
                        stack.push((false, false));
                        saved.push(flags);
                        flags.apply(ascii, verbose, icase);
                        repeatable = false;
                    }
                    Open::Flags { ascii, verbose, icase, .. } => {
                        if !was_start {
                            return Err("global flags not at the start of the expression".into());
                        }
                        at_start = true;
                        flags.apply(ascii, verbose, icase);
                    }
                }
            }
            ')' => {
                if let Some(f) = saved.pop() {
                    flags = f;
                }
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
                match ascii_fold(c).filter(|_| flags.ascii_icase()) {
                    Some(folded) => out.push_str(&folded),
                    None => out.push(c),
                }
                i += 1;
                repeatable = true;
            }
        }
    }
    let mut pattern = if multiline && !free { format!("(?m){out}") } else { out };
    if !fancy.0.is_empty() && !relaxed {
        // fancy-regex has no `(?-u)`: the ASCII word boundaries as look-arounds.
        pattern = pattern.replace(ASCII_BOUNDARY, ASCII_BOUNDARY_FANCY);
        pattern = pattern.replace(ASCII_NON_BOUNDARY, ASCII_NON_BOUNDARY_FANCY);
    }
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
fn escape(
    chars: &[char],
    i: usize,
    in_class: bool,
    ascii: bool,
) -> Result<(String, bool, usize), String> {
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
        // `re.ASCII`: the classes are ASCII-only (written out, as Rust's `(?-u)` would allow
        // invalid UTF-8 for the negated ones), the word boundary is the ASCII one.
        'w' | 'W' | 'd' | 'D' | 's' | 'S' if ascii => {
            let set = match c.to_ascii_lowercase() {
                'w' => "0-9A-Za-z_",
                'd' => "0-9",
                _ => "\\t\\n\\x0B\\x0C\\r ",
            };
            let text = if c.is_ascii_uppercase() {
                format!("[^{set}]")
            } else if in_class {
                set.to_owned()
            } else {
                format!("[{set}]")
            };
            (text, false, 2)
        }
        'b' | 'B' if ascii && !in_class => (format!("(?-u:\\{c})"), false, 2),
        // Python's `\s` also counts U+001C–U+001F (`str.isspace`), Rust's (`White_Space`) not.
        's' if in_class => ("\\s\\x1C-\\x1F".into(), false, 2),
        's' => ("[\\s\\x1C-\\x1F]".into(), false, 2),
        'S' => ("[^\\s\\x1C-\\x1F]".into(), false, 2),
        'A' | 'B' if !in_class => (format!("\\{c}"), false, 2),
        'b' => (if in_class { "\\x08".into() } else { "\\b".into() }, false, 2),
        'd' | 'D' | 'w' | 'W' | 'n' | 't' | 'r' | 'f' | 'v' | 'a' => (format!("\\{c}"), false, 2),
        'x' => (code(hex(chars, i + 2, 2)?)?, false, 4),
        'u' => (code(hex(chars, i + 2, 4)?)?, false, 6),
        'U' => (code(hex(chars, i + 2, 8)?)?, false, 10),
        c if c.is_ascii_alphanumeric() => return Err(format!("bad escape \\{c}")),
        c if is_meta(c) => (format!("\\{c}"), false, 2),
        c => (c.to_string(), false, 2),
    })
}

/// Copies a character class starting at `chars[start] == '['`; returns the chars consumed.
fn class(chars: &[char], start: usize, out: &mut String, flags: PyFlags) -> Result<usize, String> {
    let ascii = flags.ascii;
    let at = out.len();
    let mut i = start + 1;
    out.push('[');
    if chars.get(i) == Some(&'^') {
        out.push('^');
        i += 1;
    }
    // The class's single characters and ranges, for ASCII case folding (`(?ai)`).
    let mut items: Vec<(u32, u32)> = Vec::new();
    let mut last: Option<u32> = None;
    let mut range = false;
    let mut item = |code: Option<u32>, range: &mut bool, last: &mut Option<u32>| match code {
        Some(hi) if *range && last.is_some() => {
            if let Some(it) = items.last_mut() {
                it.1 = hi;
            }
            *range = false;
            *last = None;
        }
        Some(code) => {
            items.push((code, code));
            *last = Some(code);
            *range = false;
        }
        None => {
            *last = None;
            *range = false;
        }
    };
    if chars.get(i) == Some(&']') {
        out.push_str("\\]");
        item(Some(']' as u32), &mut range, &mut last);
        i += 1;
    }
    let mut prev_dash = false;
    while i < chars.len() {
        let c = chars[i];
        match c {
            ']' => {
                if flags.ascii_icase() {
                    // Python folds ASCII letters only: add the other case of every letter in
                    // the set and stop the engine's (Unicode) folding for the class.
                    for (lo, hi) in items.iter().flat_map(|&(lo, hi)| other_case(lo, hi)) {
                        out.push_str(&format!("\\x{{{lo:X}}}-\\x{{{hi:X}}}"));
                    }
                    out.insert_str(at, "(?-i:");
                    out.push_str("])");
                } else {
                    out.push(']');
                }
                return Ok(i + 1 - start);
            }
            '\\' => {
                let (text, _, consumed) = escape(chars, i, true, ascii)?;
                item(escape_code(chars, i, true).map(u32::from), &mut range, &mut last);
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
        if c == '-' && last.is_some() && !range && chars.get(i + 1) != Some(&']') {
            range = true;
        } else {
            item(Some(c as u32), &mut range, &mut last);
        }
        prev_dash = c == '-';
        i += 1;
    }
    Err("unterminated character set".into())
}

/// The code point an escape at `chars[i] == '\\'` stands for, if it is a single character.
fn escape_code(chars: &[char], i: usize, in_class: bool) -> Option<char> {
    let c = *chars.get(i + 1)?;
    let code = |n: usize| hex(chars, i + 2, n).ok().and_then(char::from_u32);
    match c {
        'x' => code(2),
        'u' => code(4),
        'U' => code(8),
        '0' => {
            let digits: String =
                chars[i + 1..].iter().take(3).take_while(|d| ('0'..='7').contains(d)).collect();
            u32::from_str_radix(&digits, 8).ok().and_then(char::from_u32)
        }
        '1'..='7' if in_class => {
            let digits: String =
                chars[i + 1..].iter().take(3).take_while(|d| ('0'..='7').contains(d)).collect();
            u32::from_str_radix(&digits, 8).ok().and_then(char::from_u32)
        }
        'n' => Some('\n'),
        't' => Some('\t'),
        'r' => Some('\r'),
        'f' => Some('\x0c'),
        'v' => Some('\x0b'),
        'a' => Some('\x07'),
        'b' if in_class => Some('\x08'),
        c if !c.is_ascii_alphanumeric() => Some(c),
        _ => None,
    }
}

/// How a literal character is written under `(?ai)` when the engine's Unicode folding would
/// differ from Python's ASCII folding: `k` and `s` without their non-ASCII partners (U+212A,
/// U+017F), a non-ASCII character without any folding. `None`: as it is.
fn ascii_fold(c: char) -> Option<String> {
    match c {
        'k' | 'K' => Some("(?-i:[kK])".into()),
        's' | 'S' => Some("(?-i:[sS])".into()),
        c if !c.is_ascii() => Some(format!("(?-i:\\x{{{:X}}})", u32::from(c))),
        _ => None,
    }
}

/// The other-case ranges of the ASCII letters in `lo..=hi`.
fn other_case(lo: u32, hi: u32) -> impl Iterator<Item = (u32, u32)> {
    let part = |a: u32, z: u32, shift: i64| {
        let (l, h) = (lo.max(a), hi.min(z));
        (l <= h).then(|| ((i64::from(l) + shift) as u32, (i64::from(h) + shift) as u32))
    };
    [part(0x61, 0x7A, -32), part(0x41, 0x5A, 32)].into_iter().flatten()
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
    // `i`, `m` and `s` are the Rust engine's (same meaning); `x` (verbose) and `a` (ASCII) are
    // implemented by the translation; `u` is the default of text patterns; `L` is refused, as
    // Python refuses it for text patterns.
    let mut j = i + 2;
    let mut on = String::new();
    let mut off = String::new();
    let mut negative = false;
    let (mut ascii, mut verbose, mut icase) = (None, None, None);
    let mut charset = 0;
    while let Some(&c) = chars.get(j) {
        match c {
            'i' | 'm' | 's' => {
                if negative {
                    off.push(c);
                } else {
                    on.push(c);
                }
                if c == 'i' {
                    icase = Some(!negative);
                }
            }
            'x' => verbose = Some(!negative),
            'a' | 'u' if negative => {
                return Err("bad inline flags: cannot turn off flags 'a', 'u' and 'L'".into());
            }
            'a' | 'u' => {
                charset += 1;
                ascii = Some(c == 'a');
            }
            'L' => return Err("bad inline flags: cannot use 'L' flag with a str pattern".into()),
            '-' if negative => return Err("bad inline flags: unexpected '-'".into()),
            '-' => negative = true,
            ':' | ')' => break,
            _ => return Err(format!("unknown extension ?{c}")),
        }
        j += 1;
    }
    if charset > 1 {
        return Err("bad inline flags: flags 'a', 'u' and 'L' are incompatible".into());
    }
    let close = *chars.get(j).ok_or("missing ), unterminated subpattern")?;
    if close == ')' && negative {
        return Err("missing :".into());
    }
    let flags = if off.is_empty() { on } else { format!("{on}-{off}") };
    let scoped = close == ':';
    if scoped {
        if flags.is_empty() {
            out.push_str("(?:");
        } else {
            out.push_str(&format!("(?{flags}:"));
        }
    } else if !flags.is_empty() {
        out.push_str(&format!("(?{flags})"));
    }
    Ok((j + 1 - i, Open::Flags { scoped, ascii, verbose, icase }))
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
    Std(Unicode),
    Fancy(Box<fancy_regex::Regex>),
}

/// The Unicode form of a linear-time pattern, compiled on first use: ASCII text (nearly every
/// log line) runs the ASCII variants, so most filters never need it, and compiling it is the
/// largest part of the start-up (Unicode classes make big automata). Clones share it.
#[derive(Debug, Clone)]
struct Unicode {
    pattern: Arc<str>,
    re: Arc<std::sync::OnceLock<Option<regex::Regex>>>,
}

impl Unicode {
    /// Compiled already (when there is no ASCII variant to take the names from).
    fn eager(pattern: &str, re: regex::Regex) -> Unicode {
        Unicode { pattern: Arc::from(pattern), re: Arc::new(std::sync::OnceLock::from(Some(re))) }
    }

    /// Compiled on first use; the pattern already parsed.
    fn lazy(pattern: &str) -> Unicode {
        Unicode { pattern: Arc::from(pattern), re: Arc::new(std::sync::OnceLock::new()) }
    }

    /// The regex; `None` if it does not compile (it parsed, so only a size limit can fail it:
    /// such a pattern then matches no non-ASCII text).
    fn get(&self) -> Option<&regex::Regex> {
        self.re
            .get_or_init(|| {
                regex::RegexBuilder::new(&self.pattern).size_limit(64 << 20).build().ok()
            })
            .as_ref()
    }
}

/// The spans of one match's groups, by group index (0 = whole match), as the engine left them.
#[derive(Debug, Clone)]
pub(crate) enum Spans {
    Str(regex::CaptureLocations),
    Bytes(regex::bytes::CaptureLocations),
    Fancy(Vec<Option<(usize, usize)>>),
    Meta(crate::engine::GroupSpans),
}

impl Spans {
    pub(crate) fn get(&self, i: usize) -> Option<(usize, usize)> {
        match self {
            Spans::Str(locs) => locs.get(i),
            Spans::Bytes(locs) => locs.get(i),
            Spans::Fancy(v) => v.get(i).copied().flatten(),
            Spans::Meta(caps) => caps.get_group(i),
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
        let ascii = if t.fancy.0.is_empty() { ascii_variant(&t.pattern) } else { None };
        let (engine, names) = if t.fancy.0.is_empty() {
            let name = |(i, n): (usize, Option<&str>)| {
                n.map(|n| (Arc::from(n.split(crate::linear::DUP).next().unwrap_or(n)), i))
            };
            // With an ASCII variant, the Unicode form is only parsed now (for its errors) and
            // compiled on first use; the group names and indexes are the same.
            let parsed = ascii
                .as_ref()
                .filter(|_| regex_syntax::ParserBuilder::new().build().parse(&t.pattern).is_ok());
            if let Some(ascii) = parsed {
                let names = ascii.capture_names().enumerate().filter_map(name).collect();
                (Engine::Std(Unicode::lazy(&t.pattern)), names)
            } else {
                let re = regex::RegexBuilder::new(&t.pattern)
                    .size_limit(64 << 20)
                    .build()
                    .map_err(|e| e.to_string())?;
                let names = re.capture_names().enumerate().filter_map(name).collect();
                (Engine::Std(Unicode::eager(&t.pattern, re)), names)
            }
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
            Engine::Std(re) => {
                Some(re.get().and_then(|re| re.find_at(hay, start)).map(|m| (m.start(), m.end())))
            }
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
                let re = re.get()?;
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
            Engine::Std(re) => re.get().is_some_and(|re| re.is_match(hay)),
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
    fn the_unicode_form_compiled_on_first_use_matches_non_ascii_text() {
        let rx = Rx::new(r"^(?P<user>\w+) from (?P<host>\S+)$", false).unwrap();
        let Engine::Std(unicode) = &rx.engine else { panic!("linear-time pattern") };
        // ASCII text runs the ASCII variants: the Unicode form is not compiled yet.
        let spans = rx.search("root from 1.2.3.4").unwrap();
        assert_eq!(spans.get(1), Some((0, 4)));
        assert!(unicode.re.get().is_none());
        let line = "j\u{fc}rgen from h\u{f6}st";
        let spans = rx.search(line).unwrap();
        assert!(unicode.re.get().is_some_and(Option::is_some));
        assert_eq!(spans.get(1).map(|(s, e)| &line[s..e]), Some("j\u{fc}rgen"));
        assert_eq!(spans.get(2).map(|(s, e)| &line[s..e]), Some("h\u{f6}st"));
        let names: Vec<&str> = rx.names().iter().map(|(n, _)| &**n).collect();
        assert_eq!(names, ["user", "host"]);
        assert!(Rx::new(r"(?P<a>x", false).is_err());
    }

    #[test]
    fn python_syntax_becomes_rust_syntax() {
        assert_eq!(tr(r"a{,3}b{2}c{x}"), r"a{0,3}b{2}c\{x\}");
        assert_eq!(tr(r"[[\]a-]$"), r"[\[\]a\-](?m:$)");
        assert_eq!(tr(r"\<x\>\Z"), r"<x>\z");
        assert_eq!(tr(r"(?#c)(?i)(?P<n>.)x"), r"(?i)(?P<n>.)x");
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

#[cfg(test)]
mod flag_tests {
    use super::Rx;

    /// The whole match Python's `re.search` finds (after fail2ban's `R_GLOB2LOCFLAGS`
    /// rewrite), computed with CPython 3.11's `re`.
    fn found(pattern: &str, text: &str) -> Option<String> {
        let rx = Rx::new(pattern, false).unwrap_or_else(|e| panic!("{pattern}: {e}"));
        let spans = rx.search(text)?;
        spans.get(0).map(|(s, e)| text[s..e].to_owned())
    }

    #[test]
    fn the_ascii_flag_matches_like_python() {
        for (pattern, text, python) in [
            (r"(?a)^\w+", "héllo", Some("h")),
            (r"^\w+", "héllo", Some("héllo")),
            (r"(?a)\W+", "aé ²b", Some("é ²")),
            (r"(?a)\d+", "٣42", Some("42")),
            (r"^\d+", "٣42", Some("٣42")),
            ("(?a)\\s+\\S", "\u{a0} \tx", Some(" \tx")),
            (r"(?a)\bwörld\b", "hello wörld", Some("wörld")),
            (r"(?a)ö\b", "wö", None),
            (r"(?a)x\B", "xé", None),
            (r"x\B", "xé", Some("x")),
            (r"(?a)[\w.]+", "ab.é", Some("ab.")),
            (r"(?a)[^\w]+", "abé²c", Some("é²")),
            (r"(?a:\w+)\w", "abcé", Some("abcé")),
            (r"((?a)\w+)\w*", "éabé", Some("abé")),
            (r"(?:(?a)\w+|é)", "éab", Some("é")),
            (r"(?a)\w+(?u:\w+)", "abéc", Some("abéc")),
            ("\\s+", "a\u{1c}\u{1f} b", Some("\u{1c}\u{1f} ")),
            ("[\\s]+", "a\u{1c}\u{1f} b", Some("\u{1c}\u{1f} ")),
            ("\\S+", "\u{1d}ab\u{2003}", Some("ab")),
            ("(?a)\\s+", "a\u{1c} \u{a0}b", Some(" ")),
        ] {
            assert_eq!(found(pattern, text).as_deref(), python, "{pattern} on {text:?}");
        }
    }

    #[test]
    fn the_ascii_flag_works_on_the_backtracking_engine() {
        // A look-ahead sends the pattern to fancy-regex.
        let rx = Rx::new(r"(?a)\b\w+(?=!)", false).unwrap();
        assert!(!rx.fancy_features().is_empty());
        let text = "héllo wörld!";
        let (s, e) = rx.search(text).unwrap().get(0).unwrap();
        assert_eq!(&text[s..e], "rld");
    }

    #[test]
    fn ascii_case_folding_matches_like_python() {
        for (pattern, text, python) in [
            ("(?ai)é", "É", None),
            ("(?ai)k", "K", Some("K")),
            ("(?ai)k", "\u{212a}", None),
            ("(?i)k", "\u{212a}", Some("\u{212a}")),
            ("(?ai)[a-z]+", "AbZ\u{212a}", Some("AbZ")),
            ("(?ai)[^a-z]+", "1A\u{212a}2", Some("1")),
            ("(?ai)[k-m]", "\u{212a}", None),
            ("(?ai)\\x6b", "K", Some("K")),
            ("(?ai)[é]", "É", None),
            ("(?ai)[^é]", "É", Some("É")),
            ("(?ai)s", "\u{17f}", None),
            ("(?i)s", "\u{17f}", Some("\u{17f}")),
            ("(?ai)[S]", "s", Some("s")),
            ("(?ai)[\\w]", "\u{212a}", None),
            ("(?a)(?i:k)K", "kK", Some("kK")),
            ("(?ai)x(?-i:k)", "Xk", Some("Xk")),
        ] {
            assert_eq!(found(pattern, text).as_deref(), python, "{pattern} on {text:?}");
        }
    }

    #[test]
    fn verbose_patterns_drop_whitespace_and_comments() {
        for (pattern, text, python) in [
            ("(?x) a b # comment", "ab", Some("ab")),
            ("(?x)[ ]a", " a", Some(" a")),
            (r"(?x) a\ b", "a b", Some("a b")),
            ("(?x) a # c\n b", "ab", Some("ab")),
        ] {
            assert_eq!(found(pattern, text).as_deref(), python, "{pattern:?} on {text:?}");
        }
    }

    #[test]
    fn inline_flags_are_refused_where_python_refuses_them() {
        for bad in [
            r"a(?i)",
            r"(a)(?i)",
            r"x|(?i)a",
            r"(?P<n>(?i)a)",
            r"(?-a:\w)",
            r"(?au)a",
            r"(?-x)a",
            r"(?L)a",
        ] {
            assert!(Rx::new(bad, false).is_err(), "{bad}");
        }
        for good in [r"(?i)(?s)a", r"(?i)a", r"((?i)a)", r"(?a:\w)", r"(?x) a # c"] {
            assert!(Rx::new(good, false).is_ok(), "{good}");
        }
        // `((?i)a)` becomes `(?i:a)`: the group no longer captures (fail2ban's rewrite).
        let rx = Rx::new(r"((?i)a)(b)\1", false).unwrap();
        assert!(rx.search("Abb").is_some());
    }
}
