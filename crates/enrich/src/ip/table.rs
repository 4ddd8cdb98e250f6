//! The IP tracer's per-address state: one 64-byte record (one cache line) per address in an
//! open-addressing table, so an event costs one probe and usually one cache miss.
//!
//! The IP tracer runs for every log event that carries an address, and the addresses an attacker
//! controls outnumber any cache: what an event costs is mostly how many cache lines it touches.
//! [`AddressTable`] keeps a byte of metadata per slot (a 7-bit hash tag and a reference bit) in a
//! small array that stays in the cache, and the records themselves in a second array of
//! cache-line-aligned slots, linear probing, at most 7/8 full (probes scan the metadata bytes,
//! so a full table costs little, and fewer slots keep it within fewer pages). The table holds
//! at most `capacity` addresses; when it is full, the oldest address of a FIFO queue is the
//! candidate (second chance, the CLOCK policy): an expired record goes at once, a record used
//! since it was last a candidate loses its reference bit and goes to the back of the queue, any
//! other goes.
//! Each insert into a full table evicts exactly one record, counted in
//! [`AddressTable::evictions`]; nothing scans the whole table. The queue holds keys in the order
//! they arrived, so which address goes depends only on the events, never on where the hash put
//! a record (the hasher is seeded per table, so that chosen addresses cannot collide).

use std::{collections::VecDeque, hash::BuildHasher, net::IpAddr};

use super::classify::IpClass;
use crate::bounded::Hasher;

/// What the tracer keeps about one address: counters as `u32`, times as `u32` seconds since
/// the Unix epoch (event times outside 1970–2106 are clamped), flags packed with the ban count.
#[derive(Debug, Clone, Copy, Default)]
#[repr(C, align(64))]
pub(super) struct Record {
    key: u128,
    pub failed: u32,
    pub invalid: u32,
    pub accepted: u32,
    /// Bans in the low 28 bits (saturating), then the class (2 bits), hostile, block-listed.
    bans_flags: u32,
    pub suspicious: u32,
    pub window_count: u32,
    pub max_window: u32,
    pub window_start: u32,
    pub first_seen: u32,
    pub last_seen: u32,
    /// One bit per destination port modulo 64: an estimate of distinct ports scanned.
    pub dports: u64,
}

const BANS: u32 = (1 << 28) - 1;
const CLASS_SHIFT: u32 = 28;
const HOSTILE: u32 = 1 << 30;
const BLOCKLISTED: u32 = 1 << 31;

/// An event time as the record keeps it.
pub(super) fn secs(at: i64) -> u32 {
    at.clamp(0, i64::from(u32::MAX)) as u32
}

impl Record {
    /// A record for an address first seen at `now` (seconds since the epoch).
    pub fn new(ip: IpAddr, class: IpClass, now: u32) -> Record {
        let class = match class {
            IpClass::Localhost => 0,
            IpClass::Private => 1,
            IpClass::Cloud => 2,
            IpClass::Public => 3,
        };
        Record {
            key: key_of(ip),
            bans_flags: class << CLASS_SHIFT,
            window_start: now,
            first_seen: now,
            last_seen: now,
            ..Record::default()
        }
    }

    pub fn ip(&self) -> IpAddr {
        ip_of(self.key)
    }

    pub fn class(&self) -> IpClass {
        match (self.bans_flags >> CLASS_SHIFT) & 3 {
            0 => IpClass::Localhost,
            1 => IpClass::Private,
            2 => IpClass::Cloud,
            _ => IpClass::Public,
        }
    }

    pub fn bans(&self) -> u32 {
        self.bans_flags & BANS
    }

    pub fn add_ban(&mut self) {
        if self.bans() < BANS {
            self.bans_flags += 1;
        }
    }

    pub fn hostile(&self) -> bool {
        self.bans_flags & HOSTILE != 0
    }

    pub fn set_hostile(&mut self) {
        self.bans_flags |= HOSTILE;
    }

    pub fn blocklisted(&self) -> bool {
        self.bans_flags & BLOCKLISTED != 0
    }

