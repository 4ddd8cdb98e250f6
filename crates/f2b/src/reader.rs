//! fail2ban's `FilterReader`: a filter file (with its includes) and jail-style options become
//! the definition the matcher needs — `prefregex`, `failregex`, `ignoreregex`, `maxlines`,
//! `datepattern` — after `%(name)s` interpolation and `<tag>` substitution.
//!
//! Options given as `name.conf[mode=aggressive]` act like `ConfigParser` `vars` for
//! `[Definition]` (they override its options during interpolation) and like `[Init]` values for
//! `<tag>` substitution, so `<mdre-<mode>>` resolves to `<mdre-aggressive>` and then to that
//! option's value, exactly as fail2ban builds its filters.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use crate::{
    Error,
    ini::{Ini, Section},
};

/// The options of a filter that the matcher uses, as fail2ban's `FilterReader.convert` yields them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FilterDefinition {
    /// The filter file.
    pub path: PathBuf,
    /// `prefregex`, if any.
    pub prefregex: Option<String>,
    /// `failregex`, one regex per entry.
    pub failregex: Vec<String>,
    /// `ignoreregex`, one regex per entry.
    pub ignoreregex: Vec<String>,
    /// `maxlines` (1 when not set).
    pub maxlines: usize,
    /// `datepattern` (several patterns separated by newlines), `None` for the default detection.
    pub datepattern: Option<String>,
    /// The files read, in order.
    pub files: Vec<PathBuf>,
    /// `usedns` as the filter (or its options) sets it: `yes`, `warn`, `no` or `raw`; `None`
    /// when not set (Vigil then reports host names raw, see [`crate::UseDns`]).
    pub usedns: Option<String>,
}

/// Splits `path[key=value, key2="v 2"]` into the path and its options (fail2ban's
/// `extractOptions`).
pub fn split_options(spec: &str) -> Result<(String, BTreeMap<String, String>), String> {
    let mut opts = BTreeMap::new();
    let Some(open) = spec.find('[') else { return Ok((spec.trim_end().to_owned(), opts)) };
    let name = &spec[..open];
    if name.is_empty() {
        return Err("unexpected option syntax".into());
    }
    let rest = spec[open + 1..].trim_end();
    let Some(body) = rest.strip_suffix(']') else {
        return Err("unexpected option syntax: missing ']'".into());
    };
    let chars: Vec<char> = body.chars().collect();
    let mut i = 0;
    let n = chars.len();
    loop {
        while i < n && chars[i].is_whitespace() {
            i += 1;
        }
        if i >= n {
            break;
        }
        let start = i;
        while i < n && (chars[i].is_alphanumeric() || matches!(chars[i], '_' | '-' | '.')) {
            i += 1;
        }
        let key: String = chars[start..i].iter().collect();
        if key.is_empty() || chars.get(i) != Some(&'=') {
            let near: String = chars[start..n.min(start + 25)].iter().collect();
            return Err(format!("expected option, wrong syntax at {start}: {near}"));
        }
        i += 1;
        let value: String = match chars.get(i) {
            Some(&q @ ('"' | '\'')) => {
                let end = chars[i + 1..]
                    .iter()
                    .position(|&c| c == q)
                    .ok_or_else(|| format!("unterminated quote in option {key:?}"))?;
                let v = chars[i + 1..i + 1 + end].iter().collect();
                i += end + 2;
                v
            }
            _ => {
                let start = i;
                while i < n && chars[i] != ',' && chars[i] != ']' {
                    i += 1;
                }
                chars[start..i].iter().collect()
            }
        };
        opts.insert(key.trim().to_owned(), value.trim().to_owned());
        while i < n && chars[i].is_whitespace() {
            i += 1;
        }
        if i >= n {
            break;
        }
        match chars[i] {
            ',' => i += 1,
            ']' => {
                i += 1;
                while i < n && chars[i].is_whitespace() {
                    i += 1;
                }
                if chars.get(i) == Some(&'[') {
                    i += 1;
                } else {
                    return Err(format!("unexpected syntax at {i} after option {key:?}"));
                }
            }
            _ => {
                let near: String = chars[i..n.min(i + 25)].iter().collect();
                return Err(format!("unexpected syntax at {i} after option {key:?}: {near}"));
            }
        }
    }
    Ok((name.trim_end().to_owned(), opts))
}

