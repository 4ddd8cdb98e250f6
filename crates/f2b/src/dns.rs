//! fail2ban's `usedns`: whether `<HOST>` may match a host name and what a matched name becomes.
//!
//! fail2ban's modes (`Filter.setUseDns`, `DNSUtils.textToIp`): `yes` and `warn` resolve a
//! matched name to its addresses (one failure per address; `warn` also logs the lookup), `no`
//! writes `<HOST>` as `<ADDR>` and drops a name matched by `<DNS>` or `<F-DNS/>`, `raw` reports the
//! name as it is. A name that is an address in text form is taken as that address in every mode.
//!
//! Lookups go through the system resolver (`getaddrinfo`) on a helper thread with a timeout, at
//! most [`Resolver::MAX_IN_FLIGHT`] at once, and their results (empty ones too, as fail2ban's
//! `CACHE_nameToIp` does) are kept for [`Resolver::TTL`] in a cache of at most
//! [`Resolver::MAX_ENTRIES`] names. A name that is not a plausible host name is never looked up.

use std::{
    collections::HashMap,
    net::{IpAddr, ToSocketAddrs},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

/// fail2ban's `usedns` modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UseDns {
    /// Resolve matched host names.
    Yes,
    /// Resolve matched host names and warn about it (fail2ban's jail default).
    Warn,
    /// `<HOST>` matches addresses only; other host names are ignored.
    No,
    /// Matched host names are reported as they are, never resolved (Vigil's default).
    Raw,
}

impl UseDns {
    /// `Filter.setUseDns`: `yes`, `warn`, `no` or `raw`, any case (`None` for anything else;
    /// fail2ban then logs an error and uses `no`).
    pub fn parse(value: &str) -> Option<UseDns> {
        match value.trim().to_lowercase().as_str() {
            "yes" => Some(UseDns::Yes),
            "warn" => Some(UseDns::Warn),
            "no" => Some(UseDns::No),
            "raw" => Some(UseDns::Raw),
            _ => None,
        }
    }

    /// The mode's name in fail2ban's configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            UseDns::Yes => "yes",
            UseDns::Warn => "warn",
            UseDns::No => "no",
            UseDns::Raw => "raw",
        }
    }

    /// Whether matched host names are looked up.
    pub fn resolves(self) -> bool {
        matches!(self, UseDns::Yes | UseDns::Warn)
    }
}

/// A name lookup: the addresses of a host name.
pub type Lookup = dyn Fn(&str) -> std::io::Result<Vec<IpAddr>> + Send + Sync;

/// Counters of a [`Resolver`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResolverStats {
    /// Lookups started.
    pub lookups: u64,
    /// Answers taken from the cache.
    pub hits: u64,
    /// Lookups that did not answer within the timeout (their name resolves to nothing).
    pub timeouts: u64,
    /// Names refused: not a host name, or too many lookups already under way.
    pub refused: u64,
    /// Cache entries dropped to make room.
    pub evictions: u64,
}

#[derive(Debug, Default)]
struct Cache {
    entries: HashMap<String, (Instant, Vec<IpAddr>)>,
}

