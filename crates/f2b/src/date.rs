//! fail2ban's date detection: `datepattern` templates, the default template list, and the
//! strptime-like conversion of the matched fields into an instant.
//!
//! A template is a regex built from a strptime-style pattern (`%b %d %H:%M:%S`, with fail2ban's
//! extensions `%ExY`, `%Exm`, `%k`, `%z`, …), wrapped in word or line boundaries; group 1 is the
//! timestamp text, which fail2ban cuts out of the line before the failregexes see it. The
//! detector tries the template that matched last, then searches the list (preferring the match
//! closest to the line start) and moves successful templates up, as fail2ban's `DateDetector`
//! does. Year-less timestamps are completed from the frozen "now"; zone-less ones are read in the
//! configured zone.

use chrono::{Datelike, NaiveDate, NaiveDateTime, TimeZone};
use chrono_tz::Tz;

use crate::pyre::{Rx, translate};

const LINE_BEGIN: u8 = 8;
const LINE_END: u8 = 4;
const WORD_BEGIN: u8 = 2;
const WORD_END: u8 = 1;

/// Placeholders for fail2ban's boundary look-aheads, which have linear-time equivalents.
const BOUND_BEG: char = '\u{E000}';
const BOUND_END: char = '\u{E001}';
const HALF_BOUNDS: &str = r"(?:\b{start-half}|\b{end-half})";

/// fail2ban's default templates (`DateDetectorCache.DEFAULT_TEMPLATES`).
const DEFAULT_TEMPLATES: &[&str] = &[
    r"%ExY(?P<_sep>[-/.])%m(?P=_sep)%d(?:T|  ?)%H:%M:%S(?:[.,]%f)?(?:\s*%z)?",
    r"(?:%a )?%b %d %k:%M:%S(?:\.%f)?(?: %ExY)?",
    r"(?:%a )?%b %d %ExY %k:%M:%S(?:\.%f)?",
    r"%d(?P<_sep>[-/])%m(?P=_sep)(?:%ExY|%Exy) %k:%M:%S",
    r"%d(?P<_sep>[-/])%b(?P=_sep)%ExY[ :]?%H:%M:%S(?:\.%f)?(?: %z)?",
    r"%m/%d/%ExY:%H:%M:%S",
    r"%m-%d-%ExY %k:%M:%S(?:\.%f)?",
    r"EPOCH",
    r"{^LN-BEG}%H:%M:%S",
    r"^<%m/%d/%Exy@%H:%M:%S>",
    r"%Exy%Exm%Exd  ?%H:%M:%S",
    r"%b %d, %ExY %I:%M:%S %p",
    r"^%b-%d-%Exy %k:%M:%S",
    r"%ExY%Exm%Exd(?:T|  ?)%ExH%ExM%ExS(?:[.,]%f)?(?:\s*%z)?",
    r"(?:%Z )?(?:%a )?%b %d %k:%M:%S(?:\.%f)?(?: %ExY)?",
    r"(?:%z )?(?:%a )?%b %d %k:%M:%S(?:\.%f)?(?: %ExY)?",
    r"TAI64N",
];

const MONTHS: [&str; 12] =
    ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
const MONTHS_FULL: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

/// The clock and zone a detector completes timestamps with.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    /// "Now" as seconds since the epoch (fail2ban's `MyTime`).
    pub now: f64,
    /// The zone of timestamps without an offset (the process's `TZ` in fail2ban).
    pub zone: Tz,
    /// The current calendar year, for the `%ExY` century pattern (fail2ban uses the real clock).
    pub real_year: i32,
}

/// The regex of one strptime directive (`timeRE`), or `None` if unknown.
fn directive(key: &str, real_year: i32) -> Option<String> {
    let seq = |name: &str, words: &[&str]| {
        let mut w: Vec<&str> = words.to_vec();
        w.sort_by_key(|s| std::cmp::Reverse(s.len()));
        format!("(?P<{name}>{})", w.join("|"))
    };
    Some(match key {
        "%" => "%".into(),
        "a" => seq("a", &["mon", "tue", "wed", "thu", "fri", "sat", "sun"]),
        "A" => seq(
            "A",
            &["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"],
        ),
        "b" => seq("b", &MONTHS),
        "B" => seq("B", &MONTHS_FULL),
        "p" => seq("p", &["am", "pm"]),
        "f" => r"(?P<f>[0-9]{1,6})".into(),
        "I" => r"(?P<I>1[0-2]|0[1-9]|[1-9])".into(),
        "j" => r"(?P<j>36[0-6]|3[0-5]\d|[12]\d\d|0[1-9]\d|00[1-9]|[1-9]\d|0[1-9]|[1-9])".into(),
        "U" => r"(?P<U>5[0-3]|[0-4]\d|\d)".into(),
        "W" => r"(?P<W>5[0-3]|[0-4]\d|\d)".into(),
        "w" => r"(?P<w>[0-6])".into(),
        "y" | "Exy" => r"(?P<y>\d{2})".into(),
        "k" => r" ?(?P<H>[0-2]?\d)".into(),
        "l" => r" ?(?P<I>1?\d)".into(),
        "Z" => r"(?P<Z>Z|[A-Z]{3,5})".into(),
        "z" => r"(?P<z>Z|UTC|GMT|[+-][01]\d(?::?\d{2})?)".into(),
        "ExZ" => r"(?P<Z>[A-Z](?:[A-Z]{2,4})?)".into(),
        "Exz" => {
            r"(?P<z>(?:[A-Z](?:[A-Z]{2,4})?)?[+-][01]\d(?::?\d{2})?|[A-Z](?:[A-Z]{2,4})?)".into()
        }
        "d" => r"(?P<d>[1-2]\d|[0 ]?[1-9]|3[0-1])".into(),
        "m" => r"(?P<m>0?[1-9]|1[0-2])".into(),
        "Y" => r"(?P<Y>\d{4})".into(),
        "H" => r"(?P<H>[0-1]?\d|2[0-3])".into(),
        "M" => r"(?P<M>[0-5]?\d)".into(),
        "S" => r"(?P<S>[0-5]?\d|6[0-1])".into(),
        "Exd" => r"(?P<d>[1-2]\d|0[1-9]|3[0-1])".into(),
        "Exm" => r"(?P<m>0[1-9]|1[0-2])".into(),
        "ExH" => r"(?P<H>[0-1]\d|2[0-3])".into(),
        "Exk" => r" ?(?P<H>[0-1]?\d|2[0-3])".into(),
        "Exl" => r" ?(?P<I>1[0-2]|\d)".into(),
        "ExM" => r"(?P<M>[0-5]\d)".into(),
        "ExS" => r"(?P<S>[0-5]\d|6[0-1])".into(),
        "ExY" => {
            // Centuries of last year, the next three years, and 2000 up to now (step 3).
            let mut cents: Vec<i32> = (2000..=real_year).step_by(3).map(|y| y / 10).collect();
            cents.push((real_year - 1) / 10);
            cents.push((real_year + 3) / 10);
            cents.sort_unstable();
            cents.dedup();
            let alts: Vec<String> = cents.iter().map(i32::to_string).collect();
            format!(r"(?P<Y>(?:{})\d)", alts.join("|"))
        }
        _ => return None,
    })
}

