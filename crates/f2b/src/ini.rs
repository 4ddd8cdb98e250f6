//! fail2ban's configuration files as Python's `ConfigParser` reads them, with fail2ban's
//! `[INCLUDES]` and `%(section/option)s` extensions.
//!
//! fail2ban filters rely on the exact rules of Python's parser: option names are lower-cased,
//! indented lines continue a value, comment lines inside a value are skipped, `;` after
//! whitespace starts an inline comment, `[DEFAULT]` options are visible from every section, and
//! `%(name)s` interpolates another option (recursively, at most 10 levels deep). Files listed in
//! `[INCLUDES] before`/`after` are read around the including file and merged section by section,
//! later files overriding earlier ones; the overridden values stay reachable as
//! `%(known/option)s`. Missing included files are skipped, as fail2ban skips absent `.local` files.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use crate::Error;

/// One section's options: lower-cased name → raw value.
pub(crate) type Section = BTreeMap<String, String>;

/// Python's `MAX_INTERPOLATION_DEPTH`.
const MAX_DEPTH: usize = 10;

/// A merged set of configuration files.
#[derive(Debug, Default, Clone)]
pub(crate) struct Ini {
    pub(crate) defaults: Section,
    pub(crate) sections: BTreeMap<String, Section>,
}

/// One parsed file before merging (sections in file order).
#[derive(Debug, Default)]
struct ParsedFile {
    defaults: Section,
    sections: Vec<(String, Section)>,
}

impl ParsedFile {
    fn section(&self, name: &str) -> Option<&Section> {
        self.sections.iter().find(|(n, _)| n == name).map(|(_, s)| s)
    }
}

/// Parses one file's text with Python `ConfigParser` rules (strict, `inline_comment_prefixes=";"`).
fn parse(text: &str, path: &Path) -> Result<ParsedFile, Error> {
    let mut file = ParsedFile::default();
    // Current section: None before the first header; Some(None) = DEFAULT, Some(Some(i)) = index.
    let mut current: Option<Option<usize>> = None;
    // Current option: its name and collected value lines (None = option without value).
    let mut option: Option<String> = None;
    let mut values: BTreeMap<(Option<usize>, String), Option<Vec<String>>> = BTreeMap::new();
    let mut order: Vec<(Option<usize>, String)> = Vec::new();
    let mut indent_level = usize::MAX;
    let err = |line: usize, message: String| Error::Syntax { path: path.to_owned(), line, message };

    for (index, raw_line) in text.split('\n').enumerate() {
        let lineno = index + 1;
        let line = raw_line.strip_suffix('\r').unwrap_or(raw_line);
        // Inline comment: ';' at index 0 or preceded by whitespace.
        let mut comment_start: Option<usize> = None;
        for (i, c) in line.char_indices() {
            if c == ';'
                && (i == 0 || line[..i].chars().next_back().is_some_and(char::is_whitespace))
            {
                comment_start = Some(i);
                break;
            }
        }
        let trimmed = line.trim();
        if trimmed.starts_with('#') || trimmed.starts_with(';') {
            comment_start = Some(0);
        }
        let value = match comment_start {
            Some(i) => line[..i].trim(),
            None => trimmed,
        };
        if value.is_empty() {
            // Empty lines belong to a multi-line value (joined later, trailing ones stripped).
            if comment_start.is_none()
                && let (Some(sect), Some(name)) = (current, option.as_ref())
                && let Some(Some(lines)) = values.get_mut(&(sect, name.clone()))
            {
                lines.push(String::new());
            }
            continue;
        }
        let cur_indent = line.find(|c: char| !c.is_whitespace()).unwrap_or(0);
        if let (Some(sect), Some(name)) = (current, option.as_ref())
            && cur_indent > indent_level
        {
            if let Some(Some(lines)) = values.get_mut(&(sect, name.clone())) {
                lines.push(value.to_owned());
            }
            continue;
        }
        indent_level = cur_indent;
        if let Some(rest) = value.strip_prefix('[')
            && let Some(end) = rest.rfind(']')
            && end > 0
        {
            let name = &rest[..end];
            if name == "DEFAULT" {
                current = Some(None);
            } else {
                if file.sections.iter().any(|(n, _)| n == name) {
                    return Err(err(lineno, format!("section {name:?} already exists")));
                }
                file.sections.push((name.to_owned(), Section::new()));
                current = Some(Some(file.sections.len() - 1));
            }
            option = None;
            continue;
        }
        let Some(sect) = current else {
            return Err(err(lineno, "file contains no section headers".into()));
        };
        // `name = value` or `name : value`: the first delimiter splits.
        let Some(delim) = value.find(['=', ':']) else {
            return Err(err(lineno, format!("cannot parse line: {value:?}")));
        };
        let name = value[..delim].trim_end().to_lowercase();
        if name.is_empty() {
            return Err(err(lineno, format!("option without a name: {value:?}")));
        }
        let key = (sect, name.clone());
        if values.contains_key(&key) {
            return Err(err(lineno, format!("option {name:?} already exists in its section")));
        }
        let val = value[delim + 1..].trim().to_owned();
        values.insert(key.clone(), Some(vec![val]));
        order.push(key);
        option = Some(name);
    }
    for key in order {
        let Some(Some(lines)) = values.remove(&key) else { continue };
        let joined = lines.join("\n").trim_end().to_owned();
        match key.0 {
            None => {
                file.defaults.insert(key.1, joined);
            }
            Some(i) => {
                file.sections[i].1.insert(key.1, joined);
            }
        }
    }
    Ok(file)
}

