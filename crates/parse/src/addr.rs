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
        return parse_v4(b).map(|it| (IpAddr::V4(it), false));
    }
    let v6 = text.parse::<Ipv6Addr>().ok()?;
    match v6.to_ipv4_mapped() {
        Some(v4) => Some((IpAddr::V4(v4), true)),
        None => Some((IpAddr::V6(v6), false)),
    }
}

/// Dotted-quad IPv4, as strict as the standard library's parser (no leading zeros, no
/// spaces) but without its generic machinery: this runs once per log line.
fn parse_v4(b: &[u8]) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut idx = 0;
    for (k, octet) in octets.iter_mut().enumerate() {
        let start = idx;
        let mut n = 0u32;
        while let Some(&c) = b.get(idx) {
            let d = c.wrapping_sub(b'0');
            if d > 9 {
                break;
            }
            n = n * 10 + u32::from(d);
            idx += 1;
            if idx - start > 3 {
                return None;
            }
        }
        let len = idx - start;
        if len == 0 || n > 255 || (len > 1 && b[start] == b'0') {
            return None;
        }
        *octet = n as u8;
        if k < 3 {
            if b.get(idx) != Some(&b'.') {
                return None;
            }
            idx += 1;
        }
    }
    (idx == b.len()).then(|| Ipv4Addr::from(octets))
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
        for bad in [
            "",
            "1.2.3",
            "256.1.1.1",
            "host.example",
            "1.2.3.4:22",
            "::ffff:1.2.3.4.5",
            "01.2.3.4",
            "1.2.3.4.",
            "1..2.3",
            "1.2.3.4 ",
            "1234.1.1.1",
            "+1.2.3.4",
        ] {
            assert_eq!(parse_v4(bad.as_bytes()), bad.parse().ok(), "{bad}");
            assert!(parse_ip(bad).is_none(), "{bad}");
        }
    }
}
