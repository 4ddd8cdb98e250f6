//! The named values of an enrichment block: a small map kept as a vector sorted by name.
//!
//! Tracers add one to three fields per event (`threat_score`, `error_category`, …) on the
//! publish path of every event. A `BTreeMap` allocates a 1 KiB node for its first entry — above
//! the allocator's per-thread cache limit, so each enriched event paid a slow allocation and
//! free. [`FieldMap`] holds a single field inline (no allocation at all) and two or more in one
//! vector sorted by name: a binary search per lookup, and the same JSON object in the same key
//! order as the map it replaces.

use std::{borrow::Cow, fmt, ops::Index};

use serde::{
    Deserialize, Deserializer, Serialize, Serializer,
    de::{MapAccess, Visitor},
    ser::SerializeMap,
};

use crate::Value;

/// Named values sorted by name (byte order, as a `BTreeMap` of the same keys sorts them).
///
/// The first value is held inline, so an event with a single field (the IP tracer's
/// `threat_score`, the most common case) allocates nothing; from the second on, all of them
/// live in one vector.
#[derive(Clone, Default)]
pub struct FieldMap {
    /// The only value, while there is at most one (then `more` is empty).
    one: Option<Entry>,
    /// Every value, sorted, once there were two or more (then `one` is `None`).
    more: Vec<Entry>,
}

type Entry = (Cow<'static, str>, Value);

impl FieldMap {
    /// An empty map (allocates nothing).
    pub const fn new() -> FieldMap {
        FieldMap { one: None, more: Vec::new() }
    }

    fn entries(&self) -> &[Entry] {
        match &self.one {
            Some(one) => std::slice::from_ref(one),
            None => &self.more,
        }
    }

    fn entries_mut(&mut self) -> &mut [Entry] {
        match &mut self.one {
            Some(one) => std::slice::from_mut(one),
            None => &mut self.more,
        }
    }

    fn find(&self, key: &str) -> Result<usize, usize> {
        self.entries().binary_search_by(|(name, _)| name.as_ref().cmp(key))
    }

    /// Sets `key` to `value`; returns the value it replaces, if any.
    ///
    /// Inlined for its first-field case (most enriched events get exactly one field): the
    /// caller then builds the entry in place, instead of writing it to the stack for a call that
    /// reads it back at once (a store-forwarding stall on every event).
    #[inline]
    pub fn insert(&mut self, key: Cow<'static, str>, value: Value) -> Option<Value> {
        if self.one.is_none() && self.more.is_empty() {
            self.one = Some((key, value));
            return None;
        }
        self.insert_more(key, value)
    }

    /// [`insert`](FieldMap::insert) into a map that holds a value already.
    fn insert_more(&mut self, key: Cow<'static, str>, value: Value) -> Option<Value> {
        match self.find(&key) {
            Ok(idx) => Some(std::mem::replace(&mut self.entries_mut()[idx].1, value)),
            Err(idx) => {
                if let Some(one) = self.one.take() {
                    self.more.reserve(4);
                    self.more.push(one);
                }
                self.more.insert(idx, (key, value));
                None
            }
        }
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.find(key).ok().map(|idx| &self.entries()[idx].1)
    }

    /// The value of `key`, to change it.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        self.find(key).ok().map(|idx| &mut self.entries_mut()[idx].1)
    }

    /// Whether `key` has a value.
    pub fn contains_key(&self, key: &str) -> bool {
        self.find(key).is_ok()
    }

    /// Removes `key`; returns its value, if any.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        let idx = self.find(key).ok()?;
        match self.one.take() {
            Some((_, value)) => Some(value),
            None => Some(self.more.remove(idx).1),
        }
    }

    /// Removes every value.
    pub fn clear(&mut self) {
        self.one = None;
        self.more.clear();
    }

    /// How many values the map holds.
    pub fn len(&self) -> usize {
        self.entries().len()
    }

    /// Whether the map holds no value.
    pub fn is_empty(&self) -> bool {
        self.entries().is_empty()
    }

    /// Names and values, sorted by name.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&Cow<'static, str>, &Value)> {
        self.entries().iter().map(|(name, value)| (name, value))
    }

    /// Names, sorted.
    pub fn keys(&self) -> impl ExactSizeIterator<Item = &Cow<'static, str>> {
        self.entries().iter().map(|(name, _)| name)
    }

    /// Values, sorted by name.
    pub fn values(&self) -> impl ExactSizeIterator<Item = &Value> {
        self.entries().iter().map(|(_, value)| value)
    }
}

