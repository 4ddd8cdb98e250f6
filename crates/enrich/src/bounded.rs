//! A map whose size is capped, for state keyed by values the outside world controls.
//!
//! Tracers keep per-address and per-subnet state; an attacker who sends from a million addresses
//! must not grow the agent's memory. [`BoundedMap`] holds at most `capacity` entries. When it is
//! full, one sweep drops every entry older than the TTL and then, if that was not enough, the
//! least recently touched eighth of the map, so eviction costs O(1) amortised per insert. Every
//! dropped entry is counted in [`BoundedMap::evictions`].

use std::hash::{BuildHasher, Hash};

use hashbrown::HashTable;

/// The maps' hasher: fast, and seeded per process so keys an attacker chooses cannot be made
/// to collide on purpose.
pub(crate) type Hasher = foldhash::fast::RandomState;

/// A map of at most `capacity` entries, evicting expired, then least recently used entries.
///
/// Built on a raw hash table so that [`entry`](BoundedMap::entry) hashes and probes once for a
/// key that is present, even when the map is full (the tracers call it for every event).
#[derive(Debug, Clone)]
pub struct BoundedMap<K, V> {
    table: HashTable<(K, Slot<V>)>,
    hasher: Hasher,
    capacity: usize,
    tick: u64,
    evictions: u64,
}

#[derive(Debug, Clone)]
struct Slot<V> {
    touched: u64,
    value: V,
}

impl<K: Hash + Eq + Clone, V> BoundedMap<K, V> {
    /// An empty map holding at most `capacity` (at least 1) entries.
    pub fn new(capacity: usize) -> BoundedMap<K, V> {
        let capacity = capacity.max(1);
        BoundedMap {
            table: HashTable::new(),
            hasher: Hasher::default(),
            capacity,
            tick: 0,
            evictions: 0,
        }
    }

    /// The entry for `key`, made with `make` if absent. `expired(value)` tells which entries a
    /// full map may drop first.
    pub fn entry(
        &mut self,
        key: &K,
        make: impl FnOnce() -> V,
        expired: impl Fn(&V) -> bool,
    ) -> &mut V {
        self.tick += 1;
        let tick = self.tick;
        let hash = self.hasher.hash_one(key);
        let table = match self.table.find_entry(hash, |(it, _)| it == key) {
            Ok(found) => {
                let (_, slot) = found.into_mut();
                slot.touched = tick;
                return &mut slot.value;
            }
            Err(absent) => absent.into_table(),
        };
        if table.len() >= self.capacity {
            self.evictions += evict(table, self.capacity, &expired);
        }
        let hasher = &self.hasher;
        let slot = Slot { touched: tick, value: make() };
        let (_, slot) = table
            .insert_unique(hash, (key.clone(), slot), |(it, _)| hasher.hash_one(it))
            .into_mut();
        &mut slot.value
    }

    /// The value for `key`, without touching it.
    pub fn get(&self, key: &K) -> Option<&V> {
        let hash = self.hasher.hash_one(key);
        self.table.find(hash, |(it, _)| it == key).map(|(_, slot)| &slot.value)
    }

    /// The value for `key`, mutable, without touching it.
    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        let hash = self.hasher.hash_one(key);
        self.table.find_mut(hash, |(it, _)| it == key).map(|(_, slot)| &mut slot.value)
    }

    /// Removes `key`.
    pub fn remove(&mut self, key: &K) -> Option<V> {
        let hash = self.hasher.hash_one(key);
        let found = self.table.find_entry(hash, |(it, _)| it == key).ok()?;
        let ((_, slot), _) = found.remove();
        Some(slot.value)
    }

    /// Every entry, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.table.iter().map(|(key, slot)| (key, &slot.value))
    }

    /// Entries held now.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// The most entries the map holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Entries dropped to make room since the map was made.
    pub fn evictions(&self) -> u64 {
        self.evictions
    }
}

/// Makes room in a full `table`: drops every expired entry, then, if that was not enough, the
/// least recently touched down to seven eighths of `capacity`. Returns how many entries went.
fn evict<K, V>(
    table: &mut HashTable<(K, Slot<V>)>,
    capacity: usize,
    expired: &impl Fn(&V) -> bool,
) -> u64 {
    let before = table.len();
    // One pass drops the expired entries and notes when each kept one was last touched.
    let mut ticks: Vec<u64> = Vec::with_capacity(before);
    table.retain(|(_, slot)| {
        let keep = !expired(&slot.value);
        if keep {
            ticks.push(slot.touched);
        }
        keep
    });
    let target = capacity - capacity / 8 - 1;
    if table.len() > target {
        let drop = table.len() - target;
        let (_, nth, _) = ticks.select_nth_unstable(drop - 1);
        let cut = *nth;
        table.retain(|(_, slot)| slot.touched > cut);
    }
    (before - table.len()) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stays_within_capacity_and_keeps_recent_entries() {
        let mut map: BoundedMap<u32, u32> = BoundedMap::new(100);
        for key in 0..10_000u32 {
            *map.entry(&key, || 0, |_| false) += 1;
            // Key 7 is touched all the time, so it is never the least recently used.
            *map.entry(&7, || 0, |_| false) += 1;
            assert!(map.len() <= 100);
        }
        assert!(map.evictions() >= 9_900, "{}", map.evictions());
        assert_eq!(map.get(&7), Some(&10_001));
        assert!(map.get(&9_999).is_some());
        assert!(map.get(&0).is_none());
    }

    #[test]
    fn expired_entries_go_first() {
        let mut map: BoundedMap<u32, bool> = BoundedMap::new(4);
        map.entry(&1, || true, |it| *it);
        map.entry(&2, || false, |it| *it);
        map.entry(&3, || false, |it| *it);
        map.entry(&4, || false, |it| *it);
        map.entry(&5, || false, |it| *it);
        assert!(map.get(&1).is_none(), "the expired entry is dropped");
        assert!(map.get(&2).is_some() && map.get(&5).is_some());
        assert_eq!(map.evictions(), 1);
    }
}