/// Reads and parses one file; `Ok(None)` when it does not exist.
fn read_file(path: &Path) -> Result<Option<ParsedFile>, Error> {
    let text = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(Error::Io { path: path.to_owned(), source }),
    };
    let text = String::from_utf8(text).map_err(|e| Error::Syntax {
        path: path.to_owned(),
        line: 0,
        message: format!("not valid UTF-8: {e}"),
    })?;
    parse(&text, path).map(Some)
}

/// The file plus an existing `.local` sibling (`_expandConfFilesWithLocal`).
fn with_local(files: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for file in files {
        out.push(file.clone());
        let local = file.with_extension("local");
        if !files.contains(&local) && local.is_file() {
            out.push(local);
        }
    }
    out
}

/// The include tree of `files`, flattened in reading order (fail2ban's `_getIncludes`).
fn includes(files: &[PathBuf], seen: &[PathBuf], depth: usize) -> Result<Vec<PathBuf>, Error> {
    let mut out = Vec::new();
    if depth > 32 {
        return Ok(out);
    }
    for file in with_local(files) {
        let Some(parsed) = read_file(&file)? else { continue };
        let dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut before = Vec::new();
        let mut after = Vec::new();
        if let Some(section) = parsed.section("INCLUDES") {
            let single = Ini { defaults: parsed.defaults.clone(), sections: BTreeMap::new() };
            for (name, list) in [("before", &mut before), ("after", &mut after)] {
                if !section.contains_key(name) {
                    continue;
                }
                let mut sections = BTreeMap::new();
                sections.insert("INCLUDES".to_owned(), section.clone());
                let ini = Ini { sections, ..single.clone() };
                let value = ini
                    .get("INCLUDES", name, &BTreeMap::new())
                    .map_err(|message| Error::Syntax { path: file.clone(), line: 0, message })?;
                for resource in value.unwrap_or_default().split('\n') {
                    let resource = Path::new(resource);
                    let r = if resource.is_absolute() {
                        resource.to_path_buf()
                    } else {
                        dir.join(resource)
                    };
                    if seen.contains(&r) {
                        continue;
                    }
                    let mut seen2 = seen.to_vec();
                    seen2.push(file.clone());
                    list.extend(includes(&[r], &seen2, depth + 1)?);
                }
            }
        }
        out.extend(before);
        out.push(file);
        out.extend(after);
    }
    Ok(out)
}