/// Replaces the `%` directives of a date pattern with their regexes.
fn expand_directives(pattern: &str, real_year: i32) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = pattern;
    while let Some(p) = rest.find('%') {
        out.push_str(&rest[..p]);
        let after = &rest[p + 1..];
        let key = if after.len() >= 3 && after.starts_with("Ex") && after.is_char_boundary(3) {
            let k = &after[..3];
            if directive(k, real_year).is_some() { Some(k) } else { None }
        } else {
            None
        };
        let key = key.or_else(|| {
            after.chars().next().and_then(|c| {
                let k = &after[..c.len_utf8()];
                directive(k, real_year).map(|_| k)
            })
        });
        let Some(key) = key else {
            return Err(format!(
                "failed to set datepattern {pattern:?} (invalid format or unescaped percent char)"
            ));
        };
        out.push_str(&directive(key, real_year).unwrap_or_default());
        rest = &after[key.len()..];
    }
    out.push_str(rest);
    Ok(out)
}

/// What a template extracts.
#[derive(Debug, Clone)]
enum Kind {
    Pattern,
    Epoch { long: bool, group: usize },
    Tai64n,
}

/// One date template.
#[derive(Debug, Clone)]
pub(crate) struct Template {
    pub(crate) name: String,
    rx: Rx,
    flags: u8,
    weight: f64,
    kind: Kind,
}

/// How a template's regex is bounded at its start.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Begin {
    None,
    Word,
    Line,
}

fn starts_line_bound(regex: &str) -> bool {
    let mut r = regex;
    if let Some(rest) = strip_flag_group(r) {
        r = rest;
    }
    if r.starts_with('^') {
        return true;
    }
    for p in ["(^", "(?:^"] {
        if let Some(rest) = r.strip_prefix(p) {
            return !rest.starts_with('|');
        }
    }
    false
}

/// Strips a leading `(?\w+)`.
fn strip_flag_group(r: &str) -> Option<&str> {
    let rest = r.strip_prefix("(?")?;
    let end = rest.find(')')?;
    let word = &rest[..end];
    (!word.is_empty() && word.chars().all(|c| c.is_alphanumeric() || c == '_'))
        .then(|| &rest[end + 1..])
}

fn no_word_bound_begin(regex: &str) -> bool {
    // ^\(*(?:\(\?\w+\))?(?:\^|\(*\*\*|\((?:\?:)?\^)
    let mut r = regex.trim_start_matches('(');
    // The leading parens may have eaten the `(` of a flag group; retry from the original.
    if let Some(rest) = strip_flag_group(r) {
        r = rest;
    } else if let Some(pos) = regex.find("(?")
        && regex[..pos].chars().all(|c| c == '(')
        && let Some(rest) = strip_flag_group(&regex[pos..])
    {
        r = rest;
    }
    r.starts_with('^')
        || r.trim_start_matches('(').starts_with("**")
        || r.starts_with("(^")
        || r.starts_with("(?:^")
}

fn preceded_by_backslash(s: &str, idx: usize) -> bool {
    s[..idx].ends_with('\\')
}

fn no_word_bound_end(regex: &str) -> bool {
    // (?<!\\)(?:\$\)?|\\b|\\s|\*\*\)*)$
    for suffix in ["$)", "$", "\\b", "\\s"] {
        if let Some(stripped) = regex.strip_suffix(suffix)
            && !preceded_by_backslash(regex, stripped.len())
        {
            return true;
        }
    }
    let t = regex.trim_end_matches(')');
    if let Some(stripped) = t.strip_suffix("**") {
        return !preceded_by_backslash(regex, stripped.len());
    }
    false
}

fn ends_line_bound(regex: &str) -> bool {
    for suffix in ["$)", "$"] {
        if let Some(stripped) = regex.strip_suffix(suffix) {
            return !(stripped.ends_with('\\') || stripped.ends_with('|'));
        }
    }
    false
}

/// `RE_GROUPED`: a capturing `(` (not escaped, not `(?`, not right after `(?`).
fn has_group(regex: &str) -> bool {
    let b = regex.as_bytes();
    (0..b.len()).any(|i| {
        b[i] == b'('
            && (i == 0 || b[i - 1] != b'\\')
            && !(i >= 2 && &b[i - 2..i] == b"(?")
            && b.get(i + 1) != Some(&b'?')
    })
}

/// `RE_GROUP`: wraps the regex (between optional flags/`^` and a final `$`) into group 1.
fn wrap_group(regex: &str) -> String {
    let mut head = String::new();
    let mut r = regex;
    if let Some(rest) = strip_flag_group(r) {
        head.push_str(&r[..r.len() - rest.len()]);
        r = rest;
    }
    if let Some(rest) = r.strip_prefix('^') {
        head.push('^');
        r = rest;
    }
    if let Some(rest) = strip_flag_group(r) {
        head.push_str(&r[..r.len() - rest.len()]);
        r = rest;
    }
    let (body, tail) = match r.strip_suffix('$') {
        Some(b) => (b, "$"),
        None => (r, ""),
    };
    format!("{head}({body}){tail}")
}

/// `RE_DEL_WRD_BOUNDS`: removes the `**` markers.
fn del_word_bounds(regex: &str) -> String {
    let mut r = regex.to_owned();
    // Leading: ^\(*(?:\(\?\w+\))?\(*\*\*
    let lead = r.len() - r.trim_start_matches('(').len();
    let mut pos = lead;
    if let Some(rest) = strip_flag_group(&r[pos..]) {
        pos = r.len() - rest.len();
    }
    pos += r[pos..].len() - r[pos..].trim_start_matches('(').len();
    if r[pos..].starts_with("**") {
        r.replace_range(pos..pos + 2, "");
    }
    let t = r.trim_end_matches(')').len();
    if r[..t].ends_with("**") && !r[..t - 2].ends_with('\\') {
        r.replace_range(t - 2..t, "");
    }
    r
}

