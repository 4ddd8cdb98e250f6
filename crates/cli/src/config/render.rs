//! Rendering the complete default configuration, commented from the configuration types' doc
//! comments, so the reference a user reads cannot drift from the code.
//!
//! [`render_default`] walks two things side by side: the JSON schema schemars derives for the
//! configuration type (for the order of keys, their doc comments, examples and accepted values)
//! and the type's `Default` value serialized to TOML (for what to write). Each key in the default
//! value is written with that value; each key absent from it (an `Option` that is `None`, a
//! skipped empty list) is written commented out, with the schema's example when there is one.
//! Structs become `[section]` tables, maps of structs become one `[section.name]` table per
//! instance, and everything else is written inline.
//!
//! The contract, tested below and relied on by `vigil config default | vigil config check -`:
//! the rendered text loads back, through [`crate::config::load()`], to a value equal to the
//! default.

use std::fmt::Write as _;

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value as Json;
use toml::{Table, Value};

use crate::config::env;

/// The width comments are wrapped at, `# ` included.
const WIDTH: usize = 98;

/// How deep sections absent from the default are expanded (recursive types stop earlier, at
/// their first repetition).
const MAX_DEPTH: usize = 8;

/// Renders `T::default()` as a complete, commented TOML configuration file.
///
/// The configuration type's fields need doc comments (they become the comments), and duration
/// fields need `#[schemars(with = "String")]` (see [`crate::config::duration`]). Enable
/// schemars' `preserve_order` feature so keys come in declaration order.
///
/// # Panics
///
/// If `T::default()` cannot be serialized to a TOML table, which is a bug in the configuration
/// type (a top-level value that is not a struct, or a map with non-string keys) that any test
/// calling this function catches.
pub fn render_default<T: Serialize + JsonSchema + Default>() -> String {
    let schema = schemars::schema_for!(T);
    let root = schema.as_value();
    let value = match Value::try_from(T::default()) {
        Ok(Value::Table(table)) => table,
        Ok(other) => panic!("the default configuration is a {}, not a table", other.type_str()),
        Err(err) => panic!("the default configuration cannot be written as TOML: {err}"),
    };
    let mut renderer =
        Renderer { root, out: String::new(), after_header: false, example: None, open: Vec::new() };
    renderer.table(&[], Some(renderer.resolve(root)), Some(&value), false, 0);

    let mut res = String::new();
    let mut intro = "Vigil configuration file.\n\n".to_owned();
    if let Some(description) = root.get("description").and_then(Json::as_str) {
        intro.push_str(description);
        intro.push_str("\n\n");
    }
    intro.push_str(
        "This is the complete default configuration: every key is shown with its default \
         value, and keys without a default are commented out, with an example where there is \
         one.\n\n\
         Every key can be overridden by an environment variable named after its path in upper \
         case, with the prefix VIGIL_ and a double underscore between the parts \
         (VIGIL_<SECTION>__<KEY>; VIGIL__<KEY> for a key outside any section). The value is read \
         as TOML, or as a plain string when it is not valid TOML. For example:",
    );
    comment(&mut res, &intro);
    let example =
        renderer.example.map_or_else(|| "VIGIL_SECTION__KEY=value".to_owned(), |(_, it)| it);
    let _ = write!(res, "#\n#     {example}\n");
    if !renderer.out.is_empty() {
        res.push('\n');
        res.push_str(&renderer.out);
    }
    res
}

/// The state of one rendering.
struct Renderer<'s> {
    /// The root schema, which `$ref`s point into.
    root: &'s Json,
    out: String,
    /// Whether the last line written is a table header.
    after_header: bool,
    /// The environment override example for the file's header, with its rank (lower is better).
    example: Option<(u8, String)>,
    /// The schemas of the sections being written, outermost first, to stop recursive types.
    open: Vec<&'s Json>,
}

/// How a key is written.
enum Shape<'s> {
    /// A struct: a `[section]`.
    Struct,
    /// A map of structs: one `[section.name]` per instance; holds the instances' schema.
    Map(&'s Json),
    /// Anything else: `key = value`.
    Inline,
}

