//! fail2ban's regex tags and its `Regex.search` over a buffer of lines.
//!
//! fail2ban expands `<HOST>`, `<ADDR>`, `<IP4>`, `<IP6>`, `<DNS>`, `<CIDR>`, `<SUBNET>`,
//! `<F-ID/>`, `<F-PORT/>` and `<SKIPLINES>` into fixed sub-patterns with well-known group names
//! (`ip4`, `ip6`, `dns`, `fid`, …) and turns `<F-NAME>`…`</F-NAME>` into the named group `name`
//! (lower-cased; `F-ID` → `fid`, `F-PORT` → `fport`). A match over a multi-line buffer also
//! tells which buffered lines it used, which decides what stays in the buffer.

use crate::{
    Value,
    pyre::{Rx, Spans},
};

/// fail2ban's IPv4 pattern (`IPAddr.IP_4_RE`).
const IP4: &str = r"(?:\d{1,3}\.){3}\d{1,3}";
/// fail2ban's IPv6 pattern (`IPAddr.IP_6_RE`). The original ends in `(?<=:):`, a look-behind
/// that always holds there (every repetition before it ends with `:`), so it is written as `:`
/// and `<HOST>` stays on the linear-time engine.
const IP6: &str = r"(?:[0-9a-fA-F]{1,4}::?|::){1,7}(?:[0-9a-fA-F]{1,4}|:)";

fn host_pattern(tag: &str) -> Option<String> {
    let ip4 = format!(r"(?:::f{{4,6}}:)?(?P<ip4>{IP4})");
    let ip6 = format!(r"(?P<ip6>{IP6})");
    let dns = r"(?P<dns>[\w\-.^_]*\w)".to_owned();
    let addr = format!(r"\[?(?:{ip4}|{ip6})\]?");
    let cidr = r"(?P<cidr>\d+)".to_owned();
    Some(match tag {
        "HOST" => format!("(?:{addr}|{dns})"),
        "IP4" | "F-IP4/" => ip4,
        "IP6" | "F-IP6/" => ip6,
        "ADDR" | "F-ADDR/" => addr,
        "CIDR" | "F-CIDR/" => cidr,
        "SUBNET" | "F-SUBNET/" => format!(r"\[?(?:{ip4}|{ip6})(?:/{cidr})?\]?"),
        "DNS" | "F-DNS/" => dns,
        "F-ID/" => r"(?P<fid>\S+)".to_owned(),
        "F-PORT/" => r"(?P<fport>\w+)".to_owned(),
        _ => return None,
    })
}

fn map_tag(tag: &str) -> String {
    let lower = tag.to_lowercase();
    match lower.as_str() {
        "id" => "fid".to_owned(),
        "port" => "fport".to_owned(),
        _ => lower,
    }
}

/// Expands fail2ban's tags in a regex (`Regex._resolveHostTag`, with `usedns` other than `no`).
#[cfg(test)]
pub(crate) fn resolve_tags(regex: &str) -> String {
    resolve_tags_dns(regex, true)
}

/// [`resolve_tags`]; with `host_dns` false (`usedns = no`) `<HOST>` matches addresses only
/// (fail2ban writes it as `<ADDR>` then).
pub(crate) fn resolve_tags_dns(regex: &str, host_dns: bool) -> String {
    let mut out = String::with_capacity(regex.len() * 2);
    let mut open: Vec<String> = Vec::new();
    let mut skiplines = 0;
    let mut rest = regex;
    while let Some(lt) = rest.find('<') {
        out.push_str(&rest[..lt]);
        let after = &rest[lt..];
        // `</?[\w\-]+/?>`
        let Some(tag_len) = tag_at(after) else {
            out.push('<');
            rest = &after[1..];
            continue;
        };
        let tag = &after[..tag_len];
        let name = &tag[1..tag.len() - 1];
        rest = &after[tag_len..];
        if name == "SKIPLINES" {
            out.push_str(&format!(r"\n(?P<skiplines{skiplines}>(?:(?:.*\n)*?))"));
            skiplines += 1;
            continue;
        }
        if name == "HOST" && !host_dns {
            out.push_str(&host_pattern("ADDR").unwrap_or_default());
            continue;
        }
        if let Some(p) = host_pattern(name) {
            out.push_str(&p);
            continue;
        }
        let (closing, body) = match name.strip_prefix('/') {
            Some(b) => (true, b),
            None => (false, name),
        };
        let custom = body.strip_prefix("F-").filter(|n| {
            !n.is_empty()
                && n.chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_' || c == '-')
        });
        match custom {
            Some(n) if closing => {
                if open.iter().any(|o| o == n) {
                    out.push(')');
                } else {
                    out.push_str(tag);
                }
            }
            Some(n) => {
                open.push(n.to_owned());
                out.push_str(&format!("(?P<{}>", map_tag(n)));
            }
            None => out.push_str(tag),
        }
    }
    out.push_str(rest);
    out
}

