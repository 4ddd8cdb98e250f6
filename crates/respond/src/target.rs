//! What may be banned: [`IpNet`] (an address or prefix), the [`Guard`] that decides, and
//! [`BanTarget`], the only type an action accepts.
//!
//! A `BanTarget` can only be made by [`Guard::check`], which refuses loopback, unspecified,
//! multicast, broadcast, link-local, the host's own addresses and allow-listed addresses or
//! prefixes (and any prefix that contains one of them). IPv4-mapped IPv6 addresses are
//! normalised to IPv4 first, so `::ffff:127.0.0.1` is loopback too. Because actions take only
//! `BanTarget`, no code path can hand a protected address to the firewall.

use std::{
    fmt,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    path::Path,
    str::FromStr,
};

use serde::{Deserialize, Serialize};

use crate::RespondError;

/// An IPv4 or IPv6 prefix; a single address is a /32 or /128. The address is always the
/// network address (host bits cleared) and IPv4-mapped IPv6 is stored as IPv4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IpNet {
    addr: IpAddr,
    len: u8,
}

impl IpNet {
    /// The prefix of `addr` of length `len` (cut to the family's maximum), host bits cleared.
    pub fn new(addr: IpAddr, len: u8) -> IpNet {
        let addr = normalise(addr);
        let len = len.min(max_len(addr));
        IpNet { addr: mask(addr, len), len }
    }

    /// The single address `addr`.
    pub fn host(addr: IpAddr) -> IpNet {
        let addr = normalise(addr);
        IpNet { addr, len: max_len(addr) }
    }

    /// The network address.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length.
    pub fn prefix_len(&self) -> u8 {
        self.len
    }

    /// Whether this is one address (a /32 or /128).
    pub fn is_host(&self) -> bool {
        self.len == max_len(self.addr)
    }

    /// Whether this is IPv4.
    pub fn is_ipv4(&self) -> bool {
        self.addr.is_ipv4()
    }

    /// Whether `addr` lies inside.
    pub fn contains(&self, addr: IpAddr) -> bool {
        let addr = normalise(addr);
        addr.is_ipv4() == self.addr.is_ipv4() && mask(addr, self.len) == self.addr
    }

    /// Whether the two prefixes share any address.
    pub fn overlaps(&self, other: &IpNet) -> bool {
        self.contains(other.addr) || other.contains(self.addr)
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_host() {
            write!(f, "{}", self.addr)
        } else {
            write!(f, "{}/{}", self.addr, self.len)
        }
    }
}

impl FromStr for IpNet {
    type Err = RespondError;

    fn from_str(text: &str) -> Result<IpNet, RespondError> {
        let invalid = || RespondError::InvalidAddress(text.chars().take(64).collect());
        let text = text.trim();
        match text.split_once('/') {
            None => text.parse().map(IpNet::host).map_err(|_| invalid()),
            Some((addr, len)) => {
                let addr: IpAddr = addr.parse().map_err(|_| invalid())?;
                let len: u8 = len.parse().map_err(|_| invalid())?;
                // A mapped IPv6 prefix keeps its IPv4 part: ::ffff:10.0.0.0/104 is 10.0.0.0/8.
                let len = match (addr, normalise(addr)) {
                    (IpAddr::V6(_), IpAddr::V4(_)) if len >= 96 => len - 96,
                    (IpAddr::V6(_), IpAddr::V4(_)) => return Err(invalid()),
                    _ => len,
                };
                if len > max_len(addr) {
                    return Err(invalid());
                }
                Ok(IpNet::new(addr, len))
            }
        }
    }
}

impl Serialize for IpNet {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for IpNet {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<IpNet, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// IPv4-mapped IPv6 (`::ffff:a.b.c.d`) becomes the IPv4 address; anything else is unchanged.
pub fn normalise(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
        IpAddr::V4(_) => addr,
    }
}

fn max_len(addr: IpAddr) -> u8 {
    if addr.is_ipv4() { 32 } else { 128 }
}

fn mask(addr: IpAddr, len: u8) -> IpAddr {
    match addr {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let keep = if len == 0 { 0 } else { u32::MAX << (32 - u32::from(len.min(32))) };
            IpAddr::V4(Ipv4Addr::from(bits & keep))
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let keep = if len == 0 { 0 } else { u128::MAX << (128 - u32::from(len.min(128))) };
            IpAddr::V6(Ipv6Addr::from(bits & keep))
        }
    }
}

/// An address or prefix that passed the [`Guard`]: the only thing actions accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BanTarget(IpNet);

impl BanTarget {
    /// The address or prefix.
    pub fn net(&self) -> IpNet {
        self.0
    }
}

impl fmt::Display for BanTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Decides what may be banned: everything except special-purpose ranges, the host's own
/// addresses and the allow-list.
#[derive(Debug, Clone, Default)]
pub struct Guard {
    own: Vec<IpAddr>,
    allow: Vec<IpNet>,
}

