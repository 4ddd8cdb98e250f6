//! Loading: configuration text plus environment overrides into a typed value, with errors that
//! say exactly where the problem is and how to fix it.
//!
//! Loading takes two passes. The file text is parsed and deserialized on its own first, so every
//! error in it carries a line and column (computed from the byte span `toml` reports) and a
//! snippet of the offending line. Only then, if any `VIGIL_*__*` variable applies (see
//! [`crate::config::env`]), are the overrides merged into the parsed table and the result
//! deserialized again. An error in that second pass can only come from the environment, and it is
//! attributed to the variable whose key path matches the error's path, which
//! `serde_path_to_error` tracks for both passes.
//!
//! Messages are serde's and toml's, made more useful: an unknown key or variant gets a "did you
//! mean" hint (Jaro-Winkler similarity) or the list of accepted names, a type error a hint on how
//! the expected type is written, a bad duration the duration syntax. Values of keys whose name
//! contains `secret`, `token`, `password` or `key` are masked as `***` in messages and snippets,
//! so secrets never reach logs.

use std::{
    fmt,
    io::{self, Read as _},
    path::Path,
};

use serde::de::DeserializeOwned;
use serde_path_to_error::Segment;
use toml::Table;

use crate::config::{Override, apply_overrides, env, overrides_from};

/// Configuration text and the name it is reported under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigSource {
    name: String,
    text: String,
}

impl ConfigSource {
    /// Text that came from somewhere called `name` (a path, usually), the name used in errors.
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> ConfigSource {
        ConfigSource { name: name.into(), text: text.into() }
    }

    /// No configuration file: everything takes its default (and environment overrides apply).
    pub fn defaults() -> ConfigSource {
        ConfigSource::new("<defaults>", "")
    }

    /// Reads the file at `path`, or standard input (named `<stdin>`) when `path` is `-`.
    ///
    /// The error is the bare I/O error; callers add the path as context.
    pub fn read(path: &Path) -> io::Result<ConfigSource> {
        if path.as_os_str() == "-" {
            let mut text = String::new();
            io::stdin().lock().read_to_string(&mut text)?;
            return Ok(ConfigSource::new("<stdin>", text));
        }
        let text = std::fs::read_to_string(path)?;
        Ok(ConfigSource::new(path.display().to_string(), text))
    }

    /// The name errors are reported under.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The configuration text.
    pub fn text(&self) -> &str {
        &self.text
    }
}

/// Where a configuration error comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A place in a configuration source. `line` and `column` are 1-based (the column counts
    /// characters), and both are 0 when the error concerns the whole source.
    File {
        /// The source's name: its path, `<stdin>` or `<defaults>`.
        path: String,
        /// The 1-based line, or 0.
        line: usize,
        /// The 1-based column, in characters, or 0.
        column: usize,
    },
    /// An environment variable override.
    Env {
        /// The variable's name (several, separated by `, `, when no single one can be blamed).
        var: String,
    },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File { path, line: 0, .. } => f.write_str(path),
            Origin::File { path, line, column } => write!(f, "{path}:{line}:{column}"),
            Origin::Env { var } => write!(f, "environment variable {var}"),
        }
    }
}