    pub fn set_blocklisted(&mut self) {
        self.bans_flags |= BLOCKLISTED;
    }
}

/// The table's key of a canonical address: IPv4 as its IPv4-mapped IPv6 form (a canonical IPv6
/// address is never IPv4-mapped, so the two families cannot collide).
fn key_of(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// The key of the /24 (IPv4) or /64 (IPv6) of a canonical address: its network address's key
/// (hashing one `u128` is cheaper than hashing a [`Cidr`](super::Cidr)).
pub(super) fn subnet_key(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(_) => key_of(ip) & !0xff,
        IpAddr::V6(_) => key_of(ip) & !u128::from(u64::MAX),
    }
}

/// The subnet of a [`subnet_key`].
pub(super) fn subnet_of_key(key: u128) -> super::Cidr {
    super::subnet_of(ip_of(key))
}

fn ip_of(key: u128) -> IpAddr {
    let v6 = std::net::Ipv6Addr::from(key);
    match v6.to_ipv4_mapped() {
        Some(v4) => IpAddr::V4(v4),
        None => IpAddr::V6(v6),
    }
}

/// Set in a slot's metadata when its record was used since it was last a candidate for eviction.
const REFERENCED: u8 = 0x80;
/// The hash tag bits of a slot's metadata (never zero for an occupied slot).
const TAG: u8 = 0x7f;

/// At most `capacity` address records (see the module documentation).
#[derive(Debug, Clone)]
pub(super) struct AddressTable {
    /// Per slot: 0 when empty, else the tag, with [`REFERENCED`].
    meta: Vec<u8>,
    slots: Vec<Record>,
    len: usize,
    capacity: usize,
    /// The most slots the table grows to: 8/7 of the capacity, rounded up to a power of two.
    max_slots: usize,
    /// Every key held, oldest candidate for eviction first.
    order: VecDeque<u128>,
    evictions: u64,
    hasher: Hasher,
}

impl AddressTable {
    /// An empty table for at most `capacity` (at least 1) addresses; it grows as it fills.
    pub fn new(capacity: usize) -> AddressTable {
        let capacity = capacity.max(1);
        let max_slots = (capacity.saturating_mul(8) / 7 + 1)
            .checked_next_power_of_two()
            .unwrap_or(1 << (usize::BITS - 1));
        let slots = max_slots.min(1024);
        AddressTable {
            meta: vec![0; slots],
            slots: vec![Record::default(); slots],
            len: 0,
            capacity,
            max_slots,
            order: VecDeque::new(),
            evictions: 0,
            hasher: Hasher::default(),
        }
    }

    fn mask(&self) -> usize {
        self.slots.len() - 1
    }

    fn hash(&self, key: u128) -> (usize, u8) {
        let hash = self.hasher.hash_one(key);
        let tag = ((hash >> 57) as u8).max(1);
        (hash as usize, tag)
    }

    fn find(&self, key: u128, hash: usize, tag: u8) -> Option<usize> {
        let mask = self.mask();
        let mut at = hash & mask;
        loop {
            let meta = self.meta[at];
            if meta == 0 {
                return None;
            }
            if meta & TAG == tag && self.slots[at].key == key {
                return Some(at);
            }
            at = (at + 1) & mask;
        }
    }

    /// The record of `ip` (canonical), marked used; made with `make` if absent, after evicting
    /// one record when the table is full (`expired` records first).
    ///
    /// Inlined for the lookup (the address comes in registers, not through memory written just
    /// before: a store-forwarding stall on every event); the insertion is a call.
    #[inline]
    pub fn entry(
        &mut self,
        ip: IpAddr,
        make: impl FnOnce() -> Record,
        expired: impl Fn(&Record) -> bool,
    ) -> &mut Record {
        let key = key_of(ip);
        let (hash, tag) = self.hash(key);
        if let Some(at) = self.find(key, hash, tag) {
            self.meta[at] |= REFERENCED;
            return &mut self.slots[at];
        }
        self.insert(key, hash, tag, make, expired)
    }

