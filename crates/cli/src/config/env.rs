//! Environment overrides: `VIGIL_RUNTIME__EVENT_BUFFER_SIZE=8192` sets `runtime.event_buffer_size`.
//!
//! Containers and service managers configure programs through the environment, so every key of
//! the file can be set there too. A variable applies when its name starts with `VIGIL_` and
//! contains a double underscore; the rest of the name, split at each `__` and lowercased, is the
//! key path (`VIGIL_LISTENERS__JSON_LINES__ALERTS__PATH` sets `listeners.json_lines.alerts.path`).
//! A key outside any section takes a double underscore after the prefix (`VIGIL__HOSTNAME` sets
//! `hostname`). Variables such as `VIGIL_LOG` or `VIGIL_CONFIG` have no `__` and so stay free for
//! the command line's own use. Since names are lowercased, a map instance whose name has capital
//! letters cannot be reached from the environment.
//!
//! The value is read as a TOML value (`8192`, `true`, `["a", "b"]`, `{ kinds = ["log"] }`), and
//! when it is not one, as a string, so `5s` and `/tmp/x` need no quotes. Text that happens to be
//! valid TOML of another type (`8080`, `true`, `nan`, `2024-01-01`) is taken as that type; quote
//! it (`VIGIL_X__Y='"8080"'`) to pass it as a string.
//!
//! Overrides are merged into the parsed file before it is deserialized, so they win over it;
//! missing tables on the way are created, which is how a variable can add an instance to a map
//! of named instances. A table-valued override replaces the table it names as a whole.

use toml::{Table, Value};

use crate::config::{ConfigError, ConfigErrors, Origin};

/// The prefix every override variable starts with.
const PREFIX: &str = "VIGIL_";

/// What separates the key path's segments in a variable name.
const SEPARATOR: &str = "__";

/// One environment variable that sets a configuration key.
#[derive(Debug, Clone, PartialEq)]
pub struct Override {
    /// The variable's name, as it was set (`VIGIL_RUNTIME__EVENT_BUFFER_SIZE`).
    pub var: String,
    /// The key path it sets, lowercased (`["runtime", "event_buffer_size"]`).
    pub path: Vec<String>,
    /// The variable's text read as a TOML value, or the text itself as a string.
    pub value: Value,
}

/// Picks the overrides out of environment variables (pass `std::env::vars_os()` converted to
/// strings, or a fixed list in tests).
///
/// Variables without the `VIGIL_` prefix or without a `__` in their name are ignored; a name
/// starting with `VIGIL__` sets a key outside any section (`VIGIL__HOSTNAME`). The result
/// is sorted by path length, then by name, which is the order [`apply_overrides`] applies them
/// in: a variable that sets a table comes before the variables that set keys inside it.
pub fn overrides_from(vars: impl IntoIterator<Item = (String, String)>) -> Vec<Override> {
    let mut res: Vec<Override> = vars
        .into_iter()
        .filter_map(|(var, text)| {
            let rest = var.strip_prefix(PREFIX)?;
            let rest = match rest.strip_prefix('_') {
                Some(top_level) => top_level,
                None if rest.contains(SEPARATOR) => rest,
                None => return None,
            };
            let path = rest.split(SEPARATOR).map(str::to_lowercase).collect();
            Some(Override { path, value: parse_value(&text), var })
        })
        .collect();
    res.sort_by(|a, b| a.path.len().cmp(&b.path.len()).then_with(|| a.var.cmp(&b.var)));
    res
}

/// Merges `overrides` into a parsed configuration file, in order, creating missing tables.
///
/// Every override that cannot be applied is reported, each attributed to its variable: an empty
/// key segment (`VIGIL_A____B`), a path through a key that is not a table, or a plain value that
/// would replace a whole table.
pub fn apply_overrides(table: &mut Table, overrides: &[Override]) -> Result<(), ConfigErrors> {
    let errors: Vec<ConfigError> =
        overrides.iter().filter_map(|it| apply_one(table, it).err()).collect();
    if errors.is_empty() { Ok(()) } else { Err(ConfigErrors::from(errors)) }
}

