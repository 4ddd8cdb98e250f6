//! Kernel firewall `LOG` lines (UFW, iptables and nftables `log prefix`):
//! `[UFW BLOCK] IN=eth0 OUT= MAC=… SRC=203.0.113.7 DST=198.51.100.10 … PROTO=TCP SPT=51234
//! DPT=22 …`, syslog-wrapped (program `kernel`) or bare (dmesg, the journal).
//!
//! The log prefix (the text before `IN=`) names the verdict: UFW's `[UFW BLOCK]`, `[UFW ALLOW]`,
//! `[UFW AUDIT]`, `[UFW LIMIT BLOCK]`; other prefixes that mention DROP, BLOCK, REJECT or DENY
//! are blocks, anything else is a plain `fw_log`.

use crate::{Action, Clock, Parsed, scan, syslog, time};

/// Parses a kernel firewall line, syslog-wrapped or bare.
pub fn parse<'a>(line: &'a str, clock: &Clock) -> Option<Parsed<'a>> {
    let mut p = match syslog::header(line, clock) {
        Some(header) => {
            if header.program != Some("kernel") {
                return None;
            }
            syslog::from_header("firewall", &header)
        }
        None => Parsed::new("firewall", line),
    };
    message(&mut p).then_some(p)
}

/// Reads `p.message` as a firewall `LOG` message; returns whether it was one.
pub fn message(p: &mut Parsed<'_>) -> bool {
    let msg = p.message;
    let b = msg.as_bytes();
    let in_idx = if b.starts_with(b"IN=") {
        0
    } else {
        let Some(idx) = scan::find_sp(b, b" IN=") else { return false };
        idx + 1
    };
    let prefix = skip_uptime(&msg[..in_idx]);
    let fields = &msg[in_idx..];
    let (mut src, mut dst, mut proto, mut spt, mut dpt) = (None, None, None, None, None);
    let fb = fields.as_bytes();
    let mut start = 0;
    for end in memchr::memchr_iter(b' ', fb).chain(std::iter::once(fb.len())) {
        let token = &fields[start..end];
        start = end + 1;
        let slot = match token.as_bytes() {
            [b'S', b'R', b'C', b'=', ..] => &mut src,
            [b'D', b'S', b'T', b'=', ..] => &mut dst,
            [b'S', b'P', b'T', b'=', ..] => &mut spt,
            [b'D', b'P', b'T', b'=', ..] => &mut dpt,
            [b'P', b'R', b'O', b'T', b'O', b'=', ..] => {
                if proto.is_none() {
                    proto = Some(&token[6..]);
                }
                continue;
            }
            _ => continue,
        };
        if slot.is_none() {
            *slot = Some(&token[4..]);
        }
    }
    let Some(src) = src else { return false };
    p.set_ip(src);
    if p.ip.is_none() {
        return false;
    }
    p.dst = dst.and_then(crate::parse_ip);
    p.protocol = proto.filter(|it| !it.is_empty());
    let port = |it: Option<&str>| {
        it.and_then(|it| time::digits(it.as_bytes())).and_then(|it| u16::try_from(it).ok())
    };
    p.port = port(spt);
    p.dport = port(dpt);
    p.action = Some(verdict(prefix));
    true
}

/// `[ 1234.567890] ` at the start of a kernel message.
fn skip_uptime(s: &str) -> &str {
    if let Some(rest) = s.strip_prefix('[')
        && let Some(close) = memchr::memchr(b']', rest.as_bytes())
        && rest[..close].bytes().all(|it| it.is_ascii_digit() || it == b'.' || it == b' ')
    {
        return rest[close + 1..].trim_start();
    }
    s
}

fn verdict(prefix: &str) -> Action {
    let prefix = prefix.trim();
    if let Some(kind) = prefix.strip_prefix("[UFW ").and_then(|it| it.strip_suffix(']')) {
        match kind {
            "BLOCK" => return Action::FwBlock,
            "ALLOW" => return Action::FwAllow,
            "LIMIT BLOCK" => return Action::FwLimit,
            _ if kind.starts_with("AUDIT") => return Action::FwAudit,
            _ => {}
        }
    }
    let blocks = prefix.as_bytes().windows(4).any(|it| {
        let mut word = [0u8; 4];
        word.copy_from_slice(it);
        word.make_ascii_uppercase();
        matches!(&word, b"DROP" | b"BLOC" | b"REJE" | b"DENY")
    });
    if blocks { Action::FwBlock } else { Action::FwLog }
}