impl PartialEq for FieldMap {
    fn eq(&self, other: &FieldMap) -> bool {
        self.entries() == other.entries()
    }
}

impl fmt::Debug for FieldMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl Index<&str> for FieldMap {
    type Output = Value;

    /// The value of `key`; panics when there is none (as `BTreeMap`'s index does).
    fn index(&self, key: &str) -> &Value {
        self.get(key).unwrap_or_else(|| panic!("no enrichment field {key:?}"))
    }
}

impl<K: Into<Cow<'static, str>>> Extend<(K, Value)> for FieldMap {
    fn extend<I: IntoIterator<Item = (K, Value)>>(&mut self, iter: I) {
        for (key, value) in iter {
            self.insert(key.into(), value);
        }
    }
}

impl<K: Into<Cow<'static, str>>> FromIterator<(K, Value)> for FieldMap {
    fn from_iter<I: IntoIterator<Item = (K, Value)>>(iter: I) -> FieldMap {
        let mut map = FieldMap::new();
        map.extend(iter);
        map
    }
}

impl<K: Into<Cow<'static, str>>, const N: usize> From<[(K, Value); N]> for FieldMap {
    fn from(entries: [(K, Value); N]) -> FieldMap {
        entries.into_iter().collect()
    }
}

impl IntoIterator for FieldMap {
    type Item = Entry;
    type IntoIter = std::iter::Chain<std::option::IntoIter<Entry>, std::vec::IntoIter<Entry>>;

    fn into_iter(self) -> Self::IntoIter {
        self.one.into_iter().chain(self.more)
    }
}

impl<'a> IntoIterator for &'a FieldMap {
    type Item = (&'a Cow<'static, str>, &'a Value);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (Cow<'static, str>, Value)>,
        fn(&'a (Cow<'static, str>, Value)) -> (&'a Cow<'static, str>, &'a Value),
    >;

    fn into_iter(self) -> Self::IntoIter {
        self.entries().iter().map(|(name, value)| (name, value))
    }
}