impl Template {
    /// `DateTemplate.setRegex`: bounds, group 1, flags; then compiles.
    fn build(
        name: String,
        regex: &str,
        begin: Begin,
        word_end: bool,
        kind: Kind,
    ) -> Result<Template, String> {
        let mut regex = regex.trim().to_owned();
        let mut name = name;
        // Cut the first global flag group, restore it in front at the end.
        let mut global = String::new();
        if let Some(pos) = find_global_flags(&regex) {
            let end = pos + regex[pos..].find(')').map_or(0, |e| e + 1);
            global = regex[pos..end].to_owned();
            regex.replace_range(pos..end, "");
        }
        let bound_begin = begin != Begin::None && !no_word_bound_begin(&regex);
        let bound_end = word_end && !no_word_bound_end(&regex);
        if !has_group(&regex) {
            regex = wrap_group(&regex);
        }
        let mut flags = 0;
        if bound_begin {
            if begin == Begin::Line {
                flags |= LINE_BEGIN;
                regex = format!(r"^(?:\W{{0,2}})?{regex}");
                if !name.starts_with("{^LN-BEG}") {
                    name = format!("{{^LN-BEG}}{name}");
                }
            } else {
                flags |= WORD_BEGIN;
                regex = format!("{BOUND_BEG}{regex}");
            }
        }
        if bound_end {
            flags |= WORD_END;
            regex.push(BOUND_END);
        }
        if flags & LINE_BEGIN == 0 && starts_line_bound(&regex) {
            flags |= LINE_BEGIN;
        }
        if flags & LINE_END == 0 && ends_line_bound(&regex.replace(BOUND_END, "")) {
            flags |= LINE_END;
        }
        let regex = format!("{global}{}", del_word_bounds(&regex));
        let mut t = translate(&regex, false)?;
        t.pattern = t.pattern.replace([BOUND_BEG, BOUND_END], HALF_BOUNDS);
        let rx = Rx::from_translated(&t)?;
        Ok(Template { name, rx, flags, weight: 1.0, kind })
    }

    /// A `DatePatternRegex` from a strptime-style pattern (with `{UNB}` / `{^LN-BEG}` prefixes).
    fn from_pattern(pattern: &str, real_year: i32) -> Result<Template, String> {
        let mut p = pattern;
        let mut begin = Begin::Word;
        let mut word_end = true;
        if let Some(rest) = p.strip_prefix("{UNB}") {
            p = rest;
            begin = Begin::None;
            word_end = false;
        }
        if begin != Begin::None
            && let Some(rest) = p.strip_prefix("{^LN-BEG}")
        {
            p = rest;
            begin = Begin::Line;
        }
        let mut regex = expand_directives(p, real_year)?;
        if has_alpha_directive(p) {
            regex = format!("(?iu){regex}");
        }
        Template::build(p.to_owned(), &regex, begin, word_end, Kind::Pattern)
    }

    fn epoch(line_begin_only: bool, long: bool, pattern: Option<&str>) -> Result<Template, String> {
        let epoch = if long {
            r"\d{10,11}(?:\d{3}(?:\.\d{1,6}|\d{3})?)?"
        } else {
            r"\d{10,11}\b(?:\.\d{3,6})?"
        };
        let name = match (pattern, long) {
            (Some(p), _) => p.to_owned(),
            (None, true) => "LongEpoch".to_owned(),
            (None, false) => "Epoch".to_owned(),
        };
        if let Some(p) = pattern {
            let inner = replace_epoch_placeholder(p, epoch);
            return Template::build(
                name,
                &format!("({inner})"),
                Begin::Word,
                true,
                Kind::Epoch { long, group: 2 },
            );
        }
        if !line_begin_only {
            let regex = format!(
                r"((?:^|(?P<square>(?<=^\[))|(?P<selinux>(?<=\baudit\()))
{epoch})(?:(?(selinux)(?=:\d+\)))|(?(square)(?=\])))"
            )
            .replace('\n', "");
            Template::build(name, &regex, Begin::None, true, Kind::Epoch { long, group: 1 })
        } else {
            let regex = format!(r"((?P<square>(?<=^\[))?{epoch})(?(square)(?=\]))");
            Template::build(name, &regex, Begin::Line, true, Kind::Epoch { long, group: 1 })
        }
    }

    fn tai64n(line_begin: bool) -> Result<Template, String> {
        let begin = if line_begin { Begin::Line } else { Begin::None };
        Template::build("TAI64N".into(), "@[0-9a-f]{24}", begin, true, Kind::Tai64n)
    }

    /// `_getPatternTemplate`: keywords (EPOCH, LEPOCH, TAI64N) or a pattern.
    fn from_key(pattern: &str, real_year: i32) -> Result<Template, String> {
        let key = if pattern.contains('%') { pattern.to_owned() } else { pattern.to_uppercase() };
        if key.contains("EPOCH") {
            if has_epoch_placeholder(pattern) {
                return Template::epoch(false, key.contains("LEPOCH"), Some(pattern));
            }
            match key.as_str() {
                "EPOCH" => return Template::epoch(false, false, None),
                "{^LN-BEG}EPOCH" | "^EPOCH" => return Template::epoch(true, false, None),
                "LEPOCH" => return Template::epoch(false, true, None),
                "{^LN-BEG}LEPOCH" | "^LEPOCH" => return Template::epoch(true, true, None),
                _ => {}
            }
        }
        match key.as_str() {
            "TAI64N" => Template::tai64n(false),
            "{^LN-BEG}TAI64N" | "^TAI64N" => Template::tai64n(true),
            _ => Template::from_pattern(pattern, real_year),
        }
    }

    /// The unbounded pattern text this template was made from (`unboundPattern`).
    fn source_pattern(source: &str) -> String {
        let mut p = source;
        p = p.strip_prefix("{UNB}").unwrap_or(p);
        p = p.strip_prefix("{^LN-BEG}").unwrap_or(p);
        for b in ["(?:^|\\b|\\W)", "(^|\\b|\\W)"] {
            p = p.strip_prefix(b).unwrap_or(p);
        }
        p.strip_suffix("(?=\\b|\\W|$)").unwrap_or(p).to_owned()
    }
}

fn find_global_flags(regex: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(p) = regex[from..].find("(?") {
        let at = from + p;
        let rest = &regex[at + 2..];
        let letters = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_lowercase()).len();
        if letters > 0 && rest[letters..].starts_with(')') {
            return Some(at);
        }
        from = at + 2;
    }
    None
}

fn has_alpha_directive(pattern: &str) -> bool {
    let b = pattern.as_bytes();
    (0..b.len().saturating_sub(1))
        .any(|i| b[i] == b'%' && (i == 0 || b[i - 1] != b'%') && b"aAbBpc".contains(&b[i + 1]))
}

fn has_epoch_placeholder(pattern: &str) -> bool {
    let up = pattern.to_uppercase();
    ["{EPOCH}", "{LEPOCH}"]
        .iter()
        .any(|p| up.match_indices(p).any(|(i, _)| i == 0 || !up[..i].ends_with('\\')))
}

fn replace_epoch_placeholder(pattern: &str, epoch: &str) -> String {
    let up = pattern.to_uppercase();
    let mut out = String::new();
    let mut i = 0;
    while i < pattern.len() {
        let rest = &up[i..];
        let hit = ["{LEPOCH}", "{EPOCH}"].into_iter().find(|p| rest.starts_with(p));
        match hit {
            Some(p) if !pattern[..i].ends_with('\\') => {
                out.push_str(&format!("({epoch})"));
                i += p.len();
            }
            _ => {
                let c = pattern[i..].chars().next().unwrap_or(' ');
                out.push(c);
                i += c.len_utf8();
            }
        }
    }
    out
}