/// One problem with the configuration.
///
/// Displayed like this, the hint and the snippet only when there are some:
///
/// ```text
/// vigil.toml:3:1: unknown field `evnt_buffer_size`
///   hint: did you mean `event_buffer_size`?
///   3 | evnt_buffer_size = 10
///     | ^^^^^^^^^^^^^^^^
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Where the problem is.
    pub origin: Origin,
    /// What is wrong: lowercase, no trailing period, secret values masked.
    pub message: String,
    /// How to fix it, when something useful can be said.
    pub hint: Option<String>,
    /// The offending source line and a caret line under the error, indented and ready to print;
    /// `None` for environment errors and when the line would show a secret.
    pub snippet: Option<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.origin, self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        if let Some(snippet) = &self.snippet {
            write!(f, "\n{snippet}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// Every problem found while loading, in source order; never empty when returned by [`load`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(Vec<ConfigError>);

impl ConfigErrors {
    /// The problems, in the order they were found.
    pub fn errors(&self) -> &[ConfigError] {
        &self.0
    }
}

impl From<ConfigError> for ConfigErrors {
    fn from(error: ConfigError) -> ConfigErrors {
        ConfigErrors(vec![error])
    }
}

impl From<Vec<ConfigError>> for ConfigErrors {
    fn from(errors: Vec<ConfigError>) -> ConfigErrors {
        ConfigErrors(errors)
    }
}

impl FromIterator<ConfigError> for ConfigErrors {
    fn from_iter<I: IntoIterator<Item = ConfigError>>(iter: I) -> ConfigErrors {
        ConfigErrors(iter.into_iter().collect())
    }
}

impl IntoIterator for ConfigErrors {
    type Item = ConfigError;
    type IntoIter = std::vec::IntoIter<ConfigError>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a ConfigErrors {
    type Item = &'a ConfigError;
    type IntoIter = std::slice::Iter<'a, ConfigError>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (idx, error) in self.errors().iter().enumerate() {
            if idx > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Loads a configuration from `source`, then applies the `VIGIL_<SECTION>__<KEY>` overrides
/// found in `env` (every other variable is ignored).
///
/// `env` is usually the process environment as strings:
/// `std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))`
/// (`std::env::vars` would panic on a variable that is not UTF-8).
///
/// Errors in the file are reported with their line and column; errors caused by an override
/// name its variable. TOML syntax errors are all reported (up to a handful); a deserialization
/// error stops at the first one, as serde does.
pub fn load<T: DeserializeOwned>(
    source: &ConfigSource,
    env: &[(String, String)],
) -> Result<T, ConfigErrors> {
    let from_file = deserialize_file::<T>(source)?;
    let overrides = overrides_from(env.iter().cloned());
    if overrides.is_empty() {
        return Ok(from_file);
    }
    let mut table: Table = source.text().parse().map_err(|err| file_error(source, &err, &[]))?;
    apply_overrides(&mut table, &overrides)?;
    serde_path_to_error::deserialize(toml::Value::Table(table))
        .map_err(|err| env_error(&err, &overrides).into())
}

/// The most syntax errors reported at once; later ones are often echoes of the first.
const MAX_SYNTAX_ERRORS: usize = 5;

/// The hint for anything wrong with a duration.
const DURATION_HINT: &str = r#"durations are written like "5s", "250ms", "2m""#;

/// Parts of key names that mark their values as secret.
const SECRET_WORDS: [&str; 4] = ["secret", "token", "password", "key"];

/// The first pass: the file text on its own.
fn deserialize_file<T: DeserializeOwned>(source: &ConfigSource) -> Result<T, ConfigErrors> {
    let (_, syntax_errors) = toml::de::DeTable::parse_recoverable(source.text());
    if !syntax_errors.is_empty() {
        return Err(syntax_errors
            .iter()
            .take(MAX_SYNTAX_ERRORS)
            .map(|err| file_error(source, err, &[]))
            .collect());
    }
    let deserializer =
        toml::Deserializer::parse(source.text()).map_err(|err| file_error(source, &err, &[]))?;
    serde_path_to_error::deserialize(deserializer).map_err(|err| {
        let path = segments(err.path());
        file_error(source, err.inner(), &path).into()
    })
}

/// The key path of a deserialization error, as strings (`["listeners", "json_lines", "a"]`).
fn segments(path: &serde_path_to_error::Path) -> Vec<String> {
    path.iter()
        .map(|segment| match segment {
            Segment::Seq { index } => index.to_string(),
            Segment::Map { key } => key.clone(),
            Segment::Enum { variant } => variant.clone(),
            Segment::Unknown => "?".to_owned(),
        })
        .collect()
}

fn file_error(source: &ConfigSource, err: &toml::de::Error, path: &[String]) -> ConfigError {
    let secret = is_secret(path);
    let explained = explain(err.message());
    let message = if secret { mask(&explained.message) } else { explained.message };
    let (line, column, snippet) = match err.span() {
        Some(span) => {
            let location = Location::find(source.text(), span.start);
            let snippet = location.snippet(span.len(), secret);
            (location.line, location.column, snippet)
        }
        None => (0, 0, None),
    };
    ConfigError {
        origin: Origin::File { path: source.name().to_owned(), line, column },
        message,
        hint: explained.hint,
        snippet,
    }
}

fn env_error(
    err: &serde_path_to_error::Error<toml::de::Error>,
    overrides: &[Override],
) -> ConfigError {
    let path = segments(err.path());
    let culprits = blame(&path, overrides);
    let var = culprits.iter().map(|it| it.var.as_str()).collect::<Vec<_>>().join(", ");
    let explained = explain(err.inner().message());
    let message = if is_secret(&path) { mask(&explained.message) } else { explained.message };
    let mut hint = explained.hint;
    // Suggest the variable to set rather than the key, since that is what the user typed.
    if let (Some(suggestion), [culprit]) = (&explained.suggestion, culprits.as_slice())
        && let Some(idx) = path.len().checked_sub(1)
        && culprit.path.get(..path.len()) == Some(&path[..])
    {
        let mut fixed = culprit.path.clone();
        if let Some(segment) = fixed.get_mut(idx) {
            segment.clone_from(suggestion);
        }
        if let Some(name) = env::var_name(&fixed) {
            hint = Some(format!("did you mean `{name}`?"));
        }
    }
    let read_as_toml = ["integer", "boolean", "floating point", "datetime"]
        .iter()
        .any(|kind| message.starts_with(&format!("invalid type: {kind}")));
    if read_as_toml && message.ends_with("expected a string") {
        hint = Some(format!(
            "the value was read as TOML; quote it to pass it as a string, like `{var}='\"...\"'`"
        ));
    }
    ConfigError { origin: Origin::Env { var }, message, hint, snippet: None }
}

/// The overrides an error at `path` is due to: the one whose path best matches (the last
/// applied, if several tie), or all of them when none does.
fn blame<'a>(path: &[String], overrides: &'a [Override]) -> Vec<&'a Override> {
    let best = overrides
        .iter()
        .filter_map(|it| {
            let common = it.path.iter().zip(path).take_while(|(a, b)| a == b).count();
            let related = common > 0 && (common == it.path.len() || common == path.len());
            related.then_some((common, it))
        })
        .max_by_key(|(common, _)| *common);
    match best {
        Some((_, it)) => vec![it],
        None => overrides.iter().collect(),
    }
}

/// Whether the key at `path` holds a secret: its last named segment (array indexes skipped)
/// contains one of [`SECRET_WORDS`].
fn is_secret(path: &[String]) -> bool {
    path.iter()
        .rev()
        .find(|segment| !segment.bytes().all(|b| b.is_ascii_digit()))
        .is_some_and(|segment| is_secret_name(segment))
}

pub(super) fn is_secret_name(name: &str) -> bool {
    let name = name.to_lowercase();
    SECRET_WORDS.iter().any(|word| name.contains(word))
}

/// A message reworded for people, with a hint and, for unknown names, the closest known one.
struct Explained {
    message: String,
    hint: Option<String>,
    suggestion: Option<String>,
}

fn explain(message: &str) -> Explained {
    let plain =
        |hint: Option<String>| Explained { message: message.to_owned(), hint, suggestion: None };
    for what in ["field", "variant"] {
        let prefix = format!("unknown {what} `");
        if let Some(rest) = message.strip_prefix(&prefix)
            && let Some((name, tail)) = rest.split_once('`')
        {
            let expected: Vec<&str> = tail.split('`').skip(1).step_by(2).collect();
            let suggestion = closest(name, &expected);
            let hint = match (&suggestion, expected.as_slice()) {
                (Some(it), _) => format!("did you mean `{it}`?"),
                (None, []) if what == "field" => "this table takes no keys".to_owned(),
                (None, []) => format!("this type has no {what}s"),
                (None, [only]) => format!("expected `{only}`"),
                (None, names) => format!("expected one of `{}`", names.join("`, `")),
            };
            return Explained {
                message: format!("unknown {what} `{name}`"),
                hint: Some(hint),
                suggestion: suggestion.map(str::to_owned),
            };
        }
    }
    if message.starts_with("invalid duration") {
        return plain(Some(DURATION_HINT.to_owned()));
    }
    let is_type_error = ["invalid type: ", "invalid value: ", "invalid length "]
        .iter()
        .any(|prefix| message.starts_with(prefix));
    if is_type_error && let Some((_, expected)) = message.rsplit_once(", expected ") {
        return plain(Some(type_hint(expected)));
    }
    plain(None)
}

/// The expected name closest to `name`, if it is close enough to be what was meant.
fn closest<'a>(name: &str, expected: &[&'a str]) -> Option<&'a str> {
    const THRESHOLD: f64 = 0.8;
    expected
        .iter()
        .map(|it| (strsim::jaro_winkler(name, it), *it))
        .filter(|(score, _)| *score >= THRESHOLD)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, it)| it)
}