/// A sub-table, written after the keys of its parent.
struct Section<'s, 'v> {
    key: String,
    doc: Option<&'s str>,
    schema: Option<&'s Json>,
    value: Option<&'v Table>,
    /// For a map of structs, the instances' schema.
    instances: Option<&'s Json>,
}

impl<'s> Renderer<'s> {
    /// Writes the keys of one table, then its sub-tables. `commented` writes everything as
    /// comments (a section absent from the default).
    fn table<'v>(
        &mut self,
        path: &[String],
        schema: Option<&'s Json>,
        value: Option<&'v Table>,
        commented: bool,
        depth: usize,
    ) {
        let mut keys: Vec<(&str, Option<&'s Json>)> = schema
            .and_then(|it| it.get("properties"))
            .and_then(Json::as_object)
            .map(|props| props.iter().map(|(key, it)| (key.as_str(), Some(it))).collect())
            .unwrap_or_default();
        // Keys the schema does not describe still have to round-trip.
        for key in value.into_iter().flat_map(Table::keys) {
            if !keys.iter().any(|(it, _)| it == key) {
                keys.push((key.as_str(), None));
            }
        }

        let mut sections = Vec::new();
        for (key, prop) in keys {
            let resolved = prop.map(|it| self.resolve(it));
            let doc = prop.and_then(|it| self.description(it));
            let item = value.and_then(|it| it.get(key));
            let shape = resolved.map_or(Shape::Inline, |it| self.shape(it));
            let section = |value: Option<&'v Table>, instances: Option<&'s Json>| Section {
                key: key.to_owned(),
                doc,
                schema: resolved,
                value,
                instances,
            };
            match (item, shape) {
                (None, Shape::Struct) => sections.push(section(None, None)),
                (Some(Value::Table(table)), Shape::Struct) => {
                    sections.push(section(Some(table), None));
                }
                (None, Shape::Map(instances)) => sections.push(section(None, Some(instances))),
                (Some(Value::Table(table)), Shape::Map(instances))
                    if table.values().all(Value::is_table) =>
                {
                    sections.push(section(Some(table), Some(instances)));
                }
                (Some(Value::Table(table)), _) if prop.is_none() => {
                    sections.push(section(Some(table), None));
                }
                _ => self.key(path, key, doc, resolved, item, commented),
            }
        }
        for section in sections {
            self.section(path, &section, commented, depth);
        }
    }

    /// Writes `key = value` (or a commented-out line when there is no value), after its doc.
    fn key(
        &mut self,
        path: &[String],
        key: &str,
        doc: Option<&str>,
        schema: Option<&'s Json>,
        value: Option<&Value>,
        commented: bool,
    ) {
        self.gap();
        if let Some(doc) = doc {
            comment(&mut self.out, doc);
        }
        let values = schema.and_then(|it| self.enum_values(it));
        if let Some(values) = &values {
            comment(&mut self.out, &describe_values(values));
        }
        let name = format_key(key);
        let line = match value.map(|it| (it, inline(it))) {
            Some((value, Some(text))) => {
                if !commented {
                    self.offer_example(path, key, value, &text);
                }
                let prefix = if commented { "# " } else { "" };
                format!("{prefix}{name} = {text}")
            }
            Some((_, None)) => format!("# {name} =  (cannot be written as TOML)"),
            None => match schema.and_then(|it| self.example(it)).and_then(|it| inline(&it)) {
                Some(example) if !example.contains('\n') => format!("# {name} = {example}"),
                _ => match schema.and_then(type_name).filter(|_| values.is_none()) {
                    Some(kind) => format!("# {name} =  (unset; takes {kind})"),
                    None => format!("# {name} =  (unset)"),
                },
            },
        };
        self.line(&line);
    }

    /// Writes a sub-table: a struct's `[section]`, or one `[section.name]` per map instance.
    fn section(
        &mut self,
        path: &[String],
        section: &Section<'s, '_>,
        commented: bool,
        depth: usize,
    ) {
        let mut path = path.to_vec();
        path.push(section.key.clone());
        let commented = commented || section.value.is_none();
        let schema = section.instances.or(section.schema);
        let recursive =
            schema.is_some_and(|it| self.open.iter().any(|open| std::ptr::eq(*open, it)));
        if commented && (depth >= MAX_DEPTH || recursive) {
            return;
        }
        self.open.extend(schema);
        self.section_body(&path, section, commented, depth);
        if schema.is_some() {
            self.open.pop();
        }
    }

    fn section_body(
        &mut self,
        path: &[String],
        section: &Section<'s, '_>,
        commented: bool,
        depth: usize,
    ) {
        let Some(instances) = section.instances else {
            self.section_gap();
            if let Some(doc) = section.doc {
                comment(&mut self.out, doc);
            }
            self.header(path, None, commented);
            self.table(path, section.schema, section.value, commented, depth + 1);
            return;
        };
        let instance_doc = self.description(instances);
        let docs = |first: bool| {
            let mut res = String::new();
            if first && let Some(doc) = section.doc {
                res.push_str(doc);
                res.push_str("\n\n");
            }
            res.push_str(instance_doc.unwrap_or_default());
            res
        };
        let Some(table) = section.value.filter(|it| !it.is_empty()) else {
            self.section_gap();
            comment(&mut self.out, &docs(true));
            self.header(path, Some("<name>"), true);
            self.table(path, Some(instances), None, true, depth + 1);
            return;
        };
        for (idx, (name, value)) in table.iter().enumerate() {
            self.section_gap();
            comment(&mut self.out, &docs(idx == 0));
            let mut path = path.to_vec();
            path.push(name.clone());
            self.header(&path, None, commented);
            self.table(&path, Some(instances), value.as_table(), commented, depth + 1);
        }
    }

    fn header(&mut self, path: &[String], placeholder: Option<&str>, commented: bool) {
        let mut parts: Vec<String> = path.iter().map(|it| format_key(it)).collect();
        parts.extend(placeholder.map(str::to_owned));
        let prefix = if commented { "# " } else { "" };
        self.line(&format!("{prefix}[{}]", parts.join(".")));
        self.after_header = true;
    }

    fn line(&mut self, line: &str) {
        self.out.push_str(line);
        self.out.push('\n');
        self.after_header = false;
    }

    /// Separates the next key from the previous one with a blank line (but not from its table's
    /// header).
    fn gap(&mut self) {
        if !self.after_header {
            self.section_gap();
        }
    }

    /// Separates the next section from whatever comes before it with a blank line.
    fn section_gap(&mut self) {
        if !self.out.is_empty() && !self.out.ends_with("\n\n") {
            self.out.push('\n');
        }
    }

    /// Keeps `path.key = value` as the header's example if it is the best one so far: keys in
    /// sections before keys outside any, integers and booleans before strings, and only strings
    /// that need no quoting in a shell or as a variable value.
    fn offer_example(&mut self, path: &[String], key: &str, value: &Value, text: &str) {
        let (rank, text) = match value {
            Value::Integer(_) | Value::Boolean(_) => (0, text),
            Value::String(it)
                if !it.is_empty()
                    && it.parse::<Value>().is_err()
                    && it.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:".contains(c)) =>
            {
                (1, it.as_str())
            }
            _ => return,
        };
        let rank = if path.is_empty() { rank + 2 } else { rank };
        let mut full = path.to_vec();
        full.push(key.to_owned());
        let Some(var) = env::var_name(&full) else { return };
        if self.example.as_ref().is_none_or(|(best, _)| rank < *best) {
            self.example = Some((rank, format!("{var}={text}")));
        }
    }

    /// The schema and every schema it leads to through `$ref`s and single-choice combinators.
    fn chain(&self, schema: &'s Json) -> Vec<&'s Json> {
        let mut res = vec![schema];
        let mut current = schema;
        while res.len() < 16
            && let Some(next) = self.step(current)
        {
            res.push(next);
            current = next;
        }
        res
    }

    fn step(&self, schema: &'s Json) -> Option<&'s Json> {
        let object = schema.as_object()?;
        if let Some(reference) = object.get("$ref").and_then(Json::as_str) {
            return reference.strip_prefix('#').and_then(|pointer| self.root.pointer(pointer));
        }
        ["allOf", "anyOf", "oneOf"].iter().find_map(|combinator| {
            let items = object.get(*combinator)?.as_array()?;
            let mut choices = items.iter().filter(|it| !is_null(it));
            match (choices.next(), choices.next()) {
                (Some(only), None) => Some(only),
                _ => None,
            }
        })
    }

    /// The schema that describes the value itself.
    fn resolve(&self, schema: &'s Json) -> &'s Json {
        self.chain(schema).last().copied().unwrap_or(schema)
    }

    /// The first description along the chain: a field's own doc comment, else its type's.
    fn description(&self, schema: &'s Json) -> Option<&'s str> {
        self.chain(schema).into_iter().find_map(|it| it.get("description")?.as_str())
    }

    /// An example value: the first of the schema's `examples`, else its non-null `default`.
    fn example(&self, schema: &'s Json) -> Option<Value> {
        self.chain(schema).into_iter().find_map(|it| {
            let example = it.get("examples").and_then(|it| it.as_array()?.first());
            example.or_else(|| it.get("default")).and_then(json_to_toml)
        })
    }

    fn shape(&self, schema: &'s Json) -> Shape<'s> {
        if schema.get("properties").is_some_and(Json::is_object) {
            return Shape::Struct;
        }
        if let Some(instances) = schema.get("additionalProperties").filter(|it| it.is_object()) {
            let instances = self.resolve(instances);
            if instances.get("properties").is_some_and(Json::is_object) {
                return Shape::Map(instances);
            }
        }
        Shape::Inline
    }

    /// The values an enum accepts, with their descriptions, written as TOML.
    fn enum_values(&self, schema: &'s Json) -> Option<Vec<(String, Option<&'s str>)>> {
        let of_one = |schema: &'s Json| -> Option<Vec<(String, Option<&'s str>)>> {
            let description = schema.get("description").and_then(Json::as_str);
            let values = match schema.get("const") {
                Some(value) => vec![value],
                None => schema.get("enum")?.as_array()?.iter().collect(),
            };
            values
                .into_iter()
                .filter(|it| !it.is_null())
                .map(|it| Some((inline(&json_to_toml(it)?)?, description)))
                .collect()
        };
        if let Some(values) = of_one(schema) {
            return Some(values);
        }
        let choices = ["oneOf", "anyOf"].iter().find_map(|it| schema.get(*it)?.as_array())?;
        let mut res = Vec::new();
        for choice in choices.iter().filter(|it| !is_null(it)) {
            res.extend(of_one(self.resolve(choice))?);
        }
        (!res.is_empty()).then_some(res)
    }
}

/// Writes `text` as `# ` comment lines wrapped at [`WIDTH`]: paragraphs are kept apart by a `#`
/// line, list items and fenced code keep their own lines.
fn comment(out: &mut String, text: &str) {
    let mut lines: Vec<String> = Vec::new();
    let mut paragraph = String::new();
    let mut fenced = false;
    for line in text.lines() {
        let trimmed = line.trim();
        let list_item = trimmed.starts_with("- ") || trimmed.starts_with("* ");
        if fenced || trimmed.is_empty() || trimmed.starts_with("```") || list_item {
            wrap(&mut lines, &paragraph);
            paragraph.clear();
        }
        if trimmed.starts_with("```") {
            fenced = !fenced;
            lines.push(line.to_owned());
        } else if fenced {
            lines.push(line.to_owned());
        } else if trimmed.is_empty() {
            if lines.last().is_some_and(|it| !it.is_empty()) {
                lines.push(String::new());
            }
        } else {
            if !paragraph.is_empty() {
                paragraph.push(' ');
            }
            paragraph.push_str(trimmed);
        }
    }
    wrap(&mut lines, &paragraph);
    while lines.last().is_some_and(String::is_empty) {
        lines.pop();
    }
    for line in lines {
        if line.is_empty() {
            out.push_str("#\n");
        } else {
            let _ = writeln!(out, "# {line}");
        }
    }
}

/// Appends `text` to `lines`, greedily wrapped to fit [`WIDTH`] after the `# `.
fn wrap(lines: &mut Vec<String>, text: &str) {
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > WIDTH - 2 {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
}

/// A sentence, or a list, of the values an enum accepts.
fn describe_values(values: &[(String, Option<&str>)]) -> String {
    if values.iter().all(|(_, description)| description.is_none()) {
        let names: Vec<&str> = values.iter().map(|(name, _)| name.as_str()).collect();
        return format!("Possible values: {}.", names.join(", "));
    }
    let mut res = "Possible values:".to_owned();
    for (name, description) in values {
        let _ = match description {
            Some(description) => write!(res, "\n- {name}: {description}"),
            None => write!(res, "\n- {name}"),
        };
    }
    res
}

/// What kind of value a schema takes, for a key without a default or example.
fn type_name(schema: &Json) -> Option<&'static str> {
    let kind = match schema.get("type")? {
        Json::String(it) => it.as_str(),
        Json::Array(kinds) => kinds.iter().filter_map(Json::as_str).find(|it| *it != "null")?,
        _ => return None,
    };
    Some(match kind {
        "string" => "a string",
        "integer" => "an integer",
        "number" => "a number",
        "boolean" => "true or false",
        "array" => "an array",
        "object" => "a table",
        _ => return None,
    })
}

fn is_null(schema: &Json) -> bool {
    schema.get("type").and_then(Json::as_str) == Some("null")
}

/// A TOML value for a JSON one (`null` has none).
fn json_to_toml(json: &Json) -> Option<Value> {
    Some(match json {
        Json::Null => return None,
        Json::Bool(it) => Value::Boolean(*it),
        Json::Number(it) => match it.as_i64() {
            Some(int) => Value::Integer(int),
            None => Value::Float(it.as_f64()?),
        },
        Json::String(it) => Value::String(it.clone()),
        Json::Array(items) => Value::Array(items.iter().filter_map(json_to_toml).collect()),
        Json::Object(map) => Value::Table(
            map.iter().filter_map(|(key, it)| Some((key.clone(), json_to_toml(it)?))).collect(),
        ),
    })
}

/// A value written inline, as on the right of `key = `.
fn inline(value: &Value) -> Option<String> {
    let mut res = String::new();
    value.serialize(toml::ser::ValueSerializer::new(&mut res)).ok()?;
    Some(res)
}

/// A key, bare when TOML allows it, else quoted.
fn format_key(key: &str) -> String {
    let bare =
        !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if bare {
        key.to_owned()
    } else {
        inline(&Value::String(key.to_owned())).unwrap_or_else(|| format!("{key:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{
        fixture::Sample,
        load::{ConfigSource, load},
    };

    fn rendered() -> String {
        render_default::<Sample>()
    }

    /// The words of the rendered comments, so wrapped sentences can be searched for.
    fn comments(text: &str) -> String {
        let lines = text.lines().filter_map(|it| it.strip_prefix('#'));
        lines.flat_map(str::split_whitespace).collect::<Vec<_>>().join(" ")
    }

    #[test]
    fn the_default_round_trips() {
        let text = rendered();
        let source = ConfigSource::new("<rendered>", text.as_str());
        let loaded: Sample = load(&source, &[]).unwrap_or_else(|err| panic!("{err}\n\n{text}"));
        assert_eq!(loaded, Sample::default());
        assert_eq!(toml::to_string(&loaded).unwrap(), toml::to_string(&Sample::default()).unwrap());
    }

    #[test]
    fn every_doc_comment_is_rendered() {
        /// The doc comments of every field and enum variant in a schema.
        fn field_docs<'a>(json: &'a Json, out: &mut Vec<&'a str>) {
            match json {
                Json::Object(map) => {
                    let props = map.get("properties").and_then(Json::as_object);
                    let fields = props.into_iter().flat_map(|it| it.values());
                    let variants = map.get("oneOf").and_then(Json::as_array).into_iter().flatten();
                    out.extend(
                        fields.chain(variants).filter_map(|it| it.get("description")?.as_str()),
                    );
                    map.values().for_each(|it| field_docs(it, out));
                }
                Json::Array(items) => items.iter().for_each(|it| field_docs(it, out)),
                _ => {}
            }
        }
        let schema = schemars::schema_for!(Sample);
        let mut docs = Vec::new();
        field_docs(schema.as_value(), &mut docs);
        assert!(docs.len() >= 20, "the fixture documents every field: {docs:?}");
        let comments = comments(&rendered());
        for doc in docs {
            let doc = doc.split_whitespace().collect::<Vec<_>>().join(" ");
            assert!(comments.contains(&doc), "missing {doc:?} in:\n{comments}");
        }
    }

    #[test]
    fn layout_follows_the_types() {
        let text = rendered();
        let expected_order = [
            "# Vigil configuration file.",
            "#     VIGIL_RUNTIME__EVENT_BUFFER_SIZE=4096",
            "# hostname = \"web-1\"",
            "[runtime]",
            "event_buffer_size = 4096",
            "health_interval = \"30s\"",
            "# shutdown_timeout = \"10s\"",
            "# - \"debug\": Everything, including each event's path through the bus.",
            "log_level = \"info\"",
            "[listeners]",
            "# Listeners that write each event as one JSON line, by name.",
            "#",
            "# A listener that writes each event it receives as one line of JSON.",
            "[listeners.json_lines.stdout]",
            "path = \"-\"",
            "extra_fields = {}",
            "[listeners.json_lines.stdout.filter]",
            "# kinds =  (unset; takes an array)",
            "# min_level =  (unset)",
            "[api]",
            "url = \"https://api.example.invalid\"",
            "# token =  (unset; takes a string)",
            "port = 443",
            "# [proxy]",
            "# url = \"\"",
            "# connect_timeout = \"5s\"",
        ];
        let mut rest = text.as_str();
        for line in expected_order {
            let found = rest.find(&format!("{line}\n"));
            let Some(idx) = found.filter(|idx| *idx == 0 || rest.as_bytes()[idx - 1] == b'\n')
            else {
                panic!("missing line {line:?} (or out of order) in:\n{text}");
            };
            rest = &rest[idx..];
        }
        assert!(text.lines().all(|it| it.chars().count() <= WIDTH), "{text}");
    }

    #[test]
    fn the_header_example_works() {
        let text = rendered();
        let example = text.lines().find_map(|it| it.strip_prefix("#     ")).unwrap();
        let (var, value) = example.split_once('=').unwrap();
        let env = [(var.to_owned(), "12".to_owned())];
        let loaded: Sample = load(&ConfigSource::new("<rendered>", text.as_str()), &env).unwrap();
        assert_eq!(value, "4096");
        assert_eq!(loaded.runtime.event_buffer_size.get(), 12);
    }

    #[test]
    fn empty_maps_show_a_commented_instance() {
        #[derive(Debug, Default, PartialEq, Serialize, serde::Deserialize, JsonSchema)]
        #[serde(deny_unknown_fields, default)]
        struct Empty {
            /// Named listeners.
            listeners: std::collections::BTreeMap<String, crate::config::fixture::ApiConfig>,
        }
        let text = render_default::<Empty>();
        assert!(
            text.contains(
                "# Named listeners.\n#\n# Access to the upstream API.\n# [listeners.<name>]\n\
                 # The API's base URL.\n# url = \"https://api.example.invalid\"\n"
            ),
            "{text}"
        );
        let loaded: Empty = load(&ConfigSource::new("<rendered>", text.as_str()), &[]).unwrap();
        assert_eq!(loaded, Empty::default());
    }

    #[test]
    fn comments_wrap_and_keep_paragraphs_and_lists() {
        let mut out = String::new();
        let long = "word ".repeat(40);
        comment(&mut out, &format!("{long}\n\nSecond paragraph:\n- one\n- two\n\n\n"));
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines.iter().all(|it| it.len() <= WIDTH), "{out}");
        assert_eq!(lines.len(), 7, "{out}");
        assert_eq!(lines[3..], ["#", "# Second paragraph:", "# - one", "# - two"], "{out}");
    }

    #[test]
    fn keys_are_quoted_only_when_needed() {
        assert_eq!(format_key("json_lines"), "json_lines");
        assert_eq!(format_key("my-alerts"), "my-alerts");
        assert_eq!(format_key("my alerts"), "\"my alerts\"");
        assert_eq!(format_key(""), "\"\"");
    }
}