impl Ini {
    /// Reads `files` with their includes and merges them in order, like fail2ban's
    /// `SafeConfigParserWithIncludes.read`. Returns the merged configuration and the files read.
    pub(crate) fn read(files: &[PathBuf]) -> Result<(Ini, Vec<PathBuf>), Error> {
        let all = includes(files, &[], 0)?;
        let mut ini = Ini::default();
        let mut read = Vec::new();
        for file in all {
            let Some(parsed) = read_file(&file)? else { continue };
            read.push(file);
            ini.defaults.extend(parsed.defaults);
            for (name, section) in parsed.sections {
                // `[Definition?family=inet6]`-style conditional sections suffix their options.
                let (name, section) = match name.split_once('?') {
                    Some((base, cond))
                        if !base.is_empty()
                            && base.chars().all(|c| c.is_alphanumeric() || c == '_') =>
                    {
                        let cond = format!("?{cond}");
                        let section =
                            section.into_iter().map(|(k, v)| (format!("{k}{cond}"), v)).collect();
                        (base.to_owned(), section)
                    }
                    _ => (name, section),
                };
                if let Some(existing) = ini.sections.get_mut(&name) {
                    let known: Section = existing
                        .iter()
                        .filter(|(k, _)| section.contains_key(*k))
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect();
                    existing.extend(section);
                    ini.sections.entry(format!("KNOWN/{name}")).or_default().extend(known);
                } else {
                    ini.sections.insert(name, section);
                }
            }
        }
        Ok((ini, read))
    }

    /// One file's text, without includes.
    pub(crate) fn from_text(text: &str, path: &Path) -> Result<Ini, Error> {
        let parsed = parse(text, path)?;
        let mut ini = Ini { defaults: parsed.defaults, sections: BTreeMap::new() };
        for (name, section) in parsed.sections {
            ini.sections.insert(name, section);
        }
        Ok(ini)
    }

    pub(crate) fn has_section(&self, section: &str) -> bool {
        section == "DEFAULT" || self.sections.contains_key(section)
    }

    /// The raw value of `option` as `ConfigParser.get` looks it up: `vars`, then the section,
    /// then `[DEFAULT]`. `None` when the option does not exist.
    fn raw<'a>(&'a self, section: &str, option: &str, vars: &'a Section) -> Option<&'a String> {
        vars.get(option)
            .or_else(|| self.sections.get(section).and_then(|s| s.get(option)))
            .or_else(|| self.defaults.get(option))
    }

    /// `ConfigParser.get(section, option, vars=vars)` with interpolation: `Ok(None)` when the
    /// section or option is missing, `Err` for an interpolation error.
    pub(crate) fn get(
        &self,
        section: &str,
        option: &str,
        vars: &Section,
    ) -> Result<Option<String>, String> {
        if !self.has_section(section) {
            return Ok(None);
        }
        let option = option.to_lowercase();
        let Some(raw) = self.raw(section, &option, vars) else { return Ok(None) };
        let mut out = String::new();
        self.interpolate(section, &option, raw, vars, 1, &mut out)?;
        Ok(Some(out))
    }

    /// fail2ban's `get_ex`: also accepts `section/option`, `known/option`, `default/option`.
    pub(crate) fn get_ex(
        &self,
        section: &str,
        option: &str,
        vars: &Section,
    ) -> Result<Option<String>, String> {
        if let Some((sec, opt)) = split_section_option(option) {
            let candidates: Vec<String> = match sec.to_lowercase().as_str() {
                "known" => vec![format!("KNOWN/{section}"), section.to_owned()],
                "default" => vec!["DEFAULT".to_owned()],
                _ => vec![sec.to_owned()],
            };
            for sec in candidates {
                if let Some(v) = self.get(&sec, opt, &BTreeMap::new())? {
                    return Ok(Some(v));
                }
            }
        }
        self.get(section, option, vars)
    }