/// How to write a value of the type serde says it expected.
fn type_hint(expected: &str) -> String {
    const INTEGERS: [&str; 13] = [
        "u8", "u16", "u32", "u64", "u128", "usize", "i8", "i16", "i32", "i64", "i128", "isize",
        "integer",
    ];
    let words: Vec<&str> = expected.split(|c: char| !c.is_ascii_alphanumeric()).collect();
    let has = |names: &[&str]| words.iter().any(|word| names.contains(word));
    if expected.contains("duration") {
        DURATION_HINT.to_owned()
    } else if has(&INTEGERS) {
        format!("this key takes an integer ({expected}), written without quotes, like `8192`")
    } else if has(&["f32", "f64"]) {
        format!("this key takes a number ({expected}), written without quotes, like `0.5`")
    } else if has(&["string"]) {
        "this key takes a string, written in quotes, like `\"text\"`".to_owned()
    } else if has(&["boolean", "bool"]) {
        "this key takes `true` or `false`, written without quotes".to_owned()
    } else if has(&["sequence"]) {
        "this key takes an array, like `[\"a\", \"b\"]`".to_owned()
    } else if has(&["map", "struct"]) {
        "this key takes a table: a `[section]` of its own, or inline like `{ key = \"value\" }`"
            .to_owned()
    } else {
        format!("this key takes {expected}")
    }
}