#[cfg(test)]
mod tests {
    use expect_test::{Expect, expect};

    use super::*;

    fn check(line: &str, expect: &Expect) {
        let clock = crate::tests_support::test_clock();
        crate::tests_support::assert_parsed(parse(line, &clock), expect);
    }

    #[test]
    fn ufw() {
        check(
            "Nov  1 00:00:09 web1 kernel: [1234567.123456] [UFW BLOCK] IN=eth0 OUT= MAC=52:54:00:12:34:56:fe:54:00:ab:cd:ef:08:00 SRC=85.235.68.121 DST=198.51.100.10 LEN=44 TOS=0x00 PREC=0x00 TTL=243 ID=5403 PROTO=TCP SPT=56297 DPT=27017 WINDOW=1024 RES=0x00 SYN URGP=0",
            &expect![[r#"
                source=firewall time=2026-11-01T00:00:09Z action=fw_block ip=85.235.68.121 port=56297 host=web1 service=kernel dst=198.51.100.10 dport=27017 protocol=TCP
                message="[1234567.123456] [UFW BLOCK] IN=eth0 OUT= MAC=52:54:00:12:34:56:fe:54:00:ab:cd:ef:08:00 SRC=85.235.68.121 DST=198.51.100.10 LEN=44 TOS=0x00 PREC=0x00 TTL=243 ID=5403 PROTO=TCP SPT=56297 DPT=27017 WINDOW=1024 RES=0x00 SYN URGP=0""#]],
        );
        check(
            "Nov  1 00:00:09 web1 kernel: [  12.5] [UFW ALLOW] IN=eth0 OUT= MAC=52:54:00:12:34:56:fe:54:00:ab:cd:ef:86:dd SRC=2a01:4f8::1 DST=2001:db8:10::10 LEN=80 TC=0 HOPLIMIT=52 FLOWLBL=1 PROTO=UDP SPT=53 DPT=40000 LEN=40",
            &expect![[r#"
                source=firewall time=2026-11-01T00:00:09Z action=fw_allow ip=2a01:4f8::1 port=53 host=web1 service=kernel dst=2001:db8:10::10 dport=40000 protocol=UDP
                message="[  12.5] [UFW ALLOW] IN=eth0 OUT= MAC=52:54:00:12:34:56:fe:54:00:ab:cd:ef:86:dd SRC=2a01:4f8::1 DST=2001:db8:10::10 LEN=80 TC=0 HOPLIMIT=52 FLOWLBL=1 PROTO=UDP SPT=53 DPT=40000 LEN=40""#]],
        );
    }

    #[test]
    fn iptables_and_bare_kernel_lines() {
        check(
            "IPTABLES-DROPPED: IN=eth0 OUT= MAC=00:00 SRC=192.0.2.1 DST=192.0.2.2 LEN=84 TOS=0x00 PREC=0x00 TTL=64 ID=0 DF PROTO=ICMP TYPE=8 CODE=0 ID=1 SEQ=1",
            &expect![[r#"
                source=firewall action=fw_block ip=192.0.2.1 dst=192.0.2.2 protocol=ICMP
                message="IPTABLES-DROPPED: IN=eth0 OUT= MAC=00:00 SRC=192.0.2.1 DST=192.0.2.2 LEN=84 TOS=0x00 PREC=0x00 TTL=64 ID=0 DF PROTO=ICMP TYPE=8 CODE=0 ID=1 SEQ=1""#]],
        );
        check(
            "nft-in IN=eth0 OUT= SRC=192.0.2.1 DST=192.0.2.2 PROTO=TCP SPT=1 DPT=2",
            &expect![[r#"
                source=firewall action=fw_log ip=192.0.2.1 port=1 dst=192.0.2.2 dport=2 protocol=TCP
                message="nft-in IN=eth0 OUT= SRC=192.0.2.1 DST=192.0.2.2 PROTO=TCP SPT=1 DPT=2""#]],
        );
        check(
            "Nov  1 00:00:09 web1 kernel: [ 1.0] usb 1-1: new device",
            &expect!["not recognised"],
        );
        check("Nov  1 00:00:09 web1 sshd[1]: IN=eth0 SRC=192.0.2.1", &expect!["not recognised"]);
        check("IN=eth0 SRC=not-an-address", &expect!["not recognised"]);
    }
}