    /// Inserts the record of `key`, absent (see [`entry`](AddressTable::entry)).
    #[inline(never)]
    fn insert(
        &mut self,
        key: u128,
        hash: usize,
        tag: u8,
        make: impl FnOnce() -> Record,
        expired: impl Fn(&Record) -> bool,
    ) -> &mut Record {
        if self.len >= self.capacity {
            self.evict_one(&expired);
        }
        if (self.len + 1) * 8 > self.slots.len() * 7 && self.slots.len() < self.max_slots {
            self.grow();
        }
        let mask = self.mask();
        let mut at = hash & mask;
        while self.meta[at] != 0 {
            at = (at + 1) & mask;
        }
        let mut record = make();
        record.key = key;
        self.meta[at] = tag;
        self.slots[at] = record;
        self.len += 1;
        self.order.push_back(key);
        &mut self.slots[at]
    }

    /// The record of `ip` (canonical), without marking it used.
    pub fn get(&self, ip: IpAddr) -> Option<&Record> {
        let key = key_of(ip);
        let (hash, tag) = self.hash(key);
        self.find(key, hash, tag).map(|at| &self.slots[at])
    }

    /// Every record, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Record> {
        self.meta.iter().zip(&self.slots).filter(|(meta, _)| **meta != 0).map(|(_, it)| it)
    }

    /// Records held now.
    pub fn len(&self) -> usize {
        self.len
    }

    /// The most records held.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Records dropped to make room since the table was made.
    pub fn evictions(&self) -> u64 {
        self.evictions
    }

    /// Drops one record: the first of the queue that is expired or was not used since it was
    /// last a candidate. Ends within one turn of the queue (every turn clears the bits).
    fn evict_one(&mut self, expired: &impl Fn(&Record) -> bool) {
        while let Some(key) = self.order.pop_front() {
            let (hash, tag) = self.hash(key);
            let Some(at) = self.find(key, hash, tag) else { continue };
            let meta = self.meta[at];
            if meta & REFERENCED == 0 || expired(&self.slots[at]) {
                self.remove_at(at);
                self.evictions += 1;
                return;
            }
            self.meta[at] = meta & TAG;
            self.order.push_back(key);
        }
    }

    /// Empties slot `at`, shifting the records after it back so every probe still finds them.
    fn remove_at(&mut self, at: usize) {
        let mask = self.mask();
        self.meta[at] = 0;
        self.len -= 1;
        let mut hole = at;
        let mut next = (at + 1) & mask;
        while self.meta[next] != 0 {
            let home = self.hash(self.slots[next].key).0 & mask;
            // The record at `next` may move to the hole when the hole lies between its home
            // slot and `next` (cyclically).
            if next.wrapping_sub(home) & mask >= next.wrapping_sub(hole) & mask {
                self.meta[hole] = self.meta[next];
                self.slots[hole] = self.slots[next];
                self.meta[next] = 0;
                hole = next;
            }
            next = (next + 1) & mask;
        }
    }

    /// Doubles the slots (up to `max_slots`), placing every record again.
    fn grow(&mut self) {
        let slots = (self.slots.len() * 2).min(self.max_slots);
        let meta = std::mem::replace(&mut self.meta, vec![0; slots]);
        let records = std::mem::replace(&mut self.slots, vec![Record::default(); slots]);
        let mask = slots - 1;
        for (old, record) in meta.into_iter().zip(records) {
            if old == 0 {
                continue;
            }
            let mut at = self.hash(record.key).0 & mask;
            while self.meta[at] != 0 {
                at = (at + 1) & mask;
            }
            self.meta[at] = old;
            self.slots[at] = record;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    fn v4(n: u32) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(n))
    }

    #[test]
    fn a_record_is_one_cache_line() {
        assert_eq!(size_of::<Record>(), 64);
        assert_eq!(align_of::<Record>(), 64);
    }

    #[test]
    fn keys_flags_and_counters_round_trip() {
        for ip in [v4(0x0A00_0001), "2001:db8::1".parse().unwrap(), "::".parse().unwrap()] {
            let mut record = Record::new(ip, IpClass::Cloud, 7);
            assert_eq!(record.ip(), ip);
            assert_eq!(record.class(), IpClass::Cloud);
            assert!(!record.hostile() && !record.blocklisted());
            record.set_hostile();
            record.add_ban();
            record.set_blocklisted();
            assert_eq!((record.bans(), record.class()), (1, IpClass::Cloud));
            assert!(record.hostile() && record.blocklisted());
        }
        let mut record = Record::new(v4(1), IpClass::Public, 0);
        record.bans_flags |= BANS;
        record.add_ban();
        assert_eq!((record.bans(), record.class()), (BANS, IpClass::Public));
        assert_eq!((secs(-5), secs(i64::MAX), secs(1_800_000_000)), (0, u32::MAX, 1_800_000_000));
        for (ip, subnet) in
            [("203.0.113.77", "203.0.113.0/24"), ("2001:db8:1:2:3::9", "2001:db8:1:2::/64")]
        {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(subnet_of_key(subnet_key(ip)).to_string(), subnet);
            assert_eq!(subnet_of_key(subnet_key(ip)), super::super::subnet_of(ip));
        }
    }

    #[test]
    fn holds_every_key_until_full_then_evicts_one_per_insert() {
        let mut table = AddressTable::new(1_000);
        for n in 0..1_000 {
            table.entry(v4(n), || Record::new(v4(n), IpClass::Public, 0), |_| false).failed += 1;
        }
        assert_eq!((table.len(), table.evictions()), (1_000, 0));
        for n in 0..1_000 {
            assert_eq!(table.get(v4(n)).map(|it| (it.ip(), it.failed)), Some((v4(n), 1)));
        }
        for n in 1_000..100_000 {
            table.entry(v4(n), || Record::new(v4(n), IpClass::Public, 0), |_| false);
            assert_eq!(table.len(), 1_000);
            // Address 7 is used all the time: it always gets a second chance.
            table.entry(v4(7), || Record::new(v4(7), IpClass::Public, 0), |_| false).failed += 1;
        }
        assert_eq!(table.evictions(), 99_000);
        assert_eq!(table.get(v4(7)).map(|it| it.failed), Some(99_001));
        assert!(table.get(v4(99_999)).is_some());
        // Every record still held is found again by its key (the shifts kept the probes intact).
        let held: Vec<IpAddr> = table.iter().map(Record::ip).collect();
        assert_eq!(held.len(), 1_000);
        for ip in held {
            assert_eq!(table.get(ip).map(Record::ip), Some(ip));
        }
    }

    #[test]
    fn which_address_goes_depends_on_the_events_only() {
        let run = || {
            let mut table = AddressTable::new(100);
            for n in 0..10_000u32 {
                let ip = v4(n.wrapping_mul(2_654_435_761) % 300);
                table.entry(ip, || Record::new(ip, IpClass::Public, n), |_| false).failed += 1;
            }
            let mut held: Vec<(IpAddr, u32)> =
                table.iter().map(|it| (it.ip(), it.failed)).collect();
            held.sort();
            (held, table.evictions())
        };
        // Two tables hash with different seeds, so their records sit in different slots.
        assert_eq!(run(), run());
    }

    #[test]
    fn expired_records_go_first_even_when_used() {
        let mut table = AddressTable::new(4);
        for n in 1..=4 {
            table.entry(v4(n), || Record::new(v4(n), IpClass::Public, n), |_| false);
            table.entry(v4(n), || unreachable!(), |_| false);
        }
        table.entry(v4(5), || Record::new(v4(5), IpClass::Public, 5), |it| it.last_seen == 3);
        assert!(table.get(v4(3)).is_none(), "the expired record went");
        assert!([1, 2, 4, 5].iter().all(|n| table.get(v4(*n)).is_some()));
        assert_eq!(table.evictions(), 1);
    }
}
