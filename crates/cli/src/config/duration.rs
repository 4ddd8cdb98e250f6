//! Durations in the configuration file, written the way people say them: `"5s"`, `"250ms"`,
//! `"2m"`, `"1h 30m"`.
//!
//! TOML has no duration type, and a bare number of seconds invites unit mistakes, so duration
//! keys hold a string parsed by the `humantime` crate. A field opts in with serde's `with` and
//! tells schemars that the key holds a string:
//!
//! ```ignore
//! /// How often the agent reports its health.
//! #[serde(with = "crate::config::duration::humantime")]
//! #[schemars(with = "String", example = &"30s")]
//! pub health_interval: Duration,
//!
//! /// How long shutdown may take before components are abandoned; unset waits forever.
//! #[serde(with = "crate::config::duration::humantime", skip_serializing_if = "Option::is_none")]
//! #[schemars(with = "Option<String>", example = &"10s")]
//! pub shutdown_timeout: Option<Duration>,
//! ```
//!
//! The same module serves `Duration` and `Option<Duration>` fields (through [`DurationField`]),
//! so a configuration never needs a second helper for optional durations.

use std::{fmt, time::Duration};

use serde::{Deserializer, Serializer, de};

/// serde helpers for `#[serde(with = "crate::config::duration::humantime")]`.
///
/// Durations serialize as humantime text (`Duration::from_secs(90)` becomes `"1m 30s"`) and
/// deserialize from it. Errors read `invalid duration "5x": ...`, which the loader recognises to
/// add a hint on how durations are written.
pub mod humantime {
    use serde::{Deserializer, Serializer};

    use super::DurationField;

    /// Writes the duration as humantime text, like `"5s"`.
    pub fn serialize<T: DurationField, S: Serializer>(
        value: &T,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        value.serialize_text(serializer)
    }

    /// Reads a duration from humantime text, like `"5s"` or `"250ms"`.
    pub fn deserialize<'de, T: DurationField, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<T, D::Error> {
        T::deserialize_text(deserializer)
    }
}

/// A field type that [`humantime`] can read and write: `Duration` or `Option<Duration>`.
///
/// The trait is sealed; its methods are the plumbing behind [`humantime`] and are not meant to be
/// called directly.
pub trait DurationField: Sized + sealed::Sealed {
    /// Writes the value as humantime text (or nothing, for `None`).
    fn serialize_text<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error>;

    /// Reads the value from humantime text.
    fn deserialize_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error>;
}

impl DurationField for Duration {
    fn serialize_text<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&::humantime::format_duration(*self))
    }

    fn deserialize_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(TextVisitor)
    }
}

impl DurationField for Option<Duration> {
    fn serialize_text<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Some(duration) => duration.serialize_text(serializer),
            None => serializer.serialize_none(),
        }
    }

    fn deserialize_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_option(OptionVisitor)
    }
}

mod sealed {
    use std::time::Duration;

    /// Keeps [`super::DurationField`] implemented only here.
    pub trait Sealed {}

    impl Sealed for Duration {}
    impl Sealed for Option<Duration> {}
}

/// What a duration key expects, as serde reports it in "invalid type" errors.
const EXPECTING: &str = "a duration such as \"5s\" or \"250ms\"";

/// Parses humantime text, with an error message that names the offending text.
fn parse(text: &str) -> Result<Duration, String> {
    ::humantime::parse_duration(text.trim())
        .map_err(|err| format!("invalid duration {text:?}: {err}"))
}

struct TextVisitor;

impl de::Visitor<'_> for TextVisitor {
    type Value = Duration;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(EXPECTING)
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Duration, E> {
        parse(text).map_err(E::custom)
    }
}

struct OptionVisitor;

impl<'de> de::Visitor<'de> for OptionVisitor {
    type Value = Option<Duration>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(EXPECTING)
    }

    fn visit_none<E: de::Error>(self) -> Result<Option<Duration>, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Option<Duration>, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Option<Duration>, D::Error> {
        Duration::deserialize_text(deserializer).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Timers {
        #[serde(with = "crate::config::duration::humantime")]
        interval: Duration,
        #[serde(
            with = "crate::config::duration::humantime",
            default,
            skip_serializing_if = "Option::is_none"
        )]
        timeout: Option<Duration>,
    }

    fn parse_timers(text: &str) -> Result<Timers, String> {
        toml::from_str(text).map_err(|err| err.message().to_owned())
    }

    #[test]
    fn durations_round_trip_as_humantime_text() {
        for (duration, text) in [
            (Duration::from_secs(5), "5s"),
            (Duration::from_millis(100), "100ms"),
            (Duration::from_secs(90), "1m 30s"),
            (Duration::ZERO, "0s"),
        ] {
            let timers = Timers { interval: duration, timeout: Some(duration) };
            let toml = toml::to_string(&timers).unwrap();
            assert_eq!(toml, format!("interval = \"{text}\"\ntimeout = \"{text}\"\n"));
            assert_eq!(parse_timers(&toml), Ok(timers));
        }
    }

    #[test]
    fn optional_durations_may_be_absent() {
        let timers = parse_timers("interval = \"2m\"").unwrap();
        assert_eq!(timers, Timers { interval: Duration::from_secs(120), timeout: None });
        assert_eq!(toml::to_string(&timers).unwrap(), "interval = \"2m\"\n");
    }

    #[test]
    fn bad_durations_name_the_text() {
        let err = parse_timers("interval = \"5 parsecs\"").unwrap_err();
        assert!(err.starts_with("invalid duration \"5 parsecs\": unknown time unit"), "{err}");

        let err = parse_timers("interval = 5").unwrap_err();
        assert_eq!(
            err,
            "invalid type: integer `5`, expected a duration such as \"5s\" or \"250ms\""
        );

        let err = parse_timers("interval = \"1s\"\ntimeout = true").unwrap_err();
        assert!(err.contains("expected a duration such as"), "{err}");
    }
}
