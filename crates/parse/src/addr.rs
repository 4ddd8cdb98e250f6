//! Address text → [`IpAddr`], with IPv4-mapped IPv6 addresses normalised to IPv4.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Parses an IPv4 or IPv6 address; `::ffff:a.b.c.d` becomes the IPv4 address `a.b.c.d`.
pub fn parse_ip(text: &str) -> Option<IpAddr> {
    parse_ip_flag(text).map(|(ip, _)| ip)
}

/// [`parse_ip`], also telling whether the address was normalised from a mapped one.
pub(crate) fn parse_ip_flag(text: &str) -> Option<(IpAddr, bool)> {
    let b = text.as_bytes();
    if b.is_empty() || b.len() > 45 {
        return None;
    }
    if memchr::memchr(b':', b).is_none() {
        return text.parse::<Ipv4Addr>().ok().map(|it| (IpAddr::V4(it), false));
    }
    let v6 = text.parse::<Ipv6Addr>().ok()?;
    match v6.to_ipv4_mapped() {
        Some(v4) => Some((IpAddr::V4(v4), true)),
        None => Some((IpAddr::V6(v6), false)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(parse_ip("203.0.113.9").unwrap().to_string(), "203.0.113.9");
        assert_eq!(parse_ip("::ffff:203.0.113.9").unwrap().to_string(), "203.0.113.9");
        assert_eq!(parse_ip("2001:db8::1").unwrap().to_string(), "2001:db8::1");
        assert_eq!(parse_ip_flag("::ffff:1.2.3.4").map(|it| it.1), Some(true));
        for bad in ["", "1.2.3", "256.1.1.1", "host.example", "1.2.3.4:22", "::ffff:1.2.3.4.5"] {
            assert!(parse_ip(bad).is_none(), "{bad}");
        }
    }
}