/// Resolves host names with a timeout and a bounded cache.
pub struct Resolver {
    lookup: Arc<Lookup>,
    timeout: Duration,
    ttl: Duration,
    cache: Mutex<Cache>,
    in_flight: Arc<AtomicUsize>,
    lookups: AtomicU64,
    hits: AtomicU64,
    timeouts: AtomicU64,
    refused: AtomicU64,
    evictions: AtomicU64,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver")
            .field("timeout", &self.timeout)
            .field("ttl", &self.ttl)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl Resolver {
    /// Names kept in the cache (fail2ban's `CACHE_nameToIp.maxCount`).
    pub const MAX_ENTRIES: usize = 1000;
    /// How long an answer is kept (fail2ban's `CACHE_nameToIp.maxTime`, 5 minutes).
    pub const TTL: Duration = Duration::from_secs(300);
    /// Lookups under way at once; a name beyond that resolves to nothing (and is not cached).
    pub const MAX_IN_FLIGHT: usize = 4;
    /// The default timeout of one lookup.
    pub const TIMEOUT: Duration = Duration::from_secs(3);

    /// The system resolver (`getaddrinfo`: `/etc/hosts`, then DNS as `nsswitch.conf` says).
    pub fn system(timeout: Duration) -> Resolver {
        Resolver::with_lookup(
            |name| Ok((name, 0u16).to_socket_addrs()?.map(|a| a.ip()).collect()),
            timeout,
        )
    }

    /// A resolver that looks names up with `lookup` (run on a helper thread).
    pub fn with_lookup(
        lookup: impl Fn(&str) -> std::io::Result<Vec<IpAddr>> + Send + Sync + 'static,
        timeout: Duration,
    ) -> Resolver {
        Resolver {
            lookup: Arc::new(lookup),
            timeout,
            ttl: Resolver::TTL,
            cache: Mutex::new(Cache::default()),
            in_flight: Arc::new(AtomicUsize::new(0)),
            lookups: AtomicU64::new(0),
            hits: AtomicU64::new(0),
            timeouts: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
        }
    }

    /// The same resolver with answers kept for `ttl` instead of [`Resolver::TTL`].
    pub fn with_ttl(mut self, ttl: Duration) -> Resolver {
        self.ttl = ttl;
        self
    }

    /// The counters so far.
    pub fn stats(&self) -> ResolverStats {
        ResolverStats {
            lookups: self.lookups.load(Ordering::Relaxed),
            hits: self.hits.load(Ordering::Relaxed),
            timeouts: self.timeouts.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
            evictions: self.evictions.load(Ordering::Relaxed),
        }
    }

    /// Names in the cache.
    pub fn cached(&self) -> usize {
        self.lock().entries.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The addresses of `name` (sorted, without duplicates; empty when it does not resolve in
    /// time, or is not a host name).
    pub fn resolve(&self, name: &str) -> Vec<IpAddr> {
        if !is_host_name(name) {
            self.refused.fetch_add(1, Ordering::Relaxed);
            return Vec::new();
        }
        let key = name.to_ascii_lowercase();
        if let Some((at, ips)) = self.lock().entries.get(&key)
            && at.elapsed() < self.ttl
        {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return ips.clone();
        }
        // Claim a lookup slot.
        let claimed = self.in_flight.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < Resolver::MAX_IN_FLIGHT).then_some(n + 1)
        });
        if claimed.is_err() {
            self.refused.fetch_add(1, Ordering::Relaxed);
            return Vec::new();
        }
        self.lookups.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let lookup = Arc::clone(&self.lookup);
        let in_flight = Arc::clone(&self.in_flight);
        let owned = key.clone();
        let spawned = std::thread::Builder::new().name("vigil-f2b-dns".into()).spawn(move || {
            let answer = lookup(&owned);
            in_flight.fetch_sub(1, Ordering::AcqRel);
            let _ = tx.send(answer);
        });
        let answer = match spawned {
            Ok(_) => rx.recv_timeout(self.timeout),
            Err(_) => {
                self.in_flight.fetch_sub(1, Ordering::AcqRel);
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected)
            }
        };
        let mut ips = match answer {
            Ok(Ok(ips)) => ips,
            Ok(Err(_)) | Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => Vec::new(),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                self.timeouts.fetch_add(1, Ordering::Relaxed);
                Vec::new()
            }
        };
        ips.sort();
        ips.dedup();
        self.store(key, ips.clone());
        ips
    }

    fn store(&self, key: String, ips: Vec<IpAddr>) {
        let mut cache = self.lock();
        if !cache.entries.contains_key(&key) && cache.entries.len() >= Resolver::MAX_ENTRIES {
            let ttl = self.ttl;
            let before = cache.entries.len();
            cache.entries.retain(|_, (at, _)| at.elapsed() < ttl);
            let mut dropped = before - cache.entries.len();
            if cache.entries.len() >= Resolver::MAX_ENTRIES
                && let Some(oldest) =
                    cache.entries.iter().min_by_key(|(_, (at, _))| *at).map(|(k, _)| k.clone())
            {
                cache.entries.remove(&oldest);
                dropped += 1;
            }
            self.evictions.fetch_add(dropped as u64, Ordering::Relaxed);
        }
        cache.entries.insert(key, (Instant::now(), ips));
    }
}