/// Length of a `</?[\w\-]+/?>` tag at the start of `s`.
fn tag_at(s: &str) -> Option<usize> {
    let mut chars = s.char_indices().skip(1).peekable();
    if let Some(&(_, '/')) = chars.peek() {
        chars.next();
    }
    let mut word = 0;
    while let Some(&(_, c)) = chars.peek() {
        if c.is_alphanumeric() || c == '_' || c == '-' {
            word += 1;
            chars.next();
        } else {
            break;
        }
    }
    if word == 0 {
        return None;
    }
    if let Some(&(_, '/')) = chars.peek() {
        chars.next();
    }
    match chars.next() {
        Some((i, '>')) => Some(i + 1),
        _ => None,
    }
}

/// `alt_user_1` → `user` (`COMPLNAME_CRE` for the `alt_` prefix).
fn alt_target(name: &str) -> Option<String> {
    complex_target(name, "alt_")
}

/// `tuple_id_2` → `fid` (`COMPLNAME_CRE` for the `tuple_` prefix).
fn tuple_target(name: &str) -> Option<String> {
    complex_target(name, "tuple_")
}

/// `COMPLNAME_CRE` (`^(alt_|tuple_)(.*?)(?:_\d+)?$`) for one prefix, the name mapped as a tag.
/// fail2ban only considers names longer than `alt_`.
fn complex_target(name: &str, prefix: &str) -> Option<String> {
    if name.len() <= "alt_".len() {
        return None;
    }
    let rest = name.strip_prefix(prefix)?;
    // The lazy `(.*?)` leaves a trailing `_<digits>` to the optional group.
    let base = match rest.rfind('_') {
        Some(p) if p + 1 < rest.len() && rest[p + 1..].bytes().all(|c| c.is_ascii_digit()) => {
            &rest[..p]
        }
        _ => rest,
    };
    Some(map_tag(base))
}

/// Python's `repr` of a `str` (how fail2ban prints the parts of a tuple failure ID).
pub(crate) fn py_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') { '"' } else { '\'' };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if !py_printable(c) => {
                let v = u32::from(c);
                out.push_str(&if v < 0x100 {
                    format!("\\x{v:02x}")
                } else if v < 0x10000 {
                    format!("\\u{v:04x}")
                } else {
                    format!("\\U{v:08x}")
                });
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// `str.isprintable` for one character: not a control, format or separator character (the
/// space excepted). Format characters are those of Unicode's `Cf` category that occur in text.
fn py_printable(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    !(c.is_control()
        || c.is_whitespace()
        || matches!(
            c,
            '\u{ad}'
                | '\u{600}'..='\u{605}'
                | '\u{61c}'
                | '\u{6dd}'
                | '\u{70f}'
                | '\u{180e}'
                | '\u{200b}'..='\u{200f}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{206f}'
                | '\u{feff}'
                | '\u{fff9}'..='\u{fffb}'
                | '\u{e000}'..='\u{f8ff}'
                | '\u{f0000}'..
        ))
}

/// Python's `repr` of a tuple of optional strings: `('a', None)`, `('a',)`.
fn py_tuple_repr(parts: &[Option<Value>]) -> String {
    let items: Vec<String> =
        parts.iter().map(|p| p.as_deref().map_or_else(|| "None".to_owned(), py_repr)).collect();
    if items.len() == 1 { format!("({},)", items[0]) } else { format!("({})", items.join(", ")) }
}

