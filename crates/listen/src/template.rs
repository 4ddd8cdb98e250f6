//! Message templates shared by every listener: minijinja source checked when the configuration
//! is loaded, rendered per event with one documented context (`docs/specs/template.md`).
//!
//! A [`Template`] is a configuration value: it deserialises from a string and compiles it at once,
//! so a syntax error is a configuration error that the loader reports with the key's file, line
//! and column (exit status 2), naming the listener instance through the key's path.
//!
//! At render time the context is:
//!
//! - `event` — the event's JSON (`event.payload.ip`, `event.severity`, `event.payload.data.count`);
//! - `summary` — the payload's one-line summary (control characters made safe);
//! - `kind`, `source`, `host`, `severity`, `timestamp` (RFC 3339), `id`;
//! - `name` — a finding's name, `message` — a finding's own rendered message (empty otherwise).
//!
//! A missing field renders as an empty string, however deep the lookup (`{{ event.payload.nope.x }}`),
//! and rendering never panics: a failure (a filter applied to the wrong type, the fuel limit
//! reached by a runaway loop) is an error the listener reports, falling back to the summary where
//! it must still say something. Output is capped at [`MAX_RENDERED_BYTES`].

use std::{borrow::Cow, fmt, sync::Arc};

use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value};
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};
use vigil_event::{Event, Payload, one_line};

use crate::ListenError;

/// The longest rendered text kept, in bytes; longer output is cut at a character boundary.
pub const MAX_RENDERED_BYTES: usize = 64 * 1024;

/// Instructions one render may execute before it is stopped (a runaway `for` loop).
const FUEL: u64 = 1_000_000;

/// Name of the plain-text form of a template in its environment.
const TEXT: &str = "text";
/// Name of the JSON form: values are printed as JSON (strings quoted and escaped).
const JSON: &str = "body.json";

/// A minijinja template from the configuration, compiled when it is loaded.
///
/// In TOML it is a plain string: `message = "{{ summary }} ({{ event.payload.ip }})"`.
#[derive(Clone)]
pub struct Template {
    source: String,
    env: Arc<Environment<'static>>,
}

impl Template {
    /// Compiles `source`; fails with [`ListenError::TemplateSyntax`] when it does not parse.
    pub fn new(source: impl Into<String>) -> Result<Template, ListenError> {
        let source = source.into();
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Chainable);
        env.set_fuel(Some(FUEL));
        env.set_auto_escape_callback(|name| {
            if name == JSON { AutoEscape::Json } else { AutoEscape::None }
        });
        env.add_template_owned(TEXT, source.clone())
            .map_err(|err| ListenError::TemplateSyntax(describe(&err)))?;
        env.add_template_owned(JSON, source.clone())
            .map_err(|err| ListenError::TemplateSyntax(describe(&err)))?;
        Ok(Template { source, env: Arc::new(env) })
    }

    /// The template's source text.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Renders the template for `event` as plain text.
    pub fn render(&self, event: &Event) -> Result<String, ListenError> {
        self.render_named(TEXT, event)
    }

    /// Renders the template for `event` with every printed value written as JSON (strings quoted
    /// and escaped), for a JSON body such as `{"ip": {{ event.payload.ip }}}`; the result must
    /// parse as JSON.
    pub fn render_json(&self, event: &Event) -> Result<serde_json::Value, ListenError> {
        let text = self.render_named(JSON, event)?;
        serde_json::from_str(&text).map_err(|err| ListenError::InvalidJson(err.to_string()))
    }

    /// Renders the template as plain text, or, when rendering fails, logs why and returns the
    /// event's summary, so a listener always has a message.
    pub fn render_or_summary(&self, event: &Event, listener: &str) -> String {
        self.render(event).unwrap_or_else(|err| {
            tracing::warn!(listener, error = %err, event_id = %event.id, "Could not render a template; using the summary");
            summary(event)
        })
    }

    fn render_named(&self, name: &str, event: &Event) -> Result<String, ListenError> {
        let template =
            self.env.get_template(name).map_err(|err| ListenError::Render(describe(&err)))?;
        let mut text =
            template.render(context(event)).map_err(|err| ListenError::Render(describe(&err)))?;
        truncate(&mut text, MAX_RENDERED_BYTES);
        Ok(text)
    }
}

impl fmt::Debug for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Template").field(&self.source).finish()
    }
}

impl PartialEq for Template {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl TryFrom<String> for Template {
    type Error = ListenError;

    fn try_from(source: String) -> Result<Self, Self::Error> {
        Template::new(source)
    }
}

impl Serialize for Template {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.source)
    }
}

impl<'de> Deserialize<'de> for Template {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let source = String::deserialize(deserializer)?;
        Template::new(source).map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Template {
    fn schema_name() -> Cow<'static, str> {
        "Template".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        String::json_schema(generator)
    }

    fn inline_schema() -> bool {
        true
    }
}

/// The event's one-line summary: what a template's `summary` is, and the fallback message.
pub fn summary(event: &Event) -> String {
    let text = match &event.payload {
        Payload::Finding(finding) => format!("{}: {}", finding.name, finding.summary),
        other => other.summary(),
    };
    one_line(&text, 1000)
}

