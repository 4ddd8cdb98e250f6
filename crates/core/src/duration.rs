//! Durations in component configuration, written as humantime text (`"10m"`, `"250ms"`,
//! `"1h 30m"`), the way every duration key of Vigil's configuration is spelled.
//!
//! Use it with serde's `with`: `#[serde(with = "vigil_core::duration")]` (and
//! `#[schemars(with = "String")]` for the schema). One module for every component crate, so the
//! spelling and the error message are the same everywhere.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serializer, de::Error};

/// Writes a duration as humantime text.
pub fn serialize<S: Serializer>(value: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&humantime::format_duration(*value).to_string())
}

/// Reads a duration from humantime text (surrounding blanks ignored).
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    humantime::parse_duration(text.trim())
        .map_err(|err| D::Error::custom(format!("invalid duration {text:?}: {err}")))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde::{Deserialize, Serialize};

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Config {
        #[serde(with = "crate::duration")]
        every: Duration,
    }

    #[test]
    fn humantime_text_round_trips_and_errors_name_the_text() {
        let config: Config = serde_json::from_str(r#"{"every": " 1h 30m "}"#).unwrap();
        assert_eq!(config.every, Duration::from_secs(5400));
        assert_eq!(serde_json::to_string(&config).unwrap(), r#"{"every":"1h 30m"}"#);
        let err = serde_json::from_str::<Config>(r#"{"every": "soon"}"#).unwrap_err();
        assert!(err.to_string().contains("invalid duration \"soon\""), "{err}");
    }
}