/// Masks the values quoted in a message about a secret key. In serde's "invalid type" and
/// "invalid value" messages the value sits before ", expected" and may be in backticks.
fn mask(message: &str) -> String {
    let value_first =
        ["invalid type: ", "invalid value: "].iter().any(|it| message.starts_with(it));
    match message.rsplit_once(", expected ") {
        Some((head, expected)) if value_first => {
            let head = mask_quoted(&mask_quoted(head, '"'), '`');
            format!("{head}, expected {expected}")
        }
        _ => mask_quoted(message, '"'),
    }
}

/// Replaces the text between each pair of `quote`s with `***`.
fn mask_quoted(text: &str, quote: char) -> String {
    let mut res = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        res.push(c);
        if c != quote {
            continue;
        }
        res.push_str("***");
        let mut escaped = false;
        for c in chars.by_ref() {
            if c == quote && !escaped {
                res.push(quote);
                break;
            }
            escaped = c == '\\' && !escaped;
        }
    }
    res
}

/// Masks the values assigned to secret keys on one line of TOML: `token = "x"` becomes
/// `token = ***`, also inside inline tables.
fn mask_line(line: &str) -> String {
    let mut res = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(eq) = find_unquoted(rest, '=') {
        let (before, after) = rest.split_at(eq);
        let after = after.get(1..).unwrap_or_default();
        res.push_str(before);
        res.push('=');
        let key = before.rsplit(['{', ',']).next().unwrap_or_default().trim();
        let key = key.rsplit('.').next().unwrap_or_default().trim().trim_matches(['"', '\'']);
        if !is_secret_name(key) {
            rest = after;
            continue;
        }
        let value = after.trim_start();
        res.push_str(&after[..after.len() - value.len()]);
        res.push_str("***");
        rest = value.get(value_len(value)..).unwrap_or_default();
    }
    res.push_str(rest);
    res
}