/// Whether `name` can be a host name: 1 to 253 ASCII letters, digits, `-`, `_` and `.`, not
/// starting with `-` or `.` (so it cannot read as an option or an empty label).
fn is_host_name(name: &str) -> bool {
    (1..=253).contains(&name.len())
        && !name.starts_with(['-', '.'])
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// `IPAddr.searchIP` + `isValid`: the address `text` spells (IPv6 possibly in brackets), in
/// fail2ban's normal form (an IPv4-mapped IPv6 address is its IPv4 address).
pub(crate) fn plain_ip(text: &str) -> Option<IpAddr> {
    let inner = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')).unwrap_or(text);
    let ip: IpAddr = if inner.contains(':') {
        inner.parse::<std::net::Ipv6Addr>().ok()?.into()
    } else if inner.len() == text.len() {
        text.parse::<std::net::Ipv4Addr>().ok()?.into()
    } else {
        return None;
    };
    Some(normal(ip))
}

/// fail2ban's `IPAddr`: IPv4-mapped IPv6 addresses are IPv4 addresses.
pub(crate) fn normal(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// `str(IPAddr(ip, cidr))` for an address captured by `<HOST>`/`<ADDR>`/`<SUBNET>` (`ip4` or
/// `ip6` group, `cidr` group if any): a valid address in its normal text form (IPv6 lower-case
/// and compressed, an IPv4-mapped one as IPv4), a subnet as its network `addr/len`; anything
/// that does not parse is kept as captured, as fail2ban keeps it.
pub(crate) fn addr_id(ip: &str, cidr: Option<&str>, v6: bool) -> String {
    let Some(cidr) = cidr.filter(|c| !c.is_empty()) else {
        // A valid IPv4 address is already in its normal form (`inet_pton` and Rust refuse
        // leading zeros alike), an invalid one is kept: either way the text as captured.
        if !v6 {
            return ip.to_owned();
        }
        return ip
            .parse::<std::net::Ipv6Addr>()
            .map_or_else(|_| ip.to_owned(), |a| normal(a.into()).to_string());
    };
    // `\d+`: a length beyond any family's leaves the address whole, like Python's big ints.
    let len = cidr.parse::<u32>().unwrap_or(u32::MAX);
    match ip.parse::<IpAddr>() {
        Ok(IpAddr::V4(a)) => {
            let bits = u32::from(a) & u32::MAX.checked_shl(32u32.saturating_sub(len)).unwrap_or(0);
            let net = std::net::Ipv4Addr::from(bits);
            if len > 0 && len < 32 { format!("{net}/{len}") } else { net.to_string() }
        }
        Ok(IpAddr::V6(a)) => {
            let bits =
                u128::from(a) & u128::MAX.checked_shl(128u32.saturating_sub(len)).unwrap_or(0);
            let net = std::net::Ipv6Addr::from(bits);
            if len > 0 && len < 128 { format!("{net}/{len}") } else { net.to_string() }
        }
        Err(_) => ip.to_owned(),
    }
}

/// `DNSUtils.textToIp`: the addresses a matched host name stands for under `mode`.
pub(crate) fn text_to_ips(text: &str, mode: UseDns, resolver: Option<&Resolver>) -> Vec<IpAddr> {
    if let Some(ip) = plain_ip(text) {
        return vec![ip];
    }
    match resolver {
        Some(r) if mode.resolves() => {
            let mut ips: Vec<IpAddr> = r.resolve(text).into_iter().map(normal).collect();
            ips.sort();
            ips.dedup();
            ips
        }
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn counting(
        answer: Vec<IpAddr>,
        delay: Duration,
    ) -> (Resolver, Arc<AtomicUsize>, Arc<Mutex<Vec<String>>>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let names = Arc::new(Mutex::new(Vec::new()));
        let (c, n) = (Arc::clone(&calls), Arc::clone(&names));
        let r = Resolver::with_lookup(
            move |name| {
                c.fetch_add(1, Ordering::SeqCst);
                n.lock().unwrap().push(name.to_owned());
                std::thread::sleep(delay);
                Ok(answer.clone())
            },
            Duration::from_millis(200),
        );
        (r, calls, names)
    }

    #[test]
    fn modes_parse_like_fail2ban() {
        assert_eq!(UseDns::parse("YES"), Some(UseDns::Yes));
        assert_eq!(UseDns::parse("warn"), Some(UseDns::Warn));
        assert_eq!(UseDns::parse(" no "), Some(UseDns::No));
        assert_eq!(UseDns::parse("Raw"), Some(UseDns::Raw));
        assert_eq!(UseDns::parse("true"), None);
        assert!(UseDns::Warn.resolves() && !UseDns::No.resolves() && !UseDns::Raw.resolves());
    }

    #[test]
    fn answers_are_cached_sorted_and_deduplicated() {
        let a: IpAddr = "192.0.2.9".parse().unwrap();
        let b: IpAddr = "192.0.2.1".parse().unwrap();
        let (r, calls, names) = counting(vec![a, b, a], Duration::ZERO);
        assert_eq!(r.resolve("Host.Example"), vec![b, a]);
        assert_eq!(r.resolve("host.example"), vec![b, a]);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(names.lock().unwrap().as_slice(), ["host.example"]);
        let s = r.stats();
        assert_eq!((s.lookups, s.hits, s.timeouts), (1, 1, 0));
    }

    #[test]
    fn a_slow_lookup_times_out_and_its_empty_answer_is_cached() {
        let (r, calls, _) = counting(vec!["192.0.2.1".parse().unwrap()], Duration::from_secs(2));
        let started = Instant::now();
        assert!(r.resolve("slow.example").is_empty());
        assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
        assert!(r.resolve("slow.example").is_empty());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(r.stats().timeouts, 1);
        assert_eq!(r.stats().hits, 1);
    }

    #[test]
    fn expired_answers_are_looked_up_again() {
        let (r, calls, _) = counting(vec!["192.0.2.1".parse().unwrap()], Duration::ZERO);
        let r = r.with_ttl(Duration::ZERO);
        r.resolve("a.example");
        r.resolve("a.example");
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn the_cache_is_bounded() {
        let (r, calls, _) = counting(vec![], Duration::ZERO);
        for i in 0..Resolver::MAX_ENTRIES + 5 {
            r.resolve(&format!("h{i}.example"));
        }
        assert_eq!(r.cached(), Resolver::MAX_ENTRIES);
        assert_eq!(r.stats().evictions, 5);
        assert_eq!(calls.load(Ordering::SeqCst), Resolver::MAX_ENTRIES + 5);
    }

    #[test]
    fn lookups_under_way_are_bounded() {
        let (r, calls, _) = counting(vec![], Duration::from_millis(600));
        let r = Resolver { timeout: Duration::from_millis(20), ..r };
        for i in 0..Resolver::MAX_IN_FLIGHT + 3 {
            assert!(r.resolve(&format!("busy{i}.example")).is_empty());
        }
        assert_eq!(calls.load(Ordering::SeqCst), Resolver::MAX_IN_FLIGHT);
        assert_eq!(r.stats().refused, 3);
    }

    #[test]
    fn names_that_are_not_host_names_are_never_looked_up() {
        let (r, calls, _) = counting(vec![], Duration::ZERO);
        for bad in ["", "-x", ".x", "a b", "a;b", "hé.example", &"a".repeat(254)] {
            assert!(r.resolve(bad).is_empty(), "{bad:?}");
        }
        assert_eq!(calls.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn addresses_become_ids_like_fail2ban_ipaddr() {
        // fail2ban-regex testRegexSubnet: `192.0.2.0/24`, `2001:db8:ff:f0::/60`.
        assert_eq!(addr_id("192.0.2.1", Some("24"), false), "192.0.2.0/24");
        assert_eq!(addr_id("2001:DB8:FF:FF::1", Some("60"), true), "2001:db8:ff:f0::/60");
        assert_eq!(addr_id("2001:DB8:FF:FF::1", None, true), "2001:db8:ff:ff::1");
        assert_eq!(addr_id("192.0.2.1", Some("32"), false), "192.0.2.1");
        assert_eq!(addr_id("192.0.2.1", Some("0"), false), "0.0.0.0");
        assert_eq!(addr_id("192.0.2.1", Some("99999999999"), false), "192.0.2.1");
        assert_eq!(addr_id("::ffff:192.0.2.1", None, true), "192.0.2.1");
        // Not an address for inet_pton: kept as captured.
        assert_eq!(addr_id("192.0.2.001", None, false), "192.0.2.001");
        assert_eq!(addr_id("999.0.2.1", Some("8"), false), "999.0.2.1");
    }

    #[test]
    fn text_to_ips_follows_the_mode() {
        let (r, calls, _) = counting(vec!["::ffff:192.0.2.5".parse().unwrap()], Duration::ZERO);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        // An address in text form is taken in every mode, without a lookup.
        for mode in [UseDns::Yes, UseDns::Warn, UseDns::No] {
            assert_eq!(text_to_ips("[2001:db8::1]", mode, Some(&r)), vec![ip("2001:db8::1")]);
            assert_eq!(text_to_ips("::ffff:192.0.2.7", mode, Some(&r)), vec![ip("192.0.2.7")]);
        }
        assert!(text_to_ips("host.example", UseDns::No, Some(&r)).is_empty());
        assert_eq!(calls.load(Ordering::SeqCst), 0);
        assert_eq!(text_to_ips("host.example", UseDns::Yes, Some(&r)), vec![ip("192.0.2.5")]);
        assert_eq!(text_to_ips("host.example", UseDns::Warn, Some(&r)), vec![ip("192.0.2.5")]);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(plain_ip("1.2.3"), None);
        assert_eq!(plain_ip("[1.2.3.4]"), None);
    }

    #[test]
    fn the_system_resolver_reads_localhost_from_etc_hosts() {
        // Debian's /etc/hosts always names localhost; no network is needed.
        let r = Resolver::system(Duration::from_secs(5));
        let ips = r.resolve("localhost");
        assert!(!ips.is_empty());
        assert!(ips.iter().all(IpAddr::is_loopback), "{ips:?}");
    }
}