/// The `<tag>` pattern: `<([^ <>]+)>`; returns (start, end, name) of the first tag at or after
/// `from`.
fn find_tag(s: &str, from: usize) -> Option<(usize, usize, &str)> {
    let mut pos = from;
    while let Some(p) = s.get(pos..)?.find('<') {
        let start = pos + p;
        let after = &s[start + 1..];
        let len = after.find([' ', '<', '>']).unwrap_or(after.len());
        if len > 0 && after[len..].starts_with('>') {
            return Some((start, start + 1 + len + 1, &after[..len]));
        }
        pos = start + 1;
    }
    None
}

/// fail2ban's `substituteRecursiveTags`.
fn substitute_tags(
    tags: &mut BTreeMap<String, String>,
    mut addrepl: impl FnMut(&str) -> Result<Option<String>, String>,
) -> Result<(), String> {
    const MAX_TAG_REPLACE_COUNT: usize = 25;
    let mut done = std::collections::BTreeSet::new();
    let mut rep_counts: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    for _round in 0..1000 {
        let mut rep_flag = false;
        let keys: Vec<String> = tags.keys().cloned().collect();
        for tag in keys {
            if done.contains(&tag) {
                continue;
            }
            let orig = tags[&tag].clone();
            let mut value = orig.clone();
            let mut rplc = rep_counts.get(&tag).cloned().unwrap_or_default();
            let mut m = find_tag(&value, 0).map(|(s, e, n)| (s, e, n.to_owned()));
            while let Some((start, end, rtag)) = m {
                if rtag == tag || rplc.get(&rtag).copied().unwrap_or(1) > MAX_TAG_REPLACE_COUNT {
                    return Err(format!(
                        "properties contain self referencing definitions and cannot be \
                         resolved, fail tag: {tag}, found: {rtag}"
                    ));
                }
                let repl = match tags.get(&rtag) {
                    Some(v) => Some(v.clone()),
                    None => addrepl(&rtag)?,
                };
                let Some(repl) = repl else {
                    m = find_tag(&value, end).map(|(s, e, n)| (s, e, n.to_owned()));
                    continue;
                };
                value = value.replace(&format!("<{rtag}>"), &repl);
                *rplc.entry(rtag).or_insert(0) += 1;
                m = find_tag(&value, start.min(value.len())).map(|(s, e, n)| (s, e, n.to_owned()));
            }
            if orig != value {
                if find_tag(&value, 0).is_some() {
                    rep_counts.insert(tag.clone(), rplc);
                    rep_flag = true;
                }
                tags.insert(tag.clone(), value.clone());
            }
            if !value.contains('<') {
                done.insert(tag);
            }
        }
        if !rep_flag {
            return Ok(());
        }
    }
    Err("recursive tag definitions unable to be resolved".into())
}

/// Reads a filter the way `fail2ban-regex FILE[opts]` does.
pub fn read_filter(
    path: &Path,
    opts: &BTreeMap<String, String>,
) -> Result<FilterDefinition, Error> {
    if !path.is_file() {
        return Err(Error::Io {
            path: path.to_owned(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "filter file not found"),
        });
    }
    // The file, then `<name>.local` (ConfigReader.read).
    let mut files = vec![path.to_owned()];
    let local = path.with_extension("local");
    if local != path && local.is_file() {
        files.push(local);
    }
    let (ini, read) = Ini::read(&files)?;
    definition(&ini, path, opts, read)
}

/// Reads a filter from its text alone (no includes), e.g. a filter kept in a configuration.
pub fn parse_filter(
    text: &str,
    opts: &BTreeMap<String, String>,
) -> Result<FilterDefinition, Error> {
    let path = Path::new("<filter>");
    let ini = Ini::from_text(text, path)?;
    definition(&ini, path, opts, Vec::new())
}