/// The environment variable name that would set the key at `path`, if there is one.
pub(crate) fn var_name(path: &[String]) -> Option<String> {
    let expressible = |segment: &String| {
        !segment.is_empty()
            && !segment.contains(SEPARATOR)
            && segment.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    };
    match path {
        [] => None,
        _ if !path.iter().all(expressible) => None,
        [key] => Some(format!("{PREFIX}_{}", key.to_uppercase())),
        _ => Some(format!("{PREFIX}{}", path.join(SEPARATOR).to_uppercase())),
    }
}

/// Reads a variable's text as a TOML value, falling back to the text as a string.
fn parse_value(text: &str) -> Value {
    text.trim().parse::<Value>().unwrap_or_else(|_| Value::String(text.to_owned()))
}

fn apply_one(table: &mut Table, it: &Override) -> Result<(), ConfigError> {
    let error = |message: String, hint: Option<String>| ConfigError {
        origin: Origin::Env { var: it.var.clone() },
        message,
        hint,
        snippet: None,
    };
    let (Some((leaf, parents)), false) =
        (it.path.split_last(), it.path.iter().any(String::is_empty))
    else {
        return Err(error(
            "the variable name has an empty key".to_owned(),
            Some("separate keys with exactly two underscores, like `VIGIL_RUNTIME__EVENT_BUFFER_SIZE`".to_owned()),
        ));
    };
    let mut current = table;
    for (idx, segment) in parents.iter().enumerate() {
        let entry = current.entry(segment.clone()).or_insert_with(|| Value::Table(Table::new()));
        let Value::Table(next) = entry else {
            let key = it.path[..=idx].join(".");
            return Err(error(
                format!("cannot set a key inside `{key}`, which is not a table"),
                None,
            ));
        };
        current = next;
    }
    if current.get(leaf).is_some_and(Value::is_table) && !it.value.is_table() {
        let key = it.path.join(".");
        return Err(error(
            format!("cannot replace the table `{key}` with a single value"),
            Some(format!("set one of its keys instead, like `{}__<KEY>`", it.var)),
        ));
    }
    current.insert(leaf.clone(), it.value.clone());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(var, value)| ((*var).to_owned(), (*value).to_owned())).collect()
    }

    fn apply(file: &str, pairs: &[(&str, &str)]) -> Result<Table, Vec<String>> {
        let mut table: Table = file.parse().unwrap();
        apply_overrides(&mut table, &overrides_from(vars(pairs)))
            .map_err(|errors| errors.into_iter().map(|it| it.to_string()).collect::<Vec<_>>())?;
        Ok(table)
    }

    #[test]
    fn only_prefixed_variables_with_a_separator_apply() {
        let overrides = overrides_from(vars(&[
            ("VIGIL_LOG", "debug"),
            ("VIGIL_CONFIG", "/etc/vigil.toml"),
            ("PATH", "/usr/bin"),
            ("OTHER__KEY", "1"),
            ("vigil_runtime__x", "1"),
            ("VIGIL_LISTENERS__JSON_LINES__ALERTS__PATH", "/tmp/x"),
            ("VIGIL_RUNTIME__EVENT_BUFFER_SIZE", "8192"),
            ("VIGIL__HOSTNAME", "web-1"),
        ]));
        let paths: Vec<String> = overrides.iter().map(|it| it.path.join(".")).collect();
        assert_eq!(
            paths,
            ["hostname", "runtime.event_buffer_size", "listeners.json_lines.alerts.path"]
        );
        assert_eq!(overrides[1].var, "VIGIL_RUNTIME__EVENT_BUFFER_SIZE");
        assert_eq!(overrides[1].value, Value::Integer(8192));
    }

    #[test]
    fn values_are_toml_or_else_strings() {
        let cases = [
            ("8192", Value::Integer(8192)),
            (" 8192 ", Value::Integer(8192)),
            ("true", Value::Boolean(true)),
            ("0.5", Value::Float(0.5)),
            (r#"["a","b"]"#, Value::Array(vec!["a".into(), "b".into()])),
            (r#""8080""#, Value::String("8080".into())),
            ("5s", Value::String("5s".into())),
            ("/tmp/x", Value::String("/tmp/x".into())),
            ("info", Value::String("info".into())),
            ("", Value::String(String::new())),
            ("1\nextra = 2", Value::String("1\nextra = 2".into())),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_value(text), expected, "{text:?}");
        }
        let Value::Table(filter) = parse_value(r#"{ kinds = ["log"] }"#) else {
            panic!("an inline table is a table");
        };
        assert_eq!(filter.get("kinds"), Some(&Value::Array(vec!["log".into()])));
    }

    #[test]
    fn overrides_win_and_create_missing_tables() {
        let file = "[runtime]\nevent_buffer_size = 1024\nname = \"file\"\n";
        let table = apply(
            file,
            &[
                ("VIGIL_RUNTIME__EVENT_BUFFER_SIZE", "8192"),
                ("VIGIL_LISTENERS__JSON_LINES__ALERTS__PATH", "/tmp/x"),
            ],
        )
        .unwrap();
        let expected: Table = r#"
            [runtime]
            event_buffer_size = 8192
            name = "file"
            [listeners.json_lines.alerts]
            path = "/tmp/x"
        "#
        .parse()
        .unwrap();
        assert_eq!(table, expected);
    }

    #[test]
    fn parents_apply_before_children() {
        let table = apply(
            "",
            &[("VIGIL_A__B__C", "2"), ("VIGIL_A__B", "{ c = 1, d = 1 }"), ("VIGIL_A__B__E", "3")],
        )
        .unwrap();
        assert_eq!(table, "a.b = { c = 2, d = 1, e = 3 }".parse::<Table>().unwrap());
    }

    #[test]
    fn bad_overrides_are_errors_naming_the_variable() {
        let file = "[runtime]\nevent_buffer_size = 1024\n";
        let errors = apply(
            file,
            &[
                ("VIGIL_RUNTIME__EVENT_BUFFER_SIZE__X", "1"),
                ("VIGIL_LISTENERS__JSON_LINES", "5"),
                ("VIGIL_RUNTIME____X", "1"),
                ("VIGIL_RUNTIME__OK", "1"),
            ],
        )
        .unwrap_err();
        assert_eq!(
            errors,
            [
                "environment variable VIGIL_RUNTIME__EVENT_BUFFER_SIZE__X: cannot set a key inside \
                 `runtime.event_buffer_size`, which is not a table",
                "environment variable VIGIL_RUNTIME____X: the variable name has an empty key\n  \
                 hint: separate keys with exactly two underscores, like \
                 `VIGIL_RUNTIME__EVENT_BUFFER_SIZE`",
            ]
        );

        let errors = apply("[listeners.json_lines.a]\n", &[("VIGIL_LISTENERS__JSON_LINES", "5")])
            .unwrap_err();
        assert_eq!(
            errors,
            ["environment variable VIGIL_LISTENERS__JSON_LINES: cannot replace the table \
                 `listeners.json_lines` with a single value\n  hint: set one of its keys instead, \
                 like `VIGIL_LISTENERS__JSON_LINES__<KEY>`"]
        );
    }

    #[test]
    fn var_names_exist_only_for_expressible_paths() {
        let path = |it: &str| it.split('.').map(str::to_owned).collect::<Vec<_>>();
        assert_eq!(
            var_name(&path("runtime.event_buffer_size")).as_deref(),
            Some("VIGIL_RUNTIME__EVENT_BUFFER_SIZE")
        );
        assert_eq!(var_name(&path("top_level")).as_deref(), Some("VIGIL__TOP_LEVEL"));
        assert_eq!(var_name(&path("listeners.json_lines.My-Alerts.path")), None);
    }
}