/// The render context of `event` (see the module documentation).
pub fn context(event: &Event) -> Value {
    let json = serde_json::to_value(event).unwrap_or(serde_json::Value::Null);
    let (name, message) = match &event.payload {
        Payload::Finding(finding) => {
            (finding.name.as_str(), finding.message.as_deref().unwrap_or_default())
        }
        _ => ("", ""),
    };
    minijinja::context! {
        event => Value::from_serialize(&json),
        summary => summary(event),
        kind => event.kind().as_str(),
        source => &*event.source,
        host => &*event.host,
        severity => event.severity.as_str(),
        timestamp => event.timestamp.to_rfc3339(),
        id => event.id.to_string(),
        name => name,
        message => message,
    }
}

/// minijinja's error with its detail (the line and what went wrong), on one line.
fn describe(err: &minijinja::Error) -> String {
    let mut text = err.to_string();
    if let Some(detail) = err.detail()
        && !text.contains(detail)
    {
        text = format!("{text}: {detail}");
    }
    one_line(&text, 500)
}

/// Cuts `text` to at most `max` bytes at a character boundary.
fn truncate(text: &mut String, max: usize) {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
}

#[cfg(test)]
mod tests {
    use vigil_event::{Finding, FindingLevel, LogEvent, Severity};

    use super::*;

    fn log_event() -> Event {
        let log = LogEvent {
            action: Some("failed_password".into()),
            ip: Some("203.0.113.9".parse().unwrap()),
            user: Some("root; rm -rf /".into()),
            ..LogEvent::new("sshd", "Failed password for root")
        };
        Event::new("web-1", "auth_log", Payload::Log(log)).with_severity(Severity::Warning)
    }

    #[test]
    fn the_context_exposes_the_event_json_and_convenience_names() {
        let template = Template::new(
            "{{ kind }}|{{ source }}|{{ host }}|{{ severity }}|{{ summary }}|\
             {{ event.payload.ip }}|{{ event.severity }}|{{ event.payload.user }}|{{ name }}",
        )
        .unwrap();
        let text = template.render(&log_event()).unwrap();
        assert_eq!(
            text,
            "log|auth_log|web-1|warning|Failed password for root|203.0.113.9|warning|root; rm -rf /|"
        );

        let finding = Finding::new(FindingLevel::Error, "SSHLoginTriesExceeded", "sshd", "6 tries")
            .with_data("count", 6);
        let event = Event::new("web-1", "ssh", Payload::Finding(finding));
        let template =
            Template::new("{{ name }} {{ event.payload.data.count }} {{ summary }}").unwrap();
        assert_eq!(
            template.render(&event).unwrap(),
            "SSHLoginTriesExceeded 6 SSHLoginTriesExceeded: 6 tries"
        );
    }

    #[test]
    fn missing_fields_render_empty_at_any_depth() {
        let template = Template::new(
            "[{{ event.payload.nope }}][{{ event.nope.deeper.still }}][{{ nothing }}]",
        )
        .unwrap();
        assert_eq!(template.render(&log_event()).unwrap(), "[][][]");
    }

    #[test]
    fn syntax_errors_are_found_when_compiling_and_in_deserialisation() {
        let err = Template::new("{{ summary ").unwrap_err();
        assert!(matches!(err, ListenError::TemplateSyntax(_)), "{err:?}");
        assert!(err.to_string().starts_with("template syntax error: "), "{err}");

        #[derive(Deserialize)]
        struct Config {
            #[allow(dead_code)]
            message: Template,
        }
        let err = serde_json::from_str::<Config>(r#"{"message": "{% if %}"}"#).err().unwrap();
        assert!(err.to_string().contains("template syntax error"), "{err}");
        let ok: Config = serde_json::from_str(r#"{"message": "{{ host }}"}"#).unwrap();
        assert_eq!(ok.message.source(), "{{ host }}");
    }

    #[test]
    fn render_failures_are_errors_with_a_summary_fallback_never_panics() {
        // A runaway loop runs out of fuel.
        let template = Template::new(
            "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
        )
        .unwrap();
        let err = template.render(&log_event()).unwrap_err();
        assert!(matches!(err, ListenError::Render(_)), "{err:?}");
        assert_eq!(template.render_or_summary(&log_event(), "test"), "Failed password for root");

        // A filter given the wrong type.
        let template = Template::new("{{ event.payload.ip | int + [] }}").unwrap();
        assert!(template.render(&log_event()).is_err());
    }

    #[test]
    fn json_rendering_quotes_and_escapes_values() {
        let template = Template::new(
            r#"{"ip": {{ event.payload.ip }}, "user": {{ event.payload.user }}, "n": {{ event.schema_version }}, "gone": {{ event.payload.nope }}}"#,
        )
        .unwrap();
        let value = template.render_json(&log_event()).unwrap();
        assert_eq!(value["ip"], "203.0.113.9");
        assert_eq!(value["user"], "root; rm -rf /");
        assert_eq!(value["n"], 1);
        assert!(value["gone"].is_null() || value["gone"] == "", "{value}");

        let template = Template::new("not json {{ host }}").unwrap();
        assert!(matches!(template.render_json(&log_event()), Err(ListenError::InvalidJson(_))));
    }

    #[test]
    fn output_is_capped() {
        let template = Template::new("{% for i in range(20000) %}ééééé{% endfor %}").unwrap();
        let text = template.render(&log_event()).unwrap();
        assert!(text.len() <= MAX_RENDERED_BYTES && text.len() > MAX_RENDERED_BYTES - 4);
    }
}
