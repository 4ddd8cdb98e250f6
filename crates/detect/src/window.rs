//! Per-key sliding windows with a threshold, shared by the detectors that count "N things of one
//! key within a time": login tries per address, distinct ports per scanner, distinct addresses
//! per subnet, occurrences per error signature.
//!
//! A key's window keeps at most `threshold` items (with their lines, the evidence); when it holds
//! `threshold` items no older than `window`, [`Windows::add`] returns them and the key starts
//! again from zero. In `distinct` mode an item whose value is already in the window replaces it,
//! so the threshold counts distinct values. After a key fires, further crossings within `window`
//! of the last one are counted as suppressed rather than returned, so one long attack is one
//! finding per window, not one per `threshold` lines.
//!
//! Memory: at most `max_keys` keys; beyond it, keys whose windows closed are dropped, then the
//! tenth with the oldest activity, counted in `evicted`.

use std::{
    collections::{HashMap, VecDeque},
    hash::Hash,
};

use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::bounded::truncate_chars;

/// Longest evidence line kept, in characters.
const MAX_LINE_CHARS: usize = 1024;

/// One counted occurrence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Item<V> {
    pub(crate) at_ms: i64,
    pub(crate) value: V,
    pub(crate) line: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(bound(serialize = "V: Serialize", deserialize = "V: DeserializeOwned"))]
struct Entry<V> {
    items: VecDeque<Item<V>>,
    #[serde(default)]
    last_fired: Option<i64>,
}

impl<V> Entry<V> {
    fn last_activity(&self) -> i64 {
        let last = self.items.back().map_or(i64::MIN, |it| it.at_ms);
        last.max(self.last_fired.unwrap_or(i64::MIN))
    }
}

/// Sliding windows per key; see the module docs.
#[derive(Debug, Clone)]
pub(crate) struct Windows<K, V> {
    entries: HashMap<K, Entry<V>>,
    threshold: usize,
    window_ms: i64,
    max_keys: usize,
    distinct: bool,
    pub(crate) evicted: u64,
    pub(crate) suppressed: u64,
    added: u64,
}

/// Keys whose window closed are dropped every this many additions.
const PURGE_EVERY: u64 = 4096;

/// The saved form.
#[derive(Serialize, Deserialize)]
#[serde(bound(
    serialize = "K: Serialize, V: Serialize",
    deserialize = "K: DeserializeOwned + Eq + Hash, V: DeserializeOwned"
))]
pub(crate) struct SavedWindows<K, V> {
    entries: Vec<(K, Entry<V>)>,
    #[serde(default)]
    evicted: u64,
    #[serde(default)]
    suppressed: u64,
}

impl<K: Eq + Hash + Clone, V: PartialEq + Clone> Windows<K, V> {
    pub(crate) fn new(threshold: usize, window_ms: i64, max_keys: usize, distinct: bool) -> Self {
        Windows {
            entries: HashMap::new(),
            threshold: threshold.max(1),
            window_ms: window_ms.max(1),
            max_keys: max_keys.max(1),
            distinct,
            evicted: 0,
            suppressed: 0,
            added: 0,
        }
    }

    /// Keys in memory.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Counts one occurrence; the counted items when the threshold is crossed.
    pub(crate) fn add(&mut self, key: K, at: i64, value: V, line: &str) -> Option<Vec<Item<V>>> {
        self.added = self.added.wrapping_add(1);
        if self.added.is_multiple_of(PURGE_EVERY) {
            // Keys whose window and quiet time are over hold nothing that matters any more.
            let since = at.saturating_sub(self.window_ms);
            self.entries.retain(|_, e| e.last_activity() >= since);
        }
        if !self.entries.contains_key(&key) && self.entries.len() >= self.max_keys {
            self.make_room(at);
        }
        let (threshold, window, distinct) = (self.threshold, self.window_ms, self.distinct);
        let entry = self
            .entries
            .entry(key)
            .or_insert_with(|| Entry { items: VecDeque::new(), last_fired: None });
        if distinct && let Some(pos) = entry.items.iter().position(|it| it.value == value) {
            entry.items.remove(pos);
        }
        let line = truncate_chars(line, MAX_LINE_CHARS);
        if entry.items.len() >= threshold
            && let Some(mut oldest) = entry.items.pop_front()
        {
            // A full window: the oldest item's buffer takes the new line (no allocation).
            oldest.line.clear();
            oldest.line.push_str(line);
            entry.items.push_back(Item { at_ms: at, value, line: oldest.line });
        } else {
            entry.items.push_back(Item { at_ms: at, value, line: line.to_owned() });
        }
        while entry.items.len() > threshold {
            entry.items.pop_front();
        }
        let since = at.saturating_sub(window);
        while entry.items.front().is_some_and(|it| it.at_ms < since) {
            entry.items.pop_front();
        }
        if entry.items.len() < threshold {
            return None;
        }
        let items: Vec<Item<V>> = entry.items.drain(..).collect();
        if entry.last_fired.is_some_and(|fired| at.saturating_sub(fired) <= window) {
            self.suppressed += 1;
            return None;
        }
        entry.last_fired = Some(at);
        Some(items)
    }