/// Whether a Python pattern has a `|` outside every group and class.
fn top_level_alternation(py: &str) -> bool {
    let b = py.as_bytes();
    let (mut depth, mut in_class, mut i) = (0usize, false, 0);
    while i < b.len() {
        match b[i] {
            b'\\' => i += 1,
            b'[' if !in_class => {
                in_class = true;
                if b.get(i + 1) == Some(&b'^') {
                    i += 1;
                }
                if b.get(i + 1) == Some(&b']') {
                    i += 1;
                }
            }
            b']' if in_class => in_class = false,
            b'(' if !in_class => depth += 1,
            b')' if !in_class => depth = depth.saturating_sub(1),
            b'|' if !in_class && depth == 0 => return true,
            _ => {}
        }
        i += 1;
    }
    false
}

/// Whether a Python pattern has an inline flag group (`(?s)`, `(?m:…)`, `(?-i:…)`, …); such a
/// flag may change what `.` or `$` match.
fn has_flag_group(py: &str) -> bool {
    py.match_indices("(?").any(|(i, _)| {
        let escaped = py[..i].len() - py[..i].trim_end_matches('\\').len();
        escaped.is_multiple_of(2)
            && py[i + 2..]
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() && c != 'P' || c == '-')
    })
}

/// One line split around its timestamp: (before, timestamp text, after).
pub(crate) type TupleLine = (String, String, String);

/// The text fail2ban searches: each line without its timestamp, each followed by `\n`.
pub(crate) fn tuple_buf(lines: &[TupleLine]) -> String {
    let mut buf = String::new();
    for (i, l) in lines.iter().enumerate() {
        if i > 0 {
            buf.push('\n');
        }
        buf.push_str(&l.0);
        buf.push_str(&l.2);
    }
    buf.push('\n');
    buf
}

/// A compiled fail2ban regex (after tag expansion and translation).
#[derive(Debug, Clone)]
pub(crate) struct F2bRegex {
    pub(crate) rx: Rx,
    /// The regex as written in the filter (before tag expansion).
    pub(crate) source: String,
    skiplines: Vec<usize>,
    /// Whether `<HOST>` also matches host names (`usedns` other than `no`).
    host_dns: bool,
    /// The group names once each, in order of first appearance, with every group index that
    /// carries the name (one per branch that sets it).
    unique: Vec<(std::sync::Arc<str>, Vec<usize>)>,
    /// `alt_NAME[_N]` group names with the name each fills, sorted (`_getGroupsWithAlt`).
    alts: Vec<(std::sync::Arc<str>, String)>,
}

/// A group name as a search result holds it: shared with the regex (`Arc<str>`, what a
/// filter's state keeps), or borrowed from the regex for as long as the result lives
/// (`Cow<str>`: no reference count is touched, see [`crate::Matcher::scan_into`]). Names made
/// for one match (`alt_` and `tuple_` targets) are owned either way.
pub(crate) trait GroupName<'r>: Clone + std::ops::Deref<Target = str> {
    /// A name the regex holds.
    fn of_regex(name: &'r std::sync::Arc<str>) -> Self;
    /// A name made for one match.
    fn made(name: &str) -> Self;
}

impl<'r> GroupName<'r> for std::sync::Arc<str> {
    fn of_regex(name: &'r std::sync::Arc<str>) -> Self {
        std::sync::Arc::clone(name)
    }
    fn made(name: &str) -> Self {
        std::sync::Arc::from(name)
    }
}

impl<'r> GroupName<'r> for std::borrow::Cow<'r, str> {
    fn of_regex(name: &'r std::sync::Arc<str>) -> Self {
        std::borrow::Cow::Borrowed(name)
    }
    fn made(name: &str) -> Self {
        std::borrow::Cow::Owned(name.to_owned())
    }
}

/// The result of a search: groups by name and the split of the original lines.
#[derive(Debug, Clone)]
pub(crate) struct Found<N = std::sync::Arc<str>> {
    pub(crate) groups: Vec<(N, Option<Value>)>,
    pub(crate) unmatched: Vec<TupleLine>,
}