/// The byte offset of the first `target` outside strings and before any comment.
fn find_unquoted(text: &str, target: char) -> Option<usize> {
    let mut quote = None;
    let mut escaped = false;
    for (idx, c) in text.char_indices() {
        match quote {
            Some(q) => {
                if c == q && !escaped {
                    quote = None;
                }
                escaped = q == '"' && c == '\\' && !escaped;
            }
            None if c == '"' || c == '\'' => quote = Some(c),
            None if c == '#' => return None,
            None if c == target => return Some(idx),
            None => {}
        }
    }
    None
}

/// The length in bytes of the TOML value `text` starts with, as far as this line shows it: a
/// quoted string, else everything up to the next `,` or `}` (or the end, for arrays, inline
/// tables and multi-line strings).
fn value_len(text: &str) -> usize {
    let mut chars = text.char_indices();
    match chars.next() {
        Some((_, q @ ('"' | '\''))) if !text.starts_with("\"\"\"") && !text.starts_with("'''") => {
            let mut escaped = false;
            for (idx, c) in chars {
                if c == q && !escaped {
                    return idx + c.len_utf8();
                }
                escaped = q == '"' && c == '\\' && !escaped;
            }
            text.len()
        }
        Some((_, '[' | '{' | '"' | '\'')) => text.len(),
        _ => text.find([',', '}', '#']).unwrap_or(text.len()),
    }
}

/// A position in configuration text, with the line around it.
struct Location<'a> {
    /// 1-based line number.
    line: usize,
    /// 1-based column, in characters.
    column: usize,
    /// The line up to the position.
    before: &'a str,
    /// The line from the position on.
    after: &'a str,
}

impl<'a> Location<'a> {
    /// Locates the byte `offset` (clamped to the text) in `text`.
    fn find(text: &'a str, offset: usize) -> Location<'a> {
        let mut offset = offset.min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let (head, tail) = text.split_at(offset);
        let line_start = head.rfind('\n').map_or(0, |idx| idx + 1);
        let before = &head[line_start..];
        let after = tail.split('\n').next().unwrap_or_default().trim_end_matches('\r');
        Location {
            line: head.matches('\n').count() + 1,
            column: before.chars().count() + 1,
            before,
            after,
        }
    }

    /// The line with a caret line under `width` bytes from the position, like rustc's. With
    /// `secret`, the line is shown only if masking hid the value on it.
    fn snippet(&self, width: usize, secret: bool) -> Option<String> {
        let line = format!("{}{}", self.before, self.after);
        let masked = mask_line(&line);
        if secret && masked == line {
            return None;
        }
        let indent: String =
            self.before.chars().map(|c| if c == '\t' { '\t' } else { ' ' }).collect();
        let carets = if masked == line {
            let spanned = self.after.get(..width.min(self.after.len())).unwrap_or(self.after);
            spanned.chars().count().max(1)
        } else {
            1
        };
        let number = self.line.to_string();
        let gutter = " ".repeat(number.len());
        Some(format!("  {number} | {masked}\n  {gutter} | {indent}{}", "^".repeat(carets)))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::fixture::{Level, Sample};

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(var, value)| ((*var).to_owned(), (*value).to_owned())).collect()
    }