    fn make_room(&mut self, now: i64) {
        let since = now.saturating_sub(self.window_ms);
        self.entries.retain(|_, e| e.last_activity() >= since);
        if self.entries.len() < self.max_keys {
            return;
        }
        let mut last: Vec<i64> = self.entries.values().map(Entry::last_activity).collect();
        let k = (last.len() / 10).max(1) - 1;
        let (_, cut, _) = last.select_nth_unstable(k);
        let cut = *cut;
        let before = self.entries.len();
        self.entries.retain(|_, e| e.last_activity() > cut);
        self.evicted += (before - self.entries.len()) as u64;
    }
}

impl<
    K: Eq + Hash + Clone + Serialize + DeserializeOwned,
    V: PartialEq + Clone + Serialize + DeserializeOwned,
> Windows<K, V>
{
    /// The state to persist.
    pub(crate) fn save(&self) -> SavedWindows<K, V> {
        SavedWindows {
            entries: self.entries.iter().map(|(k, e)| (k.clone(), e.clone())).collect(),
            evicted: self.evicted,
            suppressed: self.suppressed,
        }
    }

    /// Restores saved windows within this configuration's bounds.
    pub(crate) fn restore(&mut self, saved: SavedWindows<K, V>) {
        self.entries.clear();
        for (key, mut entry) in saved.entries.into_iter().take(self.max_keys) {
            while entry.items.len() >= self.threshold {
                entry.items.pop_front();
            }
            for item in &mut entry.items {
                item.line = truncate_chars(&item.line, MAX_LINE_CHARS).to_owned();
            }
            self.entries.insert(key, entry);
        }
        self.evicted = saved.evicted;
        self.suppressed = saved.suppressed;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fires_at_the_threshold_within_the_window_then_stays_quiet_for_a_window() {
        let mut w: Windows<&str, ()> = Windows::new(3, 100, 10, false);
        assert!(w.add("a", 0, (), "1").is_none());
        assert!(w.add("a", 50, (), "2").is_none());
        assert!(w.add("a", 200, (), "3").is_none(), "the first two left the window");
        assert!(w.add("a", 210, (), "4").is_none());
        let fired = w.add("a", 220, (), "5").unwrap();
        assert_eq!(fired.iter().map(|it| it.line.as_str()).collect::<Vec<_>>(), ["3", "4", "5"]);
        for t in [221, 222, 223] {
            assert!(w.add("a", t, (), "x").is_none());
        }
        assert_eq!(w.suppressed, 1);
        for t in [400, 401] {
            assert!(w.add("a", t, (), "y").is_none());
        }
        assert!(w.add("a", 402, (), "z").is_some(), "a window after the last finding");
    }

    #[test]
    fn distinct_mode_counts_distinct_values_and_keys_stay_bounded() {
        let mut w: Windows<u32, u16> = Windows::new(3, 1000, 5, true);
        for port in [22, 22, 80, 80, 22] {
            assert!(w.add(1, 0, port, "p").is_none());
        }
        assert!(w.add(1, 1, 443, "p").is_some());
        for key in 0..100 {
            w.add(key, 5, 1, "k");
        }
        assert!(w.len() <= 5);
        assert!(w.evicted >= 90);
    }
}