/// `FilterReader.getOptions` + `getCombined` + `convert` on a read configuration.
fn definition(
    ini: &Ini,
    path: &Path,
    opts: &BTreeMap<String, String>,
    read: Vec<PathBuf>,
) -> Result<FilterDefinition, Error> {
    let conf_err = |message: String| Error::Config { path: path.to_owned(), message };

    // Options given on the command line: vars for [Definition], init options for tags.
    let mut init: BTreeMap<String, String> = opts.clone();
    let vars: Section = opts.iter().map(|(k, v)| (k.to_lowercase(), v.clone())).collect();

    const OPTS: [&str; 7] = [
        "usedns",
        "prefregex",
        "ignoreregex",
        "failregex",
        "maxlines",
        "datepattern",
        "journalmatch",
    ];
    let mut combined: BTreeMap<String, String> = BTreeMap::new();
    for name in OPTS {
        if vars.contains_key(name) {
            continue;
        }
        if let Some(v) = ini.get("Definition", name, &vars).map_err(conf_err)? {
            combined.insert(name.to_owned(), v);
        }
    }
    if ini.sections.contains_key("Init") {
        for opt in ini.own_options("Init") {
            let v = ini.get("Init", &opt, &Section::new()).map_err(conf_err)?.unwrap_or_default();
            if !opt.starts_with("known/") {
                init.insert(format!("known/{opt}"), v.clone());
            }
            init.entry(opt).or_insert(v);
        }
    }
    combined.extend(init);
    // Conditional options (`name?cond`) are not substituted.
    let mut cache: BTreeMap<String, Option<String>> = BTreeMap::new();
    let addrepl = |name: &str| -> Result<Option<String>, String> {
        if let Some(v) = cache.get(name) {
            return Ok(v.clone());
        }
        let v = ini.get_ex("Definition", name, &vars)?;
        cache.insert(name.to_owned(), v.clone());
        Ok(v)
    };
    let conditional: Vec<(String, String)> = combined
        .iter()
        .filter(|(k, _)| k.contains('?'))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    combined.retain(|k, _| !k.contains('?'));
    substitute_tags(&mut combined, addrepl).map_err(conf_err)?;
    combined.extend(conditional);

    let lines = |v: Option<&String>| -> Vec<String> {
        v.map(|v| v.split('\n').filter(|l| !l.is_empty()).map(str::to_owned).collect())
            .unwrap_or_default()
    };
    let maxlines = match combined.get("maxlines") {
        None => 1,
        Some(v) => match v.trim().parse::<i64>() {
            Ok(n) if n > 0 => n as usize,
            // fail2ban warns and keeps its default for a non-integer; a value <= 0 is an error.
            Ok(_) => return Err(conf_err("maxlines must be integer greater than zero".into())),
            Err(_) => 1,
        },
    };
    Ok(FilterDefinition {
        path: path.to_owned(),
        prefregex: combined.get("prefregex").filter(|v| !v.is_empty()).cloned(),
        failregex: lines(combined.get("failregex")),
        ignoreregex: lines(combined.get("ignoreregex")),
        maxlines,
        datepattern: combined.get("datepattern").cloned(),
        files: read,
        usedns: combined.get("usedns").cloned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_split_like_fail2ban() {
        let (p, o) = split_options("filter.d/sshd.conf[mode=aggressive, x=\"a, b\"]").unwrap();
        assert_eq!(p, "filter.d/sshd.conf");
        assert_eq!(o["mode"], "aggressive");
        assert_eq!(o["x"], "a, b");
        let (_, o) = split_options("f[a=1][b='2']").unwrap();
        assert_eq!((o["a"].as_str(), o["b"].as_str()), ("1", "2"));
        assert!(split_options("f[=1]").is_err());
        assert!(split_options("f[a=1").is_err());
    }

    #[test]
    fn tags_substitute_recursively() {
        let mut tags = BTreeMap::new();
        tags.insert("failregex".to_owned(), "a <mdre-<mode>> <HOST>".to_owned());
        tags.insert("mode".to_owned(), "normal".to_owned());
        let extra = |n: &str| Ok((n == "mdre-normal").then(|| "X<mode>".to_owned()));
        substitute_tags(&mut tags, extra).unwrap();
        assert_eq!(tags["failregex"], "a Xnormal <HOST>");
        let mut tags = BTreeMap::new();
        tags.insert("a".to_owned(), "<a>".to_owned());
        assert!(substitute_tags(&mut tags, |_| Ok(None)).is_err());
    }
}
