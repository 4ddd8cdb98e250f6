//! Addresses and prefixes as detectors compare them: IPv4-mapped IPv6 folded to IPv4, and the
//! `ignoreip` lists of jails (addresses and CIDR prefixes).
//!
//! fail2ban's `ignoreip` also accepts host names, resolved by DNS at start; Vigil does no DNS in
//! a detector, so a name is a configuration error rather than a silent miss.

use std::{fmt, net::IpAddr, str::FromStr};

use crate::Error;

/// The address as detectors key it: IPv4-mapped IPv6 (`::ffff:192.0.2.1`) becomes IPv4, so one
/// client is one key whichever socket family logged it.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// An address prefix (`192.0.2.0/24`, `2001:db8::/32`); a bare address is a full-length prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    len: u8,
}

impl IpNet {
    /// Whether `ip` (canonicalised) lies inside the prefix.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                prefix_eq(u128::from(u32::from(net)), u128::from(u32::from(ip)), self.len, 32)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_eq(u128::from(net), u128::from(ip), self.len, 128)
            }
            _ => false,
        }
    }
}

fn prefix_eq(a: u128, b: u128, len: u8, bits: u32) -> bool {
    let len = u32::from(len).min(bits);
    if len == 0 {
        return true;
    }
    let shift = bits - len;
    (a >> shift) == (b >> shift)
}

impl FromStr for IpNet {
    type Err = Error;

    fn from_str(text: &str) -> Result<IpNet, Error> {
        let bad = |why: &str| Error::Config(format!("invalid address or prefix {text:?}: {why}"));
        let (addr, len) = match text.trim().split_once('/') {
            Some((addr, len)) => (addr, Some(len)),
            None => (text.trim(), None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| bad("not an IP address"))?;
        let addr = canonical(addr);
        let bits = if addr.is_ipv4() { 32 } else { 128 };
        let len = match len {
            None => bits,
            Some(len) => match len.parse::<u8>() {
                Ok(n) if n <= bits => n,
                _ => return Err(bad("prefix length out of range")),
            },
        };
        Ok(IpNet { addr, len })
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// A list of prefixes an address is checked against.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IpList {
    nets: Vec<IpNet>,
}

impl IpList {
    /// Parses every entry; the first invalid one is the error.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<IpList, Error> {
        let nets = entries
            .iter()
            .flat_map(|it| it.as_ref().split([' ', ',']))
            .filter(|it| !it.trim().is_empty())
            .map(str::parse)
            .collect::<Result<_, _>>()?;
        Ok(IpList { nets })
    }

    /// Whether any prefix contains `ip`.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.nets.iter().any(|net| net.contains(ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn prefixes_contain_their_addresses_only() {
        let list = IpList::parse(&["127.0.0.1/8 ::1", "192.0.2.0/24", "2001:db8::/32"]).unwrap();
        for inside in ["127.5.6.7", "::1", "192.0.2.255", "::ffff:192.0.2.9", "2001:db8:1::5"] {
            assert!(list.contains(ip(inside)), "{inside}");
        }
        for outside in ["128.0.0.1", "::2", "192.0.3.0", "2001:db9::1", "10.0.0.1"] {
            assert!(!list.contains(ip(outside)), "{outside}");
        }
        assert!(IpList::parse(&["0.0.0.0/0"]).unwrap().contains(ip("203.0.113.9")));
        assert!(!IpList::parse(&["0.0.0.0/0"]).unwrap().contains(ip("2001:db8::1")));
    }

    #[test]
    fn names_and_bad_lengths_are_rejected() {
        for bad in ["localhost", "192.0.2.0/33", "::/129", "1.2.3.4/x", "1.2.3.4/-1"] {
            let err = bad.parse::<IpNet>().unwrap_err().to_string();
            assert!(err.starts_with("invalid address or prefix"), "{bad}: {err}");
        }
        assert_eq!("::ffff:10.1.2.3/8".parse::<IpNet>().unwrap().to_string(), "10.1.2.3/8");
    }
}