impl Found {
    #[cfg(test)]
    pub(crate) fn group(&self, name: &str) -> Option<&str> {
        self.groups.iter().find(|(n, _)| &**n == name).and_then(|(_, v)| v.as_deref())
    }
}

impl F2bRegex {
    #[cfg(test)]
    pub(crate) fn new(source: &str, multiline: bool) -> Result<F2bRegex, String> {
        F2bRegex::with_dns(source, multiline, true)
    }

    /// [`F2bRegex::new`]; `host_dns` false for `usedns = no` (`<HOST>` matches addresses only).
    pub(crate) fn with_dns(
        source: &str,
        multiline: bool,
        host_dns: bool,
    ) -> Result<F2bRegex, String> {
        F2bRegex::from_expanded(&resolve_tags_dns(source, host_dns), source, multiline, host_dns)
    }

    /// The regex with its tags expanded.
    /// A copy whose group names are allocated anew: a thread that scans with it then clones
    /// and drops names no other thread touches (see [`crate::Matcher::for_thread`]).
    pub(crate) fn for_thread(&self) -> F2bRegex {
        let mut copy = self.clone();
        for (name, _) in &mut copy.unique {
            *name = std::sync::Arc::from(&**name);
        }
        copy
    }

    pub(crate) fn expanded(&self) -> String {
        resolve_tags_dns(&self.source, self.host_dns)
    }

    /// For a single-line regex that ends in `<F-CONTENT>.+</F-CONTENT>$` (fail2ban's
    /// `prefregex` style), the same regex ending in `(?P<content>.)` instead: on a buffer of one
    /// line it picks the same match up to where `content` starts (`.+$` matches from there
    /// exactly when one character other than the newline follows), and `content` is the rest of
    /// the line. The capture engine then runs over the line's head only. `None` when the regex
    /// has another shape: a top-level alternation, or a flag that changes what `.` or `$` mean.
    pub(crate) fn rest_of_line_form(&self) -> Option<F2bRegex> {
        let expanded = self.expanded();
        let head = expanded.strip_suffix("(?P<content>.+)$")?;
        let trailing_backslashes = head.len() - head.trim_end_matches('\\').len();
        if !trailing_backslashes.is_multiple_of(2)
            || top_level_alternation(head)
            || has_flag_group(head)
        {
            return None;
        }
        F2bRegex::from_expanded(
            &format!("{head}(?P<content>.)"),
            &self.source,
            false,
            self.host_dns,
        )
        .ok()
    }

    fn from_expanded(
        expanded: &str,
        source: &str,
        multiline: bool,
        host_dns: bool,
    ) -> Result<F2bRegex, String> {
        if expanded.trim_start().is_empty() {
            return Err("cannot add empty regex".into());
        }
        let rx = Rx::new(expanded, multiline)
            .map_err(|e| format!("unable to compile regular expression {source:?}: {e}"))?;
        let skiplines = rx
            .names()
            .iter()
            .filter(|(n, _)| n.starts_with("skiplines"))
            .map(|(_, i)| *i)
            .collect();
        let mut unique: Vec<(std::sync::Arc<str>, Vec<usize>)> = Vec::new();
        for (n, i) in rx.names().iter() {
            match unique.iter_mut().find(|(u, _)| u == n) {
                Some((_, idxs)) => idxs.push(*i),
                None => unique.push((std::sync::Arc::clone(n), vec![*i])),
            }
        }
        let mut alts: Vec<(std::sync::Arc<str>, String)> = unique
            .iter()
            .filter_map(|(k, _)| alt_target(k).map(|n| (std::sync::Arc::clone(k), n)))
            .collect();
        alts.sort();
        Ok(F2bRegex { rx, source: source.to_owned(), skiplines, host_dns, unique, alts })
    }

    /// `Regex.search(buf, orgLines)` followed by `getGroups` and `getUnmatchedTupleLines`.
    /// [`F2bRegex::search`] of one line whose match by the regex's linear-time superset is known.
    pub(crate) fn search_prechecked<'r, N: GroupName<'r>>(&'r self, buf: &str) -> Option<Found<N>> {
        let spans = self.rx.search_prechecked(buf)?;
        Some(self.found_except(buf, &[], &spans, None))
    }