    /// Python's `BasicInterpolation._interpolate_some` with fail2ban's `%(section/option)s`.
    fn interpolate(
        &self,
        section: &str,
        option: &str,
        mut rest: &str,
        vars: &Section,
        depth: usize,
        out: &mut String,
    ) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err(format!("interpolation too deep in option {option:?} of [{section}]"));
        }
        while !rest.is_empty() {
            let Some(p) = rest.find('%') else {
                out.push_str(rest);
                return Ok(());
            };
            out.push_str(&rest[..p]);
            rest = &rest[p..];
            match rest.as_bytes().get(1) {
                Some(b'%') => {
                    out.push('%');
                    rest = &rest[2..];
                }
                Some(b'(') => {
                    let close = rest.find(')').filter(|&c| c > 2 && rest[c..].starts_with(")s"));
                    let Some(close) = close else {
                        return Err(format!("bad interpolation variable reference {rest:?}"));
                    };
                    let name = rest[2..close].to_lowercase();
                    rest = &rest[close + 2..];
                    let value = if name == "__name__" {
                        Some(section.to_owned())
                    } else {
                        self.lookup_for_interpolation(section, &name, vars)
                    };
                    let Some(value) = value else {
                        return Err(format!(
                            "bad option value for {option:?} in [{section}]: missing option \
                             {name:?} referenced as %({name})s"
                        ));
                    };
                    if value.contains('%') {
                        self.interpolate(section, option, &value, vars, depth + 1, out)?;
                    } else {
                        out.push_str(&value);
                    }
                }
                _ => {
                    return Err(format!("'%' must be followed by '%' or '(', found: {rest:?}"));
                }
            }
        }
        Ok(())
    }

    /// The value a `%(name)s` reference resolves to from `section` (fail2ban's
    /// `_map_section_options` for `section/option` names).
    fn lookup_for_interpolation(
        &self,
        section: &str,
        name: &str,
        vars: &Section,
    ) -> Option<String> {
        if let Some(v) = self.raw(section, name, vars) {
            return Some(v.clone());
        }
        let (sec, opt) = split_section_option(name)?;
        match sec.to_lowercase().as_str() {
            "default" => self.defaults.get(opt).cloned(),
            "known" => self
                .sections
                .get(&format!("KNOWN/{section}"))
                .and_then(|s| s.get(opt))
                .or_else(|| self.defaults.get(opt))
                .cloned(),
            _ => {
                let s = self.sections.get(sec)?;
                s.get(opt).or_else(|| self.defaults.get(opt)).cloned()
            }
        }
    }

    /// Option names of a section without `[DEFAULT]`'s.
    pub(crate) fn own_options(&self, section: &str) -> Vec<String> {
        self.sections.get(section).map(|s| s.keys().cloned().collect()).unwrap_or_default()
    }
}

/// Splits `section/option` (fail2ban's `^([\w\-]+)/([^\s>]+)$`).
fn split_section_option(name: &str) -> Option<(&str, &str)> {
    let (sec, opt) = name.split_once('/')?;
    let sec_ok =
        !sec.is_empty() && sec.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '-');
    let opt_ok = !opt.is_empty() && !opt.contains(|c: char| c.is_whitespace() || c == '>');
    (sec_ok && opt_ok).then_some((sec, opt))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(text: &str) -> ParsedFile {
        parse(text, Path::new("t.conf")).unwrap()
    }

    #[test]
    fn continuation_lines_comments_and_inline_comments() {
        let f = parse_str(
            "[Definition]\nFailRegex = ^a$\n    ^b ; note\n# comment\n    ^c;d\n\nx: 1\n",
        );
        let s = f.section("Definition").unwrap();
        assert_eq!(s["failregex"], "^a$\n^b\n^c;d");
        assert_eq!(s["x"], "1");
    }

    #[test]
    fn interpolation_uses_defaults_vars_and_section_option_names() {
        let (mut ini, _) = (Ini::default(), ());
        ini.defaults.insert("a".into(), "A%(b)s".into());
        ini.defaults.insert("b".into(), "default-b".into());
        let mut def = Section::new();
        def.insert("b".into(), "B".into());
        def.insert("c".into(), "%(a)s-%(other/x)s-100%%".into());
        ini.sections.insert("Definition".into(), def);
        let mut other = Section::new();
        other.insert("x".into(), "X".into());
        ini.sections.insert("other".into(), other);
        let none = Section::new();
        assert_eq!(ini.get("Definition", "c", &none).unwrap().unwrap(), "AB-X-100%");
        let mut vars = Section::new();
        vars.insert("b".into(), "V".into());
        assert_eq!(ini.get("Definition", "c", &vars).unwrap().unwrap(), "AV-X-100%");
        assert!(ini.get("Definition", "missing", &none).unwrap().is_none());
        ini.sections.get_mut("Definition").unwrap().insert("bad".into(), "%(nope)s".into());
        assert!(ini.get("Definition", "bad", &none).is_err());
    }

    #[test]
    fn duplicate_options_are_errors() {
        assert!(parse("[a]\nx = 1\nx = 2\n", Path::new("t")).is_err());
        assert!(parse("x = 1\n", Path::new("t")).is_err());
    }
}