impl Guard {
    /// A guard protecting `own` addresses (the host's, plus configured extras) and `allow`.
    pub fn new(
        own: impl IntoIterator<Item = IpAddr>,
        allow: impl IntoIterator<Item = IpNet>,
    ) -> Guard {
        let mut own: Vec<IpAddr> = own.into_iter().map(normalise).collect();
        own.sort_unstable();
        own.dedup();
        Guard { own, allow: allow.into_iter().collect() }
    }

    /// The protected own addresses.
    pub fn own(&self) -> &[IpAddr] {
        &self.own
    }

    /// The allow-list.
    pub fn allow(&self) -> &[IpNet] {
        &self.allow
    }

    /// `net` as a [`BanTarget`], or why it may not be banned.
    pub fn check(&self, net: IpNet) -> Result<BanTarget, RespondError> {
        let refuse =
            |reason: String| Err(RespondError::Protected { address: net.to_string(), reason });
        if let Some(reason) = special(net) {
            return refuse(reason.to_owned());
        }
        if let Some(own) = self.own.iter().find(|it| net.contains(**it)) {
            return refuse(if net.is_host() {
                "the host's own address".to_owned()
            } else {
                format!("contains the host's own address {own}")
            });
        }
        if let Some(allowed) = self.allow.iter().find(|it| it.overlaps(&net)) {
            return refuse(format!("allow-listed ({allowed})"));
        }
        Ok(BanTarget(net))
    }

    /// Parses `text` (an address or prefix) and checks it.
    pub fn check_str(&self, text: &str) -> Result<BanTarget, RespondError> {
        self.check(text.parse()?)
    }
}

/// Special-purpose IPv4 ranges: (network, prefix length, why).
const SPECIAL_V4: [(u32, u8, &str); 6] = [
    (0x7f00_0000, 8, "loopback"),
    (0x0000_0000, 8, "unspecified (this network)"),
    (0xe000_0000, 4, "multicast"),
    (0xffff_ffff, 32, "broadcast"),
    (0xa9fe_0000, 16, "link-local"),
    (0xf000_0000, 4, "reserved"),
];

/// Special-purpose IPv6 ranges; the IPv4-mapped range is never seen here (normalised).
const SPECIAL_V6: [(u128, u8, &str); 5] = [
    (1, 128, "loopback"),
    (0, 128, "unspecified"),
    (0xff00 << 112, 8, "multicast"),
    (0xfe80 << 112, 10, "link-local"),
    (0xffff << 32, 96, "the IPv4-mapped range"),
];

/// Why a prefix touching a special-purpose range may not be banned, if it does.
fn special(net: IpNet) -> Option<&'static str> {
    match net.addr() {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            SPECIAL_V4.iter().find_map(|&(range, len, why)| {
                // Two prefixes overlap when they agree on the shorter one's bits.
                let common = len.min(net.prefix_len());
                let keep = if common == 0 { 0 } else { u32::MAX << (32 - u32::from(common)) };
                (bits & keep == range & keep).then_some(why)
            })
        }
        IpAddr::V6(v6) => {
            if net.prefix_len() == 0 {
                return Some("the whole address space");
            }
            let bits = u128::from(v6);
            SPECIAL_V6.iter().find_map(|&(range, len, why)| {
                let common = len.min(net.prefix_len());
                let keep = if common == 0 { 0 } else { u128::MAX << (128 - u32::from(common)) };
                (bits & keep == range & keep).then_some(why)
            })
        }
    }
}

