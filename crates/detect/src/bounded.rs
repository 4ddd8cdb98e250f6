//! Counters keyed by text whose memory stays bounded whatever the input.
//!
//! Detectors count by values that come from the outside world (an action name, a log source, a
//! user name). An attacker who controls those values must not be able to grow a detector's memory
//! without limit, so [`BoundedCounts`] tracks at most a fixed number of distinct keys, each cut to
//! a fixed length, and counts everything beyond that limit in one overflow bucket reported as
//! [`OTHER`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use vigil_event::{Map, Value};

/// The key under which records beyond the distinct-key limit are reported. A record whose own key
/// is literally `other` lands in the same bucket of the report.
pub(crate) const OTHER: &str = "other";

/// The longest key kept, in characters; longer keys are cut (at a character boundary).
pub(crate) const MAX_KEY_CHARS: usize = 128;

/// Counts per key, for at most `max_keys` distinct keys; the rest is counted in `other`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct BoundedCounts {
    /// Counts of the keys tracked so far.
    #[serde(default)]
    counts: BTreeMap<String, u64>,
    /// Records whose key arrived after the limit was reached.
    #[serde(default)]
    other: u64,
}

impl BoundedCounts {
    /// Counts one record under `key`.
    pub(crate) fn add(&mut self, key: &str, max_keys: usize) {
        let key = truncate_chars(key, MAX_KEY_CHARS);
        if let Some(n) = self.counts.get_mut(key) {
            *n = n.saturating_add(1);
        } else if self.counts.len() < max_keys {
            self.counts.insert(key.to_owned(), 1);
        } else {
            self.other = self.other.saturating_add(1);
        }
    }

    /// Removes `key`, returning its count (0 when it was not tracked).
    pub(crate) fn remove(&mut self, key: &str) -> u64 {
        self.counts.remove(truncate_chars(key, MAX_KEY_CHARS)).unwrap_or(0)
    }

    /// The sum of every count, the overflow bucket included.
    pub(crate) fn total(&self) -> u64 {
        self.counts.values().fold(self.other, |sum, n| sum.saturating_add(*n))
    }

    /// Number of distinct keys tracked (the overflow bucket excluded).
    #[cfg(test)]
    pub(crate) fn n_keys(&self) -> usize {
        self.counts.len()
    }

    /// Brings counts read from saved state within the limits: long keys are cut and keys beyond
    /// `max_keys` are moved into the overflow bucket, so tampered or older state cannot break the
    /// memory bound.
    pub(crate) fn enforce_limits(&mut self, max_keys: usize) {
        let counts = std::mem::take(&mut self.counts);
        for (key, n) in counts {
            let key = truncate_chars(&key, MAX_KEY_CHARS);
            if let Some(it) = self.counts.get_mut(key) {
                *it = it.saturating_add(n);
            } else if self.counts.len() < max_keys {
                self.counts.insert(key.to_owned(), n);
            } else {
                self.other = self.other.saturating_add(n);
            }
        }
    }

    /// The counts as a JSON object, the overflow bucket under [`OTHER`] when it is not empty.
    pub(crate) fn to_value(&self) -> Value {
        let mut map: Map =
            self.counts.iter().map(|(key, n)| (key.clone(), Value::from(*n))).collect();
        if self.other > 0 {
            let merged =
                map.get(OTHER).and_then(Value::as_u64).unwrap_or(0).saturating_add(self.other);
            map.insert(OTHER.to_owned(), merged.into());
        }
        Value::Object(map.into_iter().collect())
    }
}

/// The longest prefix of `text` with at most `max` characters.
pub(crate) fn truncate_chars(text: &str, max: usize) -> &str {
    // A text of at most `max` bytes has at most `max` characters: no need to count them.
    if text.len() <= max {
        return text;
    }
    match text.char_indices().nth(max) {
        Some((idx, _)) => &text[..idx],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_beyond_the_limit_go_to_other() {
        let mut counts = BoundedCounts::default();
        for key in ["a", "b", "a", "c", "d", "b"] {
            counts.add(key, 2);
        }
        assert_eq!(counts.n_keys(), 2);
        assert_eq!(counts.to_value(), serde_json::json!({"a": 2, "b": 2, "other": 2}));
    }

    #[test]
    fn long_keys_are_cut_at_a_char_boundary() {
        let long = "é".repeat(MAX_KEY_CHARS + 10);
        let mut counts = BoundedCounts::default();
        counts.add(&long, 10);
        counts.add(&long[..long.len() - 2], 10);
        assert_eq!(counts.n_keys(), 1);
        assert_eq!(truncate_chars("héllo", 2), "hé");
        assert_eq!(truncate_chars("hé", 5), "hé");
    }

    #[test]
    fn restored_counts_are_brought_within_limits() {
        let mut counts: BoundedCounts =
            serde_json::from_value(serde_json::json!({"counts": {"a": 1, "b": 2, "c": 3}}))
                .unwrap();
        counts.enforce_limits(1);
        assert_eq!(counts.to_value(), serde_json::json!({"a": 1, "other": 5}));
    }
}