/// The default templates in fail2ban's order, with the line-anchored copies (weight 100) first.
/// Built once per process (and year) and copied into each detector.
fn default_cache(real_year: i32) -> Result<Vec<Template>, String> {
    static CACHE: std::sync::Mutex<Vec<(i32, Vec<Template>)>> = std::sync::Mutex::new(Vec::new());
    let mut cache = CACHE.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((_, t)) = cache.iter().find(|(y, _)| *y == real_year) {
        return Ok(t.clone());
    }
    let built = build_default_cache(real_year)?;
    cache.push((real_year, built.clone()));
    Ok(built)
}

fn build_default_cache(real_year: i32) -> Result<Vec<Template>, String> {
    let base: Vec<(String, Template)> = DEFAULT_TEMPLATES
        .iter()
        .map(|p| Ok(((*p).to_owned(), Template::from_key(p, real_year)?)))
        .collect::<Result<_, String>>()?;
    let mut anchored = Vec::new();
    for (pattern, t) in &base {
        if t.name.starts_with("{^LN-BEG}") || t.name.starts_with('^') {
            continue;
        }
        let a = match t.kind {
            Kind::Pattern => Template::from_key(&format!("{{^LN-BEG}}{pattern}"), real_year)?,
            Kind::Epoch { long, .. } => Template::epoch(true, long, None)?,
            Kind::Tai64n => Template::tai64n(true)?,
        };
        if a.name != t.name {
            anchored.push(Template { weight: 100.0, ..a });
        }
    }
    anchored.extend(base.into_iter().map(|(_, t)| t));
    Ok(anchored)
}

/// A template in a detector, with fail2ban's usage statistics.
#[derive(Debug, Clone)]
struct Slot {
    t: Template,
    /// The template's position when the detector was built (slots move up as they are used).
    id: usize,
    hits: u64,
    last_used: f64,
    distance: usize,
    /// `template.hits`: successful regex searches, chosen or not.
    regex_hits: u64,
}

impl Slot {
    fn weight(&self) -> f64 {
        self.hits as f64 * self.t.weight / (self.distance.max(1) as f64)
    }
}

/// A timestamp found in a line.
#[derive(Debug, Clone)]
pub(crate) struct DateMatch {
    /// Byte span of the timestamp text (group 1).
    pub(crate) span: (usize, usize),
    /// The instant, or `None` when the fields do not make a valid date.
    pub(crate) time: Option<f64>,
}

/// A template's last match: which template, where, the characters around it, its text, its
/// groups and (once computed, with the clock it was computed with) its time.
#[derive(Debug, Clone)]
struct Memo {
    id: usize,
    start: usize,
    before: Option<char>,
    after: Option<char>,
    text: String,
    spans: crate::pyre::Spans,
    time: Option<((u64, Tz, i32), Option<f64>)>,
}

/// What the first step of [`DateDetector::find`] reads: the template that matched last (its
/// id) and the place and neighbouring characters of its match's start and end.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct FastKey {
    id: usize,
    pos: (usize, Option<char>, Option<char>),
    end: (usize, Option<char>, Option<char>),
}

/// A line's match decided by the first step of [`DateDetector::find`], made in one detector and
/// replayable in another ([`DateDetector::replay`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct FastStep {
    /// The state the step started from.
    before: FastKey,
    /// The match's start and end after the step.
    pos: (usize, Option<char>, Option<char>),
    end: (usize, Option<char>, Option<char>),
    /// Byte span of the timestamp text.
    pub(crate) span: (usize, usize),
    /// The instant.
    pub(crate) time: Option<f64>,
}

/// fail2ban's `DateDetector`.
#[derive(Debug, Clone)]
pub struct DateDetector {
    slots: Vec<Slot>,
    /// The last match a template found, with its groups and time.
    memo: Option<Memo>,
    last_pos: (usize, Option<char>, Option<char>),
    last_end: (usize, Option<char>, Option<char>),
    last_idx: usize,
    first_unused: usize,
    tick: f64,
    /// `logtimezone`: minutes east of UTC of timestamps without a zone (`None`: the clock's).
    default_offset: Option<i64>,
}

impl DateDetector {
    /// A detector for a filter's `datepattern` (one pattern per line), or fail2ban's default
    /// templates when `None`.
    pub fn new(datepattern: Option<&str>, real_year: i32) -> Result<DateDetector, String> {
        let mut templates: Vec<Template> = Vec::new();
        let mut names = std::collections::HashSet::new();
        let mut push = |t: Template, ignore_dup: bool, templates: &mut Vec<Template>| {
            if names.contains(&t.name) {
                if ignore_dup {
                    return Ok(());
                }
                return Err(format!("there is already a template with name {}", t.name));
            }
            names.insert(t.name.clone());
            templates.push(t);
            Ok::<(), String>(())
        };
        let patterns: Vec<&str> = match datepattern {
            None => vec!["{DEFAULT}"],
            Some(p) => p.split('\n').map(str::trim).filter(|s| !s.is_empty()).collect(),
        };
        for pattern in patterns {
            let key =
                if pattern.contains('%') { pattern.to_owned() } else { pattern.to_uppercase() };
            let ignore_dup = !templates.is_empty();
            if key == "{^LN-BEG}" || key == "{DEFAULT}" {
                for t in default_cache(real_year)? {
                    if key == "{^LN-BEG}" && t.flags & LINE_BEGIN == 0 {
                        continue;
                    }
                    push(t, ignore_dup, &mut templates)?;
                }
            } else if key.contains("{DATE}") {
                for base in DEFAULT_TEMPLATES {
                    let base_t = Template::from_key(base, real_year)?;
                    let unbound = match base_t.kind {
                        Kind::Pattern => Template::source_pattern(base),
                        // fail2ban substitutes the template's name here (see _getAnchoredTemplate).
                        _ => base_t.name.clone(),
                    };
                    let wrapped = replace_date_placeholder(pattern, &unbound);
                    let t = match base_t.kind {
                        Kind::Pattern => Template::from_key(&wrapped, real_year)?,
                        _ => Template::from_pattern(&wrapped, real_year)?,
                    };
                    push(t, ignore_dup, &mut templates)?;
                }
            } else if key == "{NONE}" {
                push(Template::from_pattern("{UNB}^", real_year)?, false, &mut templates)?;
            } else {
                push(Template::from_key(pattern, real_year)?, false, &mut templates)?;
            }
        }
        Ok(DateDetector {
            slots: templates
                .into_iter()
                .enumerate()
                .map(|(id, t)| Slot {
                    t,
                    id,
                    hits: 0,
                    last_used: 0.0,
                    distance: 0x7fff_ffff,
                    regex_hits: 0,
                })
                .collect(),
            memo: None,
            last_pos: (1, None, None),
            last_end: (0x7fff_ffff, None, None),
            last_idx: usize::MAX,
            first_unused: 0,
            tick: 1_000_000.0,
            default_offset: None,
        })
    }