/// The host's own addresses, read from `/proc/net/fib_trie` (IPv4 local routes) and
/// `/proc/net/if_inet6` under `proc_root` (normally `/proc`). Unreadable files give nothing:
/// loopback is always protected anyway, and configured extras still apply.
pub fn host_addresses(proc_root: &Path) -> Vec<IpAddr> {
    let mut out = Vec::new();
    if let Ok(text) = std::fs::read_to_string(proc_root.join("net/fib_trie")) {
        out.extend(parse_fib_trie(&text));
    }
    if let Ok(text) = std::fs::read_to_string(proc_root.join("net/if_inet6")) {
        out.extend(parse_if_inet6(&text));
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// Local IPv4 addresses: a `|-- a.b.c.d` line followed by `/32 host LOCAL`.
fn parse_fib_trie(text: &str) -> Vec<IpAddr> {
    let mut out = Vec::new();
    let mut last: Option<Ipv4Addr> = None;
    for line in text.lines() {
        let line = line.trim();
        if let Some(addr) = line.strip_prefix("|-- ") {
            last = addr.trim().parse().ok();
        } else if line.contains("/32 host LOCAL")
            && let Some(addr) = last
        {
            out.push(IpAddr::V4(addr));
        }
    }
    out
}

/// IPv6 addresses: the first column, 32 hex digits.
fn parse_if_inet6(text: &str) -> Vec<IpAddr> {
    text.lines()
        .filter_map(|line| {
            let hex = line.split_whitespace().next()?;
            (hex.len() == 32).then_some(())?;
            u128::from_str_radix(hex, 16).ok().map(|bits| IpAddr::V6(Ipv6Addr::from(bits)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(text: &str) -> IpNet {
        text.parse().unwrap()
    }

    #[test]
    fn prefixes_parse_normalise_and_print() {
        assert_eq!(net("203.0.113.9").to_string(), "203.0.113.9");
        assert_eq!(net("203.0.113.9/24").to_string(), "203.0.113.0/24");
        assert_eq!(net("2001:db8::1:2/64").to_string(), "2001:db8::/64");
        assert_eq!(net("::ffff:198.51.100.7").to_string(), "198.51.100.7");
        assert_eq!(net("::ffff:10.1.2.3/104").to_string(), "10.0.0.0/8");
        for bad in ["", "x", "1.2.3.4/33", "2001:db8::/129", "1.2.3.4/", "::ffff:1.2.3.4/64"] {
            assert!(bad.parse::<IpNet>().is_err(), "{bad}");
        }
        assert!(net("10.0.0.0/8").contains("10.9.9.9".parse().unwrap()));
        assert!(net("10.0.0.0/8").contains("::ffff:10.9.9.9".parse().unwrap()));
        assert!(!net("10.0.0.0/8").contains("11.0.0.1".parse().unwrap()));
        assert!(net("10.0.0.0/8").overlaps(&net("10.1.0.0/16")));
        assert!(!net("10.0.0.0/8").overlaps(&net("2001:db8::/32")));
    }

    #[test]
    fn the_guard_refuses_special_own_and_allowed_addresses_with_a_reason() {
        let guard = Guard::new(["192.0.2.10".parse().unwrap()], [net("198.51.100.0/24")]);
        let reason = |text: &str| match guard.check_str(text) {
            Err(RespondError::Protected { reason, .. }) => reason,
            other => panic!("{text}: {other:?}"),
        };
        assert_eq!(reason("127.0.0.1"), "loopback");
        assert_eq!(reason("::ffff:127.0.0.1"), "loopback");
        assert_eq!(reason("::1"), "loopback");
        assert_eq!(reason("0.0.0.0"), "unspecified (this network)");
        assert_eq!(reason("::"), "unspecified");
        assert_eq!(reason("224.0.0.1"), "multicast");
        assert_eq!(reason("ff02::1"), "multicast");
        assert_eq!(reason("255.255.255.255"), "broadcast");
        assert_eq!(reason("fe80::1"), "link-local");
        assert_eq!(reason("192.0.2.10"), "the host's own address");
        assert_eq!(reason("192.0.2.0/24"), "contains the host's own address 192.0.2.10");
        assert_eq!(reason("198.51.100.77"), "allow-listed (198.51.100.0/24)");
        assert_eq!(reason("198.0.0.0/8"), "allow-listed (198.51.100.0/24)");
        assert_eq!(reason("120.0.0.0/5"), "loopback");
        assert_eq!(guard.check_str("203.0.113.9").unwrap().to_string(), "203.0.113.9");
        assert_eq!(guard.check_str("2001:db8::1").unwrap().to_string(), "2001:db8::1");
        assert!(matches!(guard.check_str("nonsense"), Err(RespondError::InvalidAddress(_))));
    }

    #[test]
    fn host_addresses_come_from_fib_trie_and_if_inet6() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("net")).unwrap();
        let trie = "Main:\n  +-- 0.0.0.0/0 3 0 5\n     |-- 0.0.0.0\n        /0 universe UNICAST\n     \
                    +-- 10.0.2.0/24 2 0 2\n        |-- 10.0.2.0\n           /24 link UNICAST\n        \
                    |-- 10.0.2.15\n           /32 host LOCAL\n        |-- 10.0.2.255\n           \
                    /32 link BROADCAST\n";
        std::fs::write(dir.path().join("net/fib_trie"), trie).unwrap();
        std::fs::write(
            dir.path().join("net/if_inet6"),
            "00000000000000000000000000000001 01 80 10 80       lo\n\
             20010db8000000000000000000000042 02 40 00 80     eth0\n",
        )
        .unwrap();
        let found = host_addresses(dir.path());
        let want: Vec<IpAddr> =
            ["10.0.2.15", "::1", "2001:db8::42"].iter().map(|it| it.parse().unwrap()).collect();
        assert_eq!(found, want);
        // The live host has at least its loopback addresses.
        assert!(host_addresses(Path::new("/proc")).contains(&"127.0.0.1".parse().unwrap()));
    }
}
