//! Path templates: `%TAG %TENANCY %UUID %YYYY %MM %DD %hh %mm %ss`, as in seed 002.
//!
//! Every date and time variable comes from one instant taken once per file, so a file written
//! across midnight never mixes two days (`2026/11/23` with hour `00`).

use chrono::{DateTime, Datelike, Timelike, Utc};

/// What a template's variables stand for, for one file.
#[derive(Debug, Clone, Copy)]
pub struct TemplateVars<'a> {
    /// `%TAG`: the dataset (configured, or the event kind).
    pub tag: &'a str,
    /// `%TENANCY`: the tenant or organisation.
    pub tenancy: &'a str,
    /// `%UUID`: this upload's identifier.
    pub uuid: &'a str,
    /// `%YYYY %MM %DD %hh %mm %ss`: the file's time (UTC).
    pub time: DateTime<Utc>,
}

/// The variables a template may use.
pub const VARIABLES: [&str; 9] =
    ["%TAG", "%TENANCY", "%UUID", "%YYYY", "%MM", "%DD", "%hh", "%mm", "%ss"];

/// Expands `template`. A `%` not starting a known variable is kept as it is. `%TAG`,
/// `%TENANCY` and `%UUID` values have `/` and NUL replaced by `_` and a leading `.` escaped,
/// so a value can never leave the template's directory.
pub fn expand(template: &str, vars: &TemplateVars<'_>) -> String {
    let time = vars.time;
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let (value, len) = if rest.starts_with("%TENANCY") {
            (safe(vars.tenancy), 8)
        } else if rest.starts_with("%TAG") {
            (safe(vars.tag), 4)
        } else if rest.starts_with("%UUID") {
            (safe(vars.uuid), 5)
        } else if rest.starts_with("%YYYY") {
            (format!("{:04}", time.year()), 5)
        } else if rest.starts_with("%MM") {
            (format!("{:02}", time.month()), 3)
        } else if rest.starts_with("%DD") {
            (format!("{:02}", time.day()), 3)
        } else if rest.starts_with("%hh") {
            (format!("{:02}", time.hour()), 3)
        } else if rest.starts_with("%mm") {
            (format!("{:02}", time.minute()), 3)
        } else if rest.starts_with("%ss") {
            (format!("{:02}", time.second()), 3)
        } else {
            ("%".to_owned(), 1)
        };
        out.push_str(&value);
        rest = &rest[len..];
    }
    out.push_str(rest);
    out
}

fn safe(value: &str) -> String {
    let mut out: String =
        value.chars().map(|c| if c == '/' || c == '\0' { '_' } else { c }).collect();
    if out.starts_with('.') || out.is_empty() {
        out.insert(0, '_');
    }
    out
}