    fn load_sample(text: &str, env: &[(&str, &str)]) -> Result<Sample, ConfigErrors> {
        load(&ConfigSource::new("vigil.toml", text), &vars(env))
    }

    /// The only error of a load that must fail.
    fn only_error(text: &str, env: &[(&str, &str)]) -> ConfigError {
        let errors = load_sample(text, env).unwrap_err();
        let [error] = errors.errors() else { panic!("expected one error, got {errors}") };
        error.clone()
    }

    fn at(line: usize, column: usize) -> Origin {
        Origin::File { path: "vigil.toml".to_owned(), line, column }
    }

    #[test]
    fn an_empty_source_is_the_default() {
        assert_eq!(load::<Sample>(&ConfigSource::defaults(), &[]).unwrap(), Sample::default());
        assert_eq!(load_sample("# nothing but a comment\n", &[]).unwrap(), Sample::default());
    }

    #[test]
    fn file_values_are_read() {
        let text = r#"
            hostname = "web-1"
            [runtime]
            event_buffer_size = 8192
            health_interval = "250ms"
            log_level = "debug"
            [listeners.json_lines.alerts]
            path = "/var/log/vigil/alerts.jsonl"
            filter = { kinds = ["finding"] }
        "#;
        let config = load_sample(text, &[]).unwrap();
        assert_eq!(config.hostname.as_deref(), Some("web-1"));
        assert_eq!(config.runtime.event_buffer_size.get(), 8192);
        assert_eq!(config.runtime.health_interval, Duration::from_millis(250));
        assert_eq!(config.runtime.log_level, Level::Debug);
        let alerts = &config.listeners.json_lines["alerts"];
        assert_eq!(alerts.path, "/var/log/vigil/alerts.jsonl");
        assert_eq!(alerts.filter.kinds, ["finding"]);
    }

    #[test]
    fn unknown_key_has_position_snippet_and_suggestion() {
        let text = "[runtime]\nlog_level = \"info\"\n  evnt_buffer_size = 10\n";
        let error = only_error(text, &[]);
        assert_eq!(error.origin, at(3, 3));
        assert_eq!(error.message, "unknown field `evnt_buffer_size`");
        assert_eq!(error.hint.as_deref(), Some("did you mean `event_buffer_size`?"));
        assert_eq!(
            error.to_string(),
            "vigil.toml:3:3: unknown field `evnt_buffer_size`\n\
             \x20 hint: did you mean `event_buffer_size`?\n\
             \x20 3 |   evnt_buffer_size = 10\n\
             \x20   |   ^^^^^^^^^^^^^^^^"
        );
    }

    #[test]
    fn unknown_key_far_from_any_lists_the_expected_ones() {
        let error = only_error("[api]\nfrobnicate = 1\n", &[]);
        assert_eq!(error.origin, at(2, 1));
        assert_eq!(error.message, "unknown field `frobnicate`");
        assert_eq!(error.hint.as_deref(), Some("expected one of `url`, `token`, `port`"));
    }

    #[test]
    fn unknown_variant_suggests_the_closest() {
        let error = only_error("[runtime]\nlog_level = \"warn\"\n", &[]);
        assert_eq!(error.origin, at(2, 13));
        assert_eq!(error.message, "unknown variant `warn`");
        assert_eq!(error.hint.as_deref(), Some("did you mean `warning`?"));
    }

