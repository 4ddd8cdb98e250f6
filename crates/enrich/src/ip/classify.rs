//! Address classes: localhost, private, cloud or public, and CIDR prefixes.
//!
//! "Private" covers every range that is not reachable from the Internet by design: IPv4 RFC 1918,
//! link-local (169.254/16), carrier-grade NAT (100.64/10), "this network" (0/8); IPv6 unique local
//! (fc00::/7), link-local (fe80::/10) and the deprecated site-local (fec0::/10). IPv4-mapped
//! (`::ffff:a.b.c.d`) and IPv4-compatible loopback addresses are classified as the IPv4 address
//! they carry. "Cloud" is any configured provider prefix; everything else is public.

use std::{fmt, net::IpAddr, str::FromStr};

use serde::Serialize;

/// What kind of address an IP is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IpClass {
    /// Loopback (127/8, ::1) or unspecified (0.0.0.0, ::).
    Localhost,
    /// Not routed on the Internet: RFC 1918, link-local, CGNAT, ULA.
    Private,
    /// In a configured cloud provider's prefix.
    Cloud,
    /// Anything else.
    Public,
}

impl IpClass {
    /// The class's name.
    pub fn as_str(self) -> &'static str {
        match self {
            IpClass::Localhost => "localhost",
            IpClass::Private => "private",
            IpClass::Cloud => "cloud",
            IpClass::Public => "public",
        }
    }
}

impl fmt::Display for IpClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The IPv4 address an IPv6 address carries (mapped `::ffff:a.b.c.d`), else the address itself.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => ip,
        },
        IpAddr::V4(_) => ip,
    }
}

/// Whether `ip` is loopback or unspecified.
pub fn is_localhost(ip: IpAddr) -> bool {
    let ip = canonical(ip);
    ip.is_loopback() || ip.is_unspecified()
}

/// Whether `ip` is in a private, link-local or shared (CGNAT) range.
pub fn is_private(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            a == 10
                || (a == 172 && (16..=31).contains(&b))
                || (a == 192 && b == 168)
                || (a == 169 && b == 254)
                || (a == 100 && (64..=127).contains(&b))
                || (a == 0 && !v4.is_unspecified())
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            (first & 0xfe00) == 0xfc00 // fc00::/7 unique local
                || (first & 0xffc0) == 0xfe80 // fe80::/10 link-local
                || (first & 0xffc0) == 0xfec0 // fec0::/10 site-local (deprecated)
        }
    }
}

/// An address prefix such as `203.0.113.0/24` or `2001:db8::/32`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    addr: IpAddr,
    len: u8,
}

impl Cidr {
    /// The prefix of `len` bits that contains `ip` (`len` is capped to the family's width).
    pub fn containing(ip: IpAddr, len: u8) -> Cidr {
        let ip = canonical(ip);
        let len = len.min(max_len(ip));
        Cidr { addr: mask(ip, len), len }
    }

    /// Whether `ip` is inside the prefix.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        ip.is_ipv4() == self.addr.is_ipv4() && mask(ip, self.len) == self.addr
    }

    /// The prefix length.
    pub fn prefix_len(&self) -> u8 {
        self.len
    }

    /// The network address.
    pub fn network(&self) -> IpAddr {
        self.addr
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl FromStr for Cidr {
    type Err = String;

    /// `a.b.c.d/n`, `x::y/n`, or a bare address (a /32 or /128).
    fn from_str(text: &str) -> Result<Cidr, String> {
        let text = text.trim();
        let (addr, len) = match text.split_once('/') {
            Some((addr, len)) => (addr, Some(len)),
            None => (text, None),
        };
        let ip: IpAddr = addr.parse().map_err(|_| format!("`{text}` is not an address"))?;
        let ip = canonical(ip);
        let len = match len {
            None => max_len(ip),
            Some(len) => match len.parse::<u8>() {
                Ok(n) if n <= max_len(ip) => n,
                _ => return Err(format!("`{text}` has an invalid prefix length")),
            },
        };
        Ok(Cidr { addr: mask(ip, len), len })
    }
}

fn max_len(ip: IpAddr) -> u8 {
    if ip.is_ipv4() { 32 } else { 128 }
}

fn mask(ip: IpAddr, len: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - u32::from(len)) };
            IpAddr::V4((bits & mask).into())
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let mask = if len == 0 { 0 } else { u128::MAX << (128 - u32::from(len)) };
            IpAddr::V6((bits & mask).into())
        }
    }
}

/// Named prefix lists: a cloud provider's ranges, an allow-list.
#[derive(Debug, Clone, Default)]
pub struct PrefixSet {
    entries: Vec<(Cidr, String)>,
}

impl PrefixSet {
    /// Parses every prefix of every named list; fails on the first invalid one.
    pub fn parse<'a>(
        lists: impl IntoIterator<Item = (&'a str, &'a [String])>,
    ) -> Result<PrefixSet, String> {
        let mut entries = Vec::new();
        for (name, prefixes) in lists {
            for text in prefixes {
                let cidr: Cidr = text.parse().map_err(|err| format!("{name}: {err}"))?;
                entries.push((cidr, name.to_owned()));
            }
        }
        // Longest prefixes first, so the most specific name wins.
        entries.sort_by_key(|it| std::cmp::Reverse(it.0.len));
        Ok(PrefixSet { entries })
    }

    /// The name of the list holding `ip`.
    pub fn lookup(&self, ip: IpAddr) -> Option<&str> {
        self.entries.iter().find(|(cidr, _)| cidr.contains(ip)).map(|(_, name)| name.as_str())
    }

    /// Whether no prefix is configured.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Classifies `ip`; `cloud` holds the providers' prefixes. Returns the class and the provider.