impl Serialize for FieldMap {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let entries = self.entries();
        let mut map = serializer.serialize_map(Some(entries.len()))?;
        for (name, value) in entries {
            map.serialize_entry(name.as_ref(), value)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for FieldMap {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<FieldMap, D::Error> {
        struct FieldsVisitor;

        impl<'de> Visitor<'de> for FieldsVisitor {
            type Value = FieldMap;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of named values")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<FieldMap, A::Error> {
                let mut map = FieldMap::new();
                while let Some((name, value)) = access.next_entry::<String, Value>()? {
                    // A repeated name keeps its last value, as a `BTreeMap` does.
                    map.insert(Cow::Owned(name), value);
                }
                Ok(map)
            }
        }

        deserializer.deserialize_map(FieldsVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Enrichment;

    #[test]
    fn keeps_names_sorted_and_replaces_on_insert() {
        let mut map = FieldMap::new();
        assert!(map.is_empty());
        assert_eq!(map.insert("threat_score".into(), 8.into()), None);
        assert_eq!(map.insert("error_category".into(), "disk_full".into()), None);
        assert_eq!(map.insert("ip_class".into(), "public".into()), None);
        assert_eq!(map.insert("Zeta".into(), 1.into()), None, "upper case sorts first");
        assert_eq!(
            map.keys().map(|it| it.as_ref()).collect::<Vec<_>>(),
            ["Zeta", "error_category", "ip_class", "threat_score"]
        );
        assert_eq!(map.insert("ip_class".into(), "cloud".into()), Some("public".into()));
        assert_eq!(map.len(), 4);
        assert_eq!(map["ip_class"], "cloud");
        assert_eq!(map.get("missing"), None);
        assert!(map.contains_key("threat_score"));
        *map.get_mut("threat_score").unwrap() = 9.into();
        assert_eq!(map["threat_score"], 9);
        assert_eq!(map.remove("Zeta"), Some(1.into()));
        assert_eq!(map.remove("Zeta"), None);
        assert_eq!(
            map.values().cloned().collect::<Vec<_>>(),
            [Value::from("disk_full"), "cloud".into(), 9.into()]
        );
        let same: FieldMap = [
            ("threat_score", Value::from(9)),
            ("ip_class", "cloud".into()),
            ("error_category", "disk_full".into()),
        ]
        .into();
        assert_eq!(map, same, "equal whatever the insertion order");
        let owned: Vec<(Cow<'static, str>, Value)> = map.clone().into_iter().collect();
        assert_eq!(owned.len(), 3);
        assert!(owned.windows(2).all(|it| it[0].0 < it[1].0), "sorted: {owned:?}");
        map.clear();
        assert!(map.is_empty());
        let mut single = FieldMap::new();
        single.insert("threat_score".into(), 1.into());
        assert_eq!(single.insert("threat_score".into(), 2.into()), Some(1.into()));
        assert_eq!(single.len(), 1);
        assert_eq!(single, [("threat_score", Value::from(2))].into());
        assert_eq!(single.remove("threat_score"), Some(2.into()));
        assert!(single.is_empty() && single.get("threat_score").is_none());
        single.insert("b".into(), 1.into());
        single.insert("a".into(), 2.into());
        assert_eq!(single.remove("b"), Some(1.into()));
        assert_eq!(single, [("a", Value::from(2))].into(), "one left, wherever it is held");
        assert_eq!(serde_json::to_string(&single).unwrap(), r#"{"a":2}"#);
    }

    #[test]
    fn writes_the_same_json_as_a_btree_map_and_reads_it_back() {
        let names = ["threat_score", "a", "error_severity", "error_category", "b_c", "B"];
        let mut tree = std::collections::BTreeMap::<Cow<'static, str>, Value>::new();
        let mut map = FieldMap::new();
        for (n, name) in names.iter().enumerate() {
            tree.insert((*name).into(), n.into());
            map.insert((*name).into(), n.into());
        }
        tree.insert("a".into(), "again".into());
        map.insert("a".into(), "again".into());
        let json = serde_json::to_string(&map).unwrap();
        assert_eq!(json, serde_json::to_string(&tree).unwrap());
        assert_eq!(format!("{map:?}"), format!("{tree:?}"));
        let back: FieldMap = serde_json::from_str(&json).unwrap();
        assert_eq!(back, map);
        let repeated: FieldMap = serde_json::from_str(r#"{"z":1,"a":2,"z":3}"#).unwrap();
        assert_eq!(serde_json::to_string(&repeated).unwrap(), r#"{"a":2,"z":3}"#);
    }

    #[test]
    fn an_empty_map_is_left_out_of_the_enrichment_block() {
        let mut enrichment = Enrichment::default();
        enrichment.record("ip", serde_json::json!({"class": "public"}));
        let json = serde_json::to_value(&enrichment).unwrap();
        assert!(json.get("fields").is_none(), "{json}");
        enrichment.fields.insert("threat_score".into(), 8.into());
        let json = serde_json::to_value(&enrichment).unwrap();
        assert_eq!(json["fields"], serde_json::json!({"threat_score": 8}));
        let back: Enrichment = serde_json::from_value(json).unwrap();
        assert_eq!(back, enrichment);
        let none: Enrichment = serde_json::from_str("{}").unwrap();
        assert!(none.fields.is_empty());
    }
}