    #[test]
    fn wrong_type_points_at_the_value() {
        let error = only_error("[runtime]\n\tevent_buffer_size = \"big\" # oops\n", &[]);
        assert_eq!(error.origin, at(2, 22));
        assert_eq!(error.message, "invalid type: string \"big\", expected a nonzero usize");
        assert_eq!(
            error.hint.as_deref(),
            Some(
                "this key takes an integer (a nonzero usize), written without quotes, like `8192`"
            )
        );
        assert_eq!(
            error.snippet.as_deref(),
            Some("  2 | \tevent_buffer_size = \"big\" # oops\n    | \t                    ^^^^^")
        );

        let error = only_error("[runtime]\nevent_buffer_size = 0\n", &[]);
        assert_eq!(error.origin, at(2, 21));
        assert_eq!(error.message, "invalid value: integer `0`, expected a nonzero usize");
    }

    #[test]
    fn bad_duration_has_the_duration_hint() {
        let error = only_error("[runtime]\nhealth_interval = \"5 fortnights\"\n", &[]);
        assert_eq!(error.origin, at(2, 19));
        assert!(
            error.message.starts_with("invalid duration \"5 fortnights\""),
            "{}",
            error.message
        );
        assert_eq!(error.hint.as_deref(), Some(DURATION_HINT));

        let error = only_error("[runtime]\nhealth_interval = 5\n", &[]);
        assert_eq!(error.hint.as_deref(), Some(DURATION_HINT));
    }

    #[test]
    fn syntax_errors_are_all_reported_with_positions() {
        let errors = load_sample("[runtime\nevent_buffer_size = = 1\n", &[]).unwrap_err();
        let origins: Vec<&Origin> = errors.errors().iter().map(|it| &it.origin).collect();
        assert!(errors.errors().len() >= 2, "{errors}");
        assert_eq!(origins[0], &at(1, 9));
        assert!(matches!(origins[1], Origin::File { line: 2, .. }), "{errors}");
    }

    #[test]
    fn secrets_are_masked_in_messages_and_snippets() {
        let error = only_error("[api]\ntoken = 12345\n", &[]);
        assert_eq!(error.message, "invalid type: integer `***`, expected a string");
        assert_eq!(error.snippet.as_deref(), Some("  2 | token = ***\n    |         ^"));

        let error = only_error("api = { token = \"hunter2\", port = \"x\" }\n", &[]);
        assert_eq!(error.message, "invalid type: string \"x\", expected u16");
        assert!(!error.to_string().contains("hunter2"), "{error}");

        let error = only_error("[api]\ntoken = [\n  \"hunter2\",\n]\n", &[]);
        assert_eq!(error.message, "invalid type: sequence, expected a string");
        assert!(!error.to_string().contains("hunter2"), "{error}");

        let error = only_error("[api]\ntoken = 1\n", &[("VIGIL_API__TOKEN", "\"s3cret\"")]);
        assert!(!error.to_string().contains("s3cret"), "{error}");
        let error = only_error("[api]\n", &[("VIGIL_API__TOKEN", "987654")]);
        assert_eq!(error.message, "invalid type: integer `***`, expected a string");
        assert!(!error.to_string().contains("987654"), "{error}");
    }

    #[test]
    fn environment_overrides_win_over_the_file() {
        let text = "[runtime]\nevent_buffer_size = 1024\nlog_level = \"debug\"\n";
        let env = [
            ("VIGIL_RUNTIME__EVENT_BUFFER_SIZE", "8192"),
            ("VIGIL_RUNTIME__HEALTH_INTERVAL", "2m"),
            ("VIGIL_LOG", "trace"),
        ];
        let config = load_sample(text, &env).unwrap();
        assert_eq!(config.runtime.event_buffer_size.get(), 8192);
        assert_eq!(config.runtime.health_interval, Duration::from_secs(120));
        assert_eq!(config.runtime.log_level, Level::Debug);
    }