pub fn classify(ip: IpAddr, cloud: &PrefixSet) -> (IpClass, Option<&str>) {
    if is_localhost(ip) {
        (IpClass::Localhost, None)
    } else if is_private(ip) {
        (IpClass::Private, None)
    } else if let Some(provider) = cloud.lookup(ip) {
        (IpClass::Cloud, Some(provider))
    } else {
        (IpClass::Public, None)
    }
}

/// The subnet an address is grouped under for patterns and sweeps: its /24 (IPv4) or /64 (IPv6).
pub fn subnet_of(ip: IpAddr) -> Cidr {
    let ip = canonical(ip);
    Cidr::containing(ip, if ip.is_ipv4() { 24 } else { 64 })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(text: &str) -> IpClass {
        let cloud = PrefixSet::parse([("aws", &["3.0.0.0/8".to_owned()][..])]).unwrap();
        classify(text.parse().unwrap(), &cloud).0
    }

    #[test]
    fn ipv4_ranges() {
        for (ip, want) in [
            ("127.0.0.1", IpClass::Localhost),
            ("127.255.255.254", IpClass::Localhost),
            ("0.0.0.0", IpClass::Localhost),
            ("10.0.0.1", IpClass::Private),
            ("10.255.255.255", IpClass::Private),
            ("172.16.0.1", IpClass::Private),
            ("172.31.255.255", IpClass::Private),
            ("172.15.255.255", IpClass::Public),
            ("172.32.0.0", IpClass::Public),
            ("192.168.1.1", IpClass::Private),
            ("192.169.0.1", IpClass::Public),
            ("169.254.10.1", IpClass::Private),
            ("100.64.0.1", IpClass::Private),
            ("100.127.255.255", IpClass::Private),
            ("100.128.0.1", IpClass::Public),
            ("100.63.255.255", IpClass::Public),
            ("0.1.2.3", IpClass::Private),
            ("3.5.140.2", IpClass::Cloud),
            ("8.8.8.8", IpClass::Public),
            ("203.0.113.9", IpClass::Public),
        ] {
            assert_eq!(class(ip), want, "{ip}");
        }
    }

    #[test]
    fn ipv6_ranges() {
        for (ip, want) in [
            ("::1", IpClass::Localhost),
            ("::", IpClass::Localhost),
            ("fc00::1", IpClass::Private),
            ("fd12:3456:789a::1", IpClass::Private),
            ("fe80::1", IpClass::Private),
            ("febf::1", IpClass::Private),
            ("fec0::1", IpClass::Private),
            ("fbff::1", IpClass::Public),
            ("ff02::1", IpClass::Public),
            ("2001:db8::1", IpClass::Public),
            ("2a01:4f8::1", IpClass::Public),
        ] {
            assert_eq!(class(ip), want, "{ip}");
        }
    }

    #[test]
    fn mapped_addresses_are_classified_as_their_ipv4() {
        assert_eq!(class("::ffff:127.0.0.1"), IpClass::Localhost);
        assert_eq!(class("::ffff:192.168.0.7"), IpClass::Private);
        assert_eq!(class("::ffff:100.64.1.1"), IpClass::Private);
        assert_eq!(class("::ffff:3.1.2.3"), IpClass::Cloud);
        assert_eq!(class("::ffff:198.51.100.7"), IpClass::Public);
        assert_eq!(
            subnet_of("::ffff:198.51.100.7".parse().unwrap()).to_string(),
            "198.51.100.0/24"
        );
    }

    #[test]
    fn prefixes_parse_and_contain() {
        let cidr: Cidr = "198.51.100.77/24".parse().unwrap();
        assert_eq!(cidr.to_string(), "198.51.100.0/24");
        assert!(cidr.contains("198.51.100.1".parse().unwrap()));
        assert!(!cidr.contains("198.51.101.1".parse().unwrap()));
        assert!(!cidr.contains("::1".parse().unwrap()));
        let v6: Cidr = "2001:db8:1:2::/64".parse().unwrap();
        assert!(v6.contains("2001:db8:1:2:ffff::1".parse().unwrap()));
        assert!(!v6.contains("2001:db8:1:3::1".parse().unwrap()));
        assert_eq!("10.1.2.3".parse::<Cidr>().unwrap().to_string(), "10.1.2.3/32");
        assert_eq!("0.0.0.0/0".parse::<Cidr>().unwrap().prefix_len(), 0);
        for bad in ["10.0.0.0/33", "::/129", "nonsense", "10.0.0/8", "10.0.0.0/-1", ""] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
        assert_eq!(
            subnet_of("2001:db8:1:2:3::4".parse().unwrap()).to_string(),
            "2001:db8:1:2::/64"
        );
    }
}