    pub(crate) fn search(&self, buf: &str, org: &[TupleLine]) -> Option<Found> {
        self.search_as(buf, org)
    }

    /// [`F2bRegex::search`] with names of type `N`.
    pub(crate) fn search_as<'r, N: GroupName<'r>>(
        &'r self,
        buf: &str,
        org: &[TupleLine],
    ) -> Option<Found<N>> {
        let spans = self.rx.search(buf)?;
        Some(self.found_except(buf, org, &spans, None))
    }

    #[cfg(test)]
    pub(crate) fn found(&self, buf: &str, org: &[TupleLine], spans: &Spans) -> Found {
        self.found_except(buf, org, spans, None)
    }

    /// [`F2bRegex::found`] without the group `skip` (its text is not copied), with names of
    /// type `N`.
    pub(crate) fn found_except<'r, N: GroupName<'r>>(
        &'r self,
        buf: &str,
        org: &[TupleLine],
        spans: &Spans,
        skip: Option<&str>,
    ) -> Found<N> {
        let mut groups: Vec<(N, Option<Value>)> = Vec::with_capacity(self.unique.len() + 2);
        for (n, idxs) in self.unique.iter().filter(|(n, _)| skip != Some(&**n)) {
            // A name set in several branches: the branch that matched gives the value.
            let v = idxs.iter().find_map(|i| spans.get(*i)).map(|(s, e)| Value::from(&buf[s..e]));
            groups.push((N::of_regex(n), v));
        }
        // `alt_NAME[_N]` groups fill `NAME` when it is empty (`_getGroupsWithAlt`).
        for (k, n) in self.alts.iter().filter(|(k, _)| skip != Some(&**k)) {
            let v = groups.iter().find(|(g, _)| **g == **k).and_then(|(_, v)| v.clone());
            let target_empty = groups
                .iter()
                .find(|(g, _)| **g == *n.as_str())
                .is_none_or(|(_, t)| t.as_deref().is_none_or(str::is_empty));
            if let Some(v) = v.filter(|v| !v.is_empty())
                && target_empty
            {
                match groups.iter_mut().find(|(g, _)| **g == *n.as_str()) {
                    Some(slot) => slot.1 = Some(v),
                    None => groups.push((N::made(n.as_str()), Some(v))),
                }
            }
        }
        // `tuple_NAME[_N]` groups combine with `NAME` into a tuple, `(NAME, tuple_NAME, …)` in
        // the order of the sorted group names (`_getGroupsWithAlt`); the value is its `str`.
        let mut tuples: Vec<(N, String)> =
            groups.iter().filter_map(|(k, _)| tuple_target(k).map(|n| (k.clone(), n))).collect();
        if !tuples.is_empty() {
            tuples.sort_by(|a, b| (&*a.0, &a.1).cmp(&(&*b.0, &b.1)));
            let mut built: Vec<(String, Vec<Option<Value>>)> = Vec::new();
            for (k, n) in tuples {
                let v = groups.iter().find(|(g, _)| **g == *k).and_then(|(_, v)| v.clone());
                match built.iter_mut().find(|(b, _)| *b == n) {
                    Some((_, parts)) => parts.push(v),
                    None => {
                        let t = groups
                            .iter()
                            .find(|(g, _)| **g == *n.as_str())
                            .and_then(|(_, t)| t.clone());
                        built.push((n, vec![t, v]));
                    }
                }
            }
            for (n, parts) in built {
                let v = Some(Value::from(py_tuple_repr(&parts)));
                match groups.iter_mut().find(|(g, _)| **g == *n.as_str()) {
                    Some(slot) => slot.1 = v,
                    None => groups.push((N::made(n.as_str()), v)),
                }
            }
        }
        let mut unmatched = Vec::new();
        if org.len() > 1 {
            let (start, end) = spans.get(0).unwrap_or((0, 0));
            let line_start = if buf[start..].starts_with('\n') {
                start + 1
            } else {
                buf[..start].rfind('\n').map_or(0, |p| p + 1)
            };
            let from = if end > 0 && buf.as_bytes()[end - 1] == b'\n' { end - 1 } else { end };
            let line_end = buf[from..].find('\n').map_or(buf.len(), |p| from + p + 1);
            let c1 = buf[..line_start].matches('\n').count().min(org.len());
            let c2 = buf[..line_end].matches('\n').count().clamp(c1, org.len());
            let mut matched: Vec<TupleLine> = org[c1..c2].to_vec();
            unmatched.extend_from_slice(&org[..c1]);
            let mut skipped = String::new();
            for &i in &self.skiplines {
                if let Some((s, e)) = spans.get(i) {
                    skipped.push_str(&buf[s..e]);
                }
            }
            let mut n = 0;
            for skipped_line in skipped.lines() {
                if let Some(m) = matched[n.min(matched.len())..]
                    .iter()
                    .position(|l| format!("{}{}", l.0, l.2) == skipped_line)
                {
                    unmatched.push(matched.remove(n + m));
                    n += m;
                }
            }
            unmatched.extend_from_slice(&org[c2..]);
        }
        Found { groups, unmatched }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_expand_to_named_groups() {
        let r = resolve_tags("^<F-USER>.*</F-USER> from <HOST> <F-ID/> </F-X> <foo>");
        assert!(r.starts_with("^(?P<user>.*) from (?:"));
        assert!(r.contains("(?P<ip4>") && r.contains("(?P<ip6>") && r.contains("(?P<dns>"));
        assert!(r.ends_with("(?P<fid>\\S+) </F-X> <foo>"));
    }

    #[test]
    fn host_matches_addresses_like_fail2ban() {
        let re = F2bRegex::new("from <HOST>$", false).unwrap();
        for (line, group, value) in [
            ("from 1.2.3.4\n", "ip4", "1.2.3.4"),
            ("from ::ffff:1.2.3.4\n", "ip4", "1.2.3.4"),
            ("from [2001:db8::1]\n", "ip6", "2001:db8::1"),
            ("from 2001:db8::\n", "ip6", "2001:db8::"),
            ("from example.com\n", "dns", "example.com"),
        ] {
            let f = re.search(line, &[]).unwrap();
            assert_eq!(f.group(group), Some(value), "{line}");
        }
    }

    #[test]
    fn rest_of_line_form_cuts_the_same_content() {
        let pref = F2bRegex::new(
            r"^<F-MLFID>\s*(?:\S+\s+)?(?:[\[\(]?sshd(?:\[\d+\])?:?\s+)?</F-MLFID>(?:error: )?<F-CONTENT>.+</F-CONTENT>$",
            false,
        )
        .unwrap();
        let line = pref.rest_of_line_form().expect("the prefregex shape is recognised");
        for text in [
            "web1 sshd[12]: Failed password for root from 192.0.2.1 port 22 ssh2\n",
            "web1 sshd[12]: error: maximum authentication attempts exceeded\n",
            "web1 sshd[12]: \n",
            "web1\n",
            "x\n",
            "\n",
            "  héllo wörld sshd: ünïcode\n",
        ] {
            let full = pref.search(text, &[]);
            let spans = line.rx.search(text);
            assert_eq!(full.is_some(), spans.is_some(), "{text:?}");
            let (Some(full), Some(spans)) = (full, spans) else { continue };
            let fast = line.found(text, &[], &spans);
            let (_, i) = line.rx.names().iter().find(|(n, _)| &**n == "content").unwrap();
            let start = spans.get(*i).unwrap().0;
            assert_eq!(full.group("content"), Some(&text[start..text.len() - 1]), "{text:?}");
            assert_eq!(full.group("mlfid"), fast.group("mlfid"), "{text:?}");
        }
        // Other shapes keep the full regex.
        for other in [r"^a|<F-CONTENT>.+</F-CONTENT>$", r"(?s)^a<F-CONTENT>.+</F-CONTENT>$"] {
            assert!(F2bRegex::new(other, false).unwrap().rest_of_line_form().is_none(), "{other}");
        }
    }
}