    #[test]
    fn environment_overrides_create_map_instances() {
        let env = [
            ("VIGIL_LISTENERS__JSON_LINES__ALERTS__PATH", "/tmp/x"),
            ("VIGIL_LISTENERS__JSON_LINES__ALERTS__FILTER", r#"{ kinds = ["log"] }"#),
        ];
        let config = load::<Sample>(&ConfigSource::defaults(), &vars(&env)).unwrap();
        let alerts = &config.listeners.json_lines["alerts"];
        assert_eq!(alerts.path, "/tmp/x");
        assert_eq!(alerts.filter.kinds, ["log"]);
        // As with a file that names instances, the map given replaces the default one.
        assert_eq!(config.listeners.json_lines.keys().collect::<Vec<_>>(), ["alerts"]);
    }

    #[test]
    fn environment_errors_name_the_variable() {
        let env = [
            ("VIGIL_RUNTIME__LOG_LEVEL", "info"),
            ("VIGIL_RUNTIME__EVENT_BUFFER_SIZE", "lots"),
            ("VIGIL_LISTENERS__JSON_LINES__ALERTS__PATH", "/tmp/x"),
        ];
        let error = only_error("", &env);
        assert_eq!(
            error.origin,
            Origin::Env { var: "VIGIL_RUNTIME__EVENT_BUFFER_SIZE".to_owned() }
        );
        assert_eq!(
            error.to_string(),
            "environment variable VIGIL_RUNTIME__EVENT_BUFFER_SIZE: invalid type: string \"lots\", \
             expected a nonzero usize\n  hint: this key takes an integer (a nonzero usize), \
             written without quotes, like `8192`"
        );

        let error = only_error("", &[("VIGIL_RUNTIME__EVNT_BUFFER_SIZE", "1")]);
        assert_eq!(error.origin, Origin::Env { var: "VIGIL_RUNTIME__EVNT_BUFFER_SIZE".to_owned() });
        assert_eq!(error.hint.as_deref(), Some("did you mean `VIGIL_RUNTIME__EVENT_BUFFER_SIZE`?"));

        let error = only_error("", &[("VIGIL_RUNTIM__LOG_LEVEL", "info")]);
        assert_eq!(error.hint.as_deref(), Some("did you mean `VIGIL_RUNTIME__LOG_LEVEL`?"));

        let error = only_error("", &[("VIGIL_LISTENERS__JSON_LINES__A__PATH", "8080")]);
        assert_eq!(
            error.hint.as_deref(),
            Some(
                "the value was read as TOML; quote it to pass it as a string, like \
                 `VIGIL_LISTENERS__JSON_LINES__A__PATH='\"...\"'`"
            )
        );
    }

    #[test]
    fn file_errors_come_before_environment_errors() {
        let errors = load_sample("[runtime]\nbogus = 1\n", &[("VIGIL_RUNTIME__ALSO_BOGUS", "1")])
            .unwrap_err();
        assert_eq!(errors.errors().len(), 1);
        assert_eq!(errors.errors()[0].origin, at(2, 1));
    }

    #[test]
    fn locations_count_characters_and_survive_any_offset() {
        let text = "a = \"é\"\nbé = 1\r\nlast";
        let location = Location::find(text, text.find("= 1").unwrap());
        assert_eq!((location.line, location.column), (2, 4));
        assert_eq!((location.before, location.after), ("bé ", "= 1"));
        let location = Location::find(text, usize::MAX);
        assert_eq!((location.line, location.column, location.after), (3, 5, ""));
        let location = Location::find(text, 6);
        assert_eq!((location.line, location.column), (1, 6));
    }

    #[test]
    fn lines_mask_secret_assignments_only() {
        let cases = [
            ("token = \"a \\\" b\" # note", "token = *** # note"),
            ("api.secret_key = 'x'", "api.secret_key = ***"),
            ("{ password = \"p\", user = \"u\" }", "{ password = ***, user = \"u\" }"),
            ("tokens = [\"a\", \"b\"]", "tokens = ***"),
            ("name = \"token = x\"", "name = \"token = x\""),
            ("port = 1 # token = x", "port = 1 # token = x"),
        ];
        for (line, expected) in cases {
            assert_eq!(mask_line(line), expected, "{line}");
        }
    }
}