    /// Number of templates.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether the detector has no template.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    fn match_slot(
        &mut self,
        i: usize,
        line: &str,
        range: Option<(usize, usize)>,
    ) -> Option<crate::pyre::Spans> {
        let slot = &mut self.slots[i];
        let (start, end) = match range {
            Some((s, e))
                if s <= e
                    && e <= line.len()
                    && line.is_char_boundary(s)
                    && line.is_char_boundary(e) =>
            {
                (s, e)
            }
            _ => (0, line.len()),
        };
        // The same match text at the same place, with the same characters around it, gets the
        // same groups: the last one is kept so that lines with the same timestamp as the line
        // before skip the capture engine and the date conversion.
        let mut memo_key = None;
        let mut known = None;
        if let Some(found) = slot.t.rx.find_in(line, start, end) {
            let (ms, me) = found?;
            known = Some((ms, me));
            let hay = &line[..end];
            let key = (slot.id, ms, char_before(hay, ms), char_at(hay, me));
            if let Some(memo) = &self.memo
                && (memo.id, memo.start, memo.before, memo.after) == key
                && memo.text == hay[ms..me]
            {
                slot.regex_hits += 1;
                return Some(memo.spans.clone());
            }
            memo_key = Some(key);
        }
        let m = match known {
            Some(found) => slot.t.rx.search_found(line, start, end, found),
            None => slot.t.rx.search_in(line, start, end),
        };
        if m.is_some() {
            slot.regex_hits += 1;
        }
        let stored = self.memo.take();
        if let Some(spans) = &m
            && let (Some((id, ms, before, after)), Some((s0, e0))) = (memo_key, spans.get(0))
            && s0 == ms
        {
            let mut text = stored.map(|m| m.text).unwrap_or_default();
            text.clear();
            text.push_str(&line[s0..e0]);
            let spans = spans.clone();
            self.memo = Some(Memo { id, start: ms, before, after, text, spans, time: None });
        }
        m
    }

    /// [`template_time`], from the memo when the match is the memo's.
    fn time_of(
        &mut self,
        i: usize,
        m: &crate::pyre::Spans,
        line: &str,
        clock: &Clock,
    ) -> Option<f64> {
        let slot = &self.slots[i];
        let tz = self.default_offset;
        let memo = self.memo.as_mut().filter(|memo| {
            memo.id == slot.id
                && m.get(0)
                    .is_some_and(|(s, e)| s == memo.start && line.get(s..e) == Some(&memo.text))
        });
        let clock_key = (clock.now.to_bits(), clock.zone, clock.real_year);
        match memo {
            Some(memo) => match memo.time {
                Some((k, t)) if k == clock_key => t,
                _ => {
                    let t = template_time(&slot.t, m, line, clock, tz);
                    memo.time = Some((clock_key, t));
                    t
                }
            },
            None => template_time(&slot.t, m, line, clock, tz),
        }
    }

    /// Reads timestamps without a zone at `minutes` east of UTC (fail2ban's `default_tz`).
    pub(crate) fn set_default_offset(&mut self, minutes: Option<i64>) {
        self.default_offset = minutes;
        self.memo = None;
    }

    /// `matchTime` + `getTime`: finds the timestamp in `line`.
    pub(crate) fn find(&mut self, line: &str, clock: &Clock) -> Option<DateMatch> {
        self.find_noting(line, clock).0
    }

    /// The part of the state the first step of [`DateDetector::find`] reads: the template that
    /// matched last (by its id) and where its match started and ended, with the characters
    /// around those places. `None` before the first match.
    fn fast_key(&self) -> Option<FastKey> {
        let slot = self.slots.get(self.last_idx)?;
        Some(FastKey { id: slot.id, pos: self.last_pos, end: self.last_end })
    }

    /// [`DateDetector::find`], also telling whether the template that matched last matched
    /// again at once (the first step), and then what [`DateDetector::replay`] needs to make the
    /// same change to another detector in the same [`FastKey`] state.
    pub(crate) fn find_noting(
        &mut self,
        line: &str,
        clock: &Clock,
    ) -> (Option<DateMatch>, Option<FastStep>) {
        let key = self.fast_key();
        let (found, fast) = self.find_inner(line, clock);
        let step = match (&found, key) {
            (Some(m), Some(before)) if fast => Some(FastStep {
                before,
                pos: self.last_pos,
                end: self.last_end,
                span: m.span,
                time: m.time,
            }),
            _ => None,
        };
        (found, step)
    }

    /// Makes the change [`DateDetector::find`] made in another detector (`step`, from
    /// [`DateDetector::find_noting`]) if this detector is in the same state for the first step
    /// (then `find` on the same line would take the same first step and return the same match);
    /// returns whether it did. Template order, counters and positions then evolve as if `find`
    /// had run; only the cache of the last match's groups (a speed-up) is not refreshed.
    pub(crate) fn replay(&mut self, step: &FastStep) -> bool {
        if self.fast_key() != Some(step.before) {
            return false;
        }
        self.tick += 1.0;
        let i = self.last_idx;
        let slot = &mut self.slots[i];
        slot.regex_hits += 1;
        slot.hits += 1;
        slot.last_used = self.tick;
        slot.distance = step.pos.0;
        if self.first_unused == i {
            self.first_unused += 1;
        }
        self.last_pos = step.pos;
        self.last_end = step.end;
        true
    }

    /// [`DateDetector::find`]; the flag tells whether the first step (the template that
    /// matched last, at the same place) decided the match.
    fn find_inner(&mut self, line: &str, clock: &Clock) -> (Option<DateMatch>, bool) {
        if self.slots.is_empty() {
            return (None, false);
        }
        self.tick += 1.0;
        let n = self.slots.len();
        let mut found: (Option<crate::pyre::Spans>, usize, usize, usize) =
            (None, usize::MAX, usize::MAX, 0);
        let mut ignore_by_search = usize::MAX;
        let mut matched: Option<(crate::pyre::Spans, usize)> = None;
        let mut fast = false;
        let i = self.last_idx;
        if i < n {
            let flags = self.slots[i].t.flags;
            let m = if flags & (LINE_BEGIN | LINE_END) != 0 {
                ignore_by_search = i;
                self.match_slot(i, line, None)
            } else {
                let (distance, endpos) = (self.last_pos.0, self.last_end.0);
                let before = char_before(line, distance);
                let at = char_at(line, distance);
                let end_at = char_at(line, endpos);
                let end_before = char_before(line, endpos);
                let ok_begin = before == self.last_pos.1
                    || (at == self.last_pos.2
                        && !self.last_pos.2.is_some_and(char::is_alphanumeric));
                let ok_end = end_at == self.last_end.2
                    || (end_before == self.last_end.1
                        && !self.last_end.1.is_some_and(char::is_alphanumeric));
                if ok_begin && ok_end && endpos <= line.len() {
                    self.match_slot(i, line, Some((distance, endpos)))
                } else {
                    ignore_by_search = i;
                    self.match_slot(i, line, None)
                }
            };
            if let Some(m) = m {
                let (distance, endpos) = m.get(0).unwrap_or((0, 0));
                if n == 1
                    || flags & (LINE_BEGIN | LINE_END) != 0
                    || (distance == self.last_pos.0 && endpos == self.last_end.0)
                {
                    matched = Some((m, i));
                    fast = true;
                } else {
                    found = (Some(m), distance, endpos, i);
                }
            }
        }
        if matched.is_none() {
            let mut i = 0;
            while i < n {
                if i == ignore_by_search {
                    i += 1;
                    continue;
                }
                if let Some(m) = self.match_slot(i, line, None) {
                    let (distance, endpos) = m.get(0).unwrap_or((0, 0));
                    let slot = &self.slots[i];
                    if i + 1 >= n || slot.t.flags & (LINE_BEGIN | LINE_END) != 0 {
                        matched = Some((m, i));
                        break;
                    }
                    if distance == 0 && slot.hits > 0 && self.slots[i + 1].regex_hits == 0 {
                        matched = Some((m, i));
                        break;
                    }
                    if distance > slot.distance || distance > self.last_pos.0 {
                        if distance < found.1 {
                            found = (Some(m), distance, endpos, i);
                        }
                        i += 1;
                        continue;
                    }
                    matched = Some((m, i));
                    break;
                }
                i += 1;
            }
            if matched.is_none()
                && let (Some(m), _, _, idx) = found
            {
                matched = Some((m, idx));
            }
        }
        let Some((m, mut i)) = matched else { return (None, false) };
        let (distance, endpos) = m.get(0).unwrap_or((0, 0));
        {
            let slot = &mut self.slots[i];
            slot.hits += 1;
            slot.last_used = self.tick;
            slot.distance = distance;
        }
        if self.first_unused == i {
            self.first_unused += 1;
        }
        self.last_pos = (distance, char_before(line, distance), char_at(line, distance));
        self.last_end = (endpos, char_before(line, endpos), char_at(line, endpos));
        if i != 0 && i != self.last_idx {
            i = self.reorder(i);
        }
        self.last_idx = i;
        let span = m.get(1).unwrap_or((0, 0));
        let time = self.time_of(i, &m, line, clock);
        (Some(DateMatch { span, time }), fast)
    }

    /// `_reorderTemplate`: moves a successful template up.
    fn reorder(&mut self, num: usize) -> usize {
        let untime = self.slots[num].last_used - 300.0;
        let weight = self.slots[num].weight();
        let mut pos = if self.first_unused < num { self.first_unused } else { num / 2 };
        let moveable = |slots: &[Slot], pos: usize| {
            weight > slots[pos].weight() || untime > slots[pos].last_used
        };
        if !moveable(&self.slots, pos) {
            if pos == num - 1 {
                return num;
            }
            pos = num - 1;
            if !moveable(&self.slots, pos) {
                return num;
            }
        }
        let slot = self.slots.remove(num);
        self.slots.insert(pos, slot);
        while self.first_unused < self.slots.len() && self.slots[self.first_unused].hits > 0 {
            self.first_unused += 1;
        }
        pos
    }
}

fn replace_date_placeholder(pattern: &str, with: &str) -> String {
    let up = pattern.to_uppercase();
    let mut out = String::new();
    let mut i = 0;
    while i < pattern.len() {
        if up[i..].starts_with("{DATE}") && !pattern[..i].ends_with('\\') {
            out.push_str(with);
            i += 6;
        } else {
            let c = pattern[i..].chars().next().unwrap_or(' ');
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

fn char_before(line: &str, pos: usize) -> Option<char> {
    line.get(..pos).and_then(|s| s.chars().next_back())
}

fn char_at(line: &str, pos: usize) -> Option<char> {
    line.get(pos..).and_then(|s| s.chars().next())
}

fn template_time(
    t: &Template,
    m: &crate::pyre::Spans,
    line: &str,
    clock: &Clock,
    tz: Option<i64>,
) -> Option<f64> {
    let text = |i: usize| m.get(i).map(|(s, e)| &line[s..e]);
    match t.kind {
        Kind::Epoch { long, group } => {
            let v = text(group)?;
            let mut f: f64 = v.parse().ok()?;
            if long && v.len() >= 13 {
                f = if v.len() >= 16 && !v.contains('.') { f / 1_000_000.0 } else { f / 1000.0 };
            }
            Some(f)
        }
        Kind::Tai64n => {
            let v = text(1)?;
            let hexpart = v.get(2..17)?;
            i64::from_str_radix(hexpart, 16).ok().map(|s| s as f64)
        }
        Kind::Pattern => {
            let mut fields = t.rx.names().iter().filter_map(|(n, i)| text(*i).map(|v| (&**n, v)));
            // Templates have a handful of fields: no allocation for them.
            let mut few = [("", ""); 16];
            let mut n = 0;
            for f in fields.by_ref().take(few.len()) {
                few[n] = f;
                n += 1;
            }
            let rest: Vec<(&str, &str)> = fields.collect();
            if rest.is_empty() {
                strptime(&few[..n], clock, tz)
            } else {
                strptime(&[&few[..n], &rest[..]].concat(), clock, tz)
            }
        }
    }
}

/// Time-zone abbreviations fail2ban knows (`TZ_STR`), in minutes east of UTC.
fn tz_abbr_offset(abbr: &str) -> Option<i64> {
    const TABLE: &[(f64, &str)] = &[
        (-12.0, "Y"),
        (-11.0, "X NUT SST"),
        (-10.0, "W CKT HAST HST TAHT TKT"),
        (-9.0, "V AKST GAMT GIT HADT HNY"),
        (-8.0, "U AKDT CIST HAY HNP PST PT"),
        (-7.0, "T HAP HNR MST PDT"),
        (-6.0, "S CST EAST GALT HAR HNC MDT"),
        (-5.0, "R CDT COT EASST ECT EST ET HAC HNE PET"),
        (-4.0, "Q AST BOT CLT COST EDT FKT GYT HAE HNA PYT"),
        (-3.0, "P ADT ART BRT CLST FKST GFT HAA PMST PYST SRT UYT WGT"),
        (-2.0, "O BRST FNT PMDT UYST WGST"),
        (-1.0, "N AZOT CVT EGT"),
        (0.0, "Z EGST GMT UTC WET WT"),
        (1.0, "A CET DFT WAT WEDT WEST"),
        (2.0, "B CAT CEDT CEST EET SAST WAST"),
        (3.0, "C EAT EEDT EEST IDT MSK"),
        (4.0, "D AMT AZT GET GST KUYT MSD MUT RET SAMT SCT"),
        (5.0, "E AMST AQTT AZST HMT MAWT MVT PKT TFT TJT TMT UZT YEKT"),
        (6.0, "F ALMT BIOT BTT IOT KGT NOVT OMST YEKST"),
        (7.0, "G CXT DAVT HOVT ICT KRAT NOVST OMSST THA WIB"),
        (8.0, "H ACT AWST BDT BNT CAST HKT IRKT KRAST MYT PHT SGT ULAT WITA WST"),
        (9.0, "I AWDT IRKST JST KST PWT TLT WDT WIT YAKT"),
        (10.0, "K AEST ChST PGT VLAT YAKST YAPT"),
        (11.0, "L AEDT LHDT MAGT NCT PONT SBT VLAST VUT"),
        (12.0, "M ANAST ANAT FJT GILT MAGST MHT NZST PETST PETT TVT WFT"),
        (13.0, "FJST NZDT"),
        (11.5, "NFT"),
        (10.5, "ACDT LHST"),
        (9.5, "ACST"),
        (6.5, "CCT MMT"),
        (5.75, "NPT"),
        (5.5, "SLT"),
        (4.5, "AFT IRDT"),
        (3.5, "IRST"),
        (-2.5, "HAT NDT"),
        (-3.5, "HNT NST NT"),
        (-4.5, "HLV VET"),
        (-9.5, "MART MIT"),
    ];
    if abbr.is_empty() {
        return Some(0);
    }
    TABLE
        .iter()
        .find(|(_, names)| names.split(' ').any(|n| n == abbr))
        .map(|(h, _)| (h * 60.0) as i64)
}

/// fail2ban's `validateTimeZone` for `logtimezone`: `UTC`, `UTC+0200`, `GMT-4`… → minutes east
/// of UTC. fail2ban accepts an optional known abbreviation followed by an optional offset
/// `[+-]HH`, `[+-]HHMM` or `[+-]HH:MM` (`HH` from 00 to 19), and only fixed offsets.
pub fn parse_log_timezone(tz: &str) -> Result<i64, String> {
    // `re.match(...$)` also accepts one final newline.
    let z = tz.strip_suffix('\n').unwrap_or(tz);
    zone_offset(z).ok_or_else(|| format!("unknown or unsupported time zone: {tz:?}"))
}

/// `validateTimeZone` + `zone2offset`: `CET+0100`, `-04:00`, `UTC`, … → minutes.
fn zone_offset(z: &str) -> Option<i64> {
    let abbr_len = z.len() - z.trim_start_matches(|c: char| c.is_ascii_uppercase()).len();
    let (abbr, off) = z.split_at(abbr_len);
    if !(abbr.is_empty() || (1..=5).contains(&abbr.len()) && abbr.len() != 2) {
        return None;
    }
    let base = tz_abbr_offset(abbr)?;
    if off.is_empty() {
        return Some(base);
    }
    let b = off.as_bytes();
    if !(b[0] == b'+' || b[0] == b'-') || off.len() < 3 {
        return None;
    }
    let sign = if b[0] == b'-' { -1 } else { 1 };
    let hh: i64 = off.get(1..3)?.parse().ok()?;
    if !matches!(b[1], b'0' | b'1') {
        return None;
    }
    let rest = &off[3..];
    if !off[1..3].bytes().all(|b| b.is_ascii_digit())
        || !rest.bytes().enumerate().all(|(i, b)| b.is_ascii_digit() || i == 0 && b == b':')
    {
        return None;
    }
    let mm: i64 = match rest.len() {
        0 => return Some(base + sign * hh * 60),
        2 => rest.parse().ok()?,
        3 if rest.starts_with(':') => rest[1..].parse().ok()?,
        _ => return None,
    };
    Some(base + sign * (hh * 60 + mm))
}

/// "Now" as local time in the clock's zone (cached: it is the same for every line of a run).
fn now_local(clock: &Clock) -> Option<NaiveDateTime> {
    thread_local! {
        static CACHE: std::cell::Cell<Option<(f64, Tz, NaiveDateTime)>> =
            const { std::cell::Cell::new(None) };
    }
    if let Some((now, zone, local)) = CACHE.get()
        && now.to_bits() == clock.now.to_bits()
        && zone == clock.zone
    {
        return Some(local);
    }
    let local = clock.zone.timestamp_opt(clock.now.floor() as i64, 0).single()?.naive_local();
    CACHE.set(Some((clock.now, clock.zone, local)));
    Some(local)
}

/// The position of a month name (compared lower-cased).
fn month_index(names: &[&str], val: &str) -> Option<u32> {
    let pos = if val.is_ascii() {
        names.iter().position(|m| m.eq_ignore_ascii_case(val))
    } else {
        let lower = val.to_lowercase();
        names.iter().position(|m| *m == lower)
    };
    pos.map(|p| p as u32)
}

/// [`local_to_epoch`] through a per-thread cache of the last hour seen: within an hour whose
/// UTC offset does not change, a time is the hour's start plus minutes and seconds.
fn local_to_epoch_cached(zone: Tz, date: NaiveDateTime) -> i64 {
    use chrono::Timelike;
    type HourKey = (Tz, NaiveDate, u32);
    thread_local! {
        static HOUR: std::cell::Cell<Option<(HourKey, Option<i64>)>> =
            const { std::cell::Cell::new(None) };
    }
    let key = (zone, date.date(), date.hour());
    let base = match HOUR.get() {
        Some((k, base)) if k == key => base,
        _ => {
            let start = date.date().and_hms_opt(date.hour(), 0, 0);
            let end = date.date().and_hms_opt(date.hour(), 59, 59);
            let single = |d: NaiveDateTime| zone.from_local_datetime(&d).single();
            let base = match (start.and_then(single), end.and_then(single)) {
                (Some(s), Some(e)) if e.timestamp() - s.timestamp() == 3599 => Some(s.timestamp()),
                _ => None,
            };
            HOUR.set(Some((key, base)));
            base
        }
    };
    match base {
        Some(b) => b + i64::from(date.minute()) * 60 + i64::from(date.second()),
        None => local_to_epoch(zone, date),
    }
}

/// fail2ban's `reGroupDictStrptime`.
fn strptime(fields: &[(&str, &str)], clock: &Clock, default_tz: Option<i64>) -> Option<f64> {
    let mut year: Option<i32> = None;
    let mut month: Option<u32> = None;
    let mut day: Option<u32> = None;
    let (mut hour, mut minute, mut second) = (0u32, 0u32, 0u32);
    let mut tzoffset: Option<i64> = None;
    let mut julian: Option<u32> = None;
    let get = |k: &str| fields.iter().find(|(n, _)| *n == k).map(|(_, v)| *v);
    for (key, val) in fields {
        match *key {
            "y" => {
                let mut y: i32 = val.parse().ok()?;
                if y <= 2000 {
                    y += 2000;
                }
                year = Some(y);
            }
            "Y" => year = Some(val.parse().ok()?),
            "m" => month = Some(val.trim().parse().ok()?),
            "B" => month = Some(month_index(&MONTHS_FULL, val)? + 1),
            "b" => month = Some(month_index(&MONTHS, val)? + 1),
            "d" => day = Some(val.trim().parse().ok()?),
            "H" => hour = val.trim().parse().ok()?,
            "I" => {
                hour = val.trim().parse().ok()?;
                let ampm = get("p").unwrap_or("").to_lowercase();
                if ampm.is_empty() || ampm == "am" {
                    if hour == 12 {
                        hour = 0;
                    }
                } else if ampm == "pm" && hour != 12 {
                    hour += 12;
                }
            }
            "M" => minute = val.parse().ok()?,
            "S" => second = val.parse().ok()?,
            "j" => julian = Some(val.parse().ok()?),
            "z" | "Z" => {
                tzoffset =
                    Some(if matches!(*val, "Z" | "UTC" | "GMT") { 0 } else { zone_offset(val)? });
            }
            _ => {}
        }
    }
    let tzoffset = tzoffset.or(default_tz);
    let now_local = now_local(clock)?;
    let assume_year = year.is_none();
    let year = year.unwrap_or(now_local.year());
    if (month.is_none() || day.is_none())
        && let Some(j) = julian
    {
        let d = NaiveDate::from_ymd_opt(year, 1, 1)? + chrono::Duration::days(i64::from(j) - 1);
        month = Some(d.month());
        day = Some(d.day());
    }
    let mut assume_today = false;
    let (month, day) = match (month, day) {
        (None, None) => {
            assume_today = true;
            (now_local.month(), now_local.day())
        }
        (m, d) => (m.unwrap_or(1), d.unwrap_or(1)),
    };
    let mut date = NaiveDate::from_ymd_opt(year, month, day)?.and_hms_opt(hour, minute, second)?;
    if let Some(off) = tzoffset {
        date -= chrono::Duration::minutes(off);
    }
    if assume_today && date > now_local {
        date -= chrono::Duration::days(1);
    }
    if assume_year && date > now_local + chrono::Duration::days(1) {
        date = date.with_year(year - 1)?;
    }
    Some(if tzoffset.is_some() {
        date.and_utc().timestamp() as f64
    } else {
        local_to_epoch_cached(clock.zone, date) as f64
    })
}

/// `time.mktime` in `zone`: ambiguous times take the earlier instant, skipped ones move forward.
pub(crate) fn local_to_epoch(zone: Tz, date: NaiveDateTime) -> i64 {
    match zone.from_local_datetime(&date) {
        chrono::LocalResult::Single(d) => d.timestamp(),
        chrono::LocalResult::Ambiguous(a, _) => a.timestamp(),
        chrono::LocalResult::None => zone
            .from_local_datetime(&(date + chrono::Duration::hours(1)))
            .earliest()
            .map_or_else(|| date.and_utc().timestamp(), |d| d.timestamp() - 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clock() -> Clock {
        Clock { now: 1_124_013_600.0, zone: chrono_tz::Europe::Zurich, real_year: 2026 }
    }

    #[test]
    fn syslog_timestamp_without_year_takes_the_year_of_now() {
        let mut dd = DateDetector::new(Some("{^LN-BEG}"), 2026).unwrap();
        let line = "Aug 14 11:59:59 host sshd[1]: x";
        let m = dd.find(line, &clock()).unwrap();
        assert_eq!(&line[m.span.0..m.span.1], "Aug 14 11:59:59");
        // 2005-08-14 11:59:59 CEST
        assert_eq!(m.time, Some(1_124_013_599.0));
    }

    #[test]
    fn future_dates_roll_back_a_year_and_offsets_apply() {
        let mut dd = DateDetector::new(None, 2026).unwrap();
        let m = dd.find("Dec 31 23:00:00 x", &clock()).unwrap();
        // 2004-12-31 23:00 CET
        assert_eq!(m.time, Some(1_104_530_400.0));
        let mut dd = DateDetector::new(None, 2026).unwrap();
        let m = dd.find("2005-01-02T03:04:05+0100 y", &clock()).unwrap();
        assert_eq!(m.time, Some(1_104_631_445.0));
        let mut dd = DateDetector::new(None, 2026).unwrap();
        let m = dd.find("1124013600.500 y", &clock()).unwrap();
        assert_eq!(m.time, Some(1_124_013_600.5));
    }

    #[test]
    fn custom_patterns_and_errors() {
        assert!(DateDetector::new(Some("^%Q"), 2026).is_err());
        let dd = DateDetector::new(Some("^L %d/%m/%Y - %H:%M:%S"), 2026);
        let m = dd.unwrap().find("L 01/02/2005 - 03:04:05: x", &clock()).unwrap();
        assert_eq!(m.time, Some(1_107_223_445.0));
    }

    #[test]
    fn repeated_timestamps_read_like_fresh_ones() {
        let lines = [
            "Aug 14 11:59:59 host sshd[1]: a",
            "Aug 14 11:59:59 host sshd[1]: b",
            "Aug 14 11:59:59.250 host sshd[1]: c",
            "Aug 14 11:59:59 2004 host sshd[1]: d",
            "Aug 14 11:59:59 host sshd[1]: e",
            "Aug 14 12:00:00 host sshd[1]: f",
        ];
        let mut warm = DateDetector::new(Some("{^LN-BEG}"), 2026).unwrap();
        for line in lines {
            let mut fresh = DateDetector::new(Some("{^LN-BEG}"), 2026).unwrap();
            let (a, b) = (warm.find(line, &clock()).unwrap(), fresh.find(line, &clock()).unwrap());
            assert_eq!((a.span, a.time), (b.span, b.time), "{line}");
        }
        // Same text, other clock: the time is computed again.
        let later = Clock { now: 1_200_000_000.0, ..clock() };
        let m = warm.find(lines[5], &later).unwrap();
        let mut fresh = DateDetector::new(Some("{^LN-BEG}"), 2026).unwrap();
        assert_eq!(m.time, fresh.find(lines[5], &later).unwrap().time);
    }

    #[test]
    fn hour_cache_agrees_across_a_dst_change() {
        let zone = chrono_tz::Europe::Zurich;
        // 2005-03-27 02:00 CET does not exist; 2005-10-30 02:00-03:00 happens twice.
        for (d, h) in [(27, 1), (27, 2), (27, 3), (30, 1), (30, 2), (30, 3)] {
            let month = if d == 27 { 3 } else { 10 };
            for (m, s) in [(0, 0), (30, 15), (59, 59)] {
                let date =
                    NaiveDate::from_ymd_opt(2005, month, d).unwrap().and_hms_opt(h, m, s).unwrap();
                assert_eq!(local_to_epoch_cached(zone, date), local_to_epoch(zone, date), "{date}");
            }
        }
    }
}
