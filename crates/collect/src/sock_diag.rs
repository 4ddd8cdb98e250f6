//! TCP sockets through the kernel's `NETLINK_SOCK_DIAG` interface (what `ss` uses), because
//! reading `/proc/net/tcp` walks every bucket of the TCP hash tables in text form: on a host
//! with large tables that costs about a millisecond per read however few sockets there are,
//! more than the rest of a collection cycle. `procfs` has no netlink support, so this small
//! request builder and reply parser (safe code over byte buffers, `rustix` for the socket)
//! fill the gap. Callers fall back to `/proc/net/tcp{,6}` when it fails.

use std::{
    io,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
};

use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType, netlink};

/// `SOCK_DIAG_BY_FAMILY`.
const SOCK_DIAG_BY_FAMILY: u16 = 20;
/// `NLM_F_REQUEST | NLM_F_DUMP`.
const DUMP_REQUEST: u16 = 0x001 | 0x300;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const HEADER_LEN: usize = 16;
/// `struct inet_diag_msg`.
const MSG_LEN: usize = 72;
const IPPROTO_TCP: u8 = 6;

/// One socket as `inet_diag` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiagSocket {
    /// Kernel state code (1 ESTABLISHED … 10 LISTEN … 12 NEW_SYN_RECV).
    pub state: u8,
    /// Local address.
    pub local: SocketAddr,
    /// Remote address.
    pub remote: SocketAddr,
    /// Owner uid.
    pub uid: u32,
    /// Socket inode (0 for TIME_WAIT and request sockets).
    pub inode: u64,
}

/// Every TCP socket of one family (`v6` false: IPv4) in this network namespace.
pub fn tcp_sockets(v6: bool) -> io::Result<Vec<DiagSocket>> {
    let fd = rustix::net::socket_with(
        AddressFamily::NETLINK,
        SocketType::DGRAM,
        SocketFlags::CLOEXEC,
        Some(netlink::SOCK_DIAG),
    )?;
    let family = if v6 { AddressFamily::INET6 } else { AddressFamily::INET };
    rustix::net::send(&fd, &request(family.as_raw() as u8, IPPROTO_TCP), SendFlags::empty())?;
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let (len, _) = rustix::net::recv(&fd, &mut buf[..], RecvFlags::empty())?;
        if len == 0 {
            return Ok(out);
        }
        if parse(&buf[..len], &mut out)? {
            return Ok(out);
        }
    }
}

fn request(family: u8, protocol: u8) -> Vec<u8> {
    let len = HEADER_LEN + 56;
    let mut req = Vec::with_capacity(len);
    req.extend_from_slice(&(len as u32).to_ne_bytes());
    req.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    req.extend_from_slice(&DUMP_REQUEST.to_ne_bytes());
    req.extend_from_slice(&1u32.to_ne_bytes()); // sequence
    req.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel
    req.extend_from_slice(&[family, protocol, 0, 0]);
    req.extend_from_slice(&u32::MAX.to_ne_bytes()); // every state
    req.resize(len, 0); // inet_diag_sockid: all zero, match everything
    req
}

/// Parses one datagram of replies into `out`; true when the dump is complete.
fn parse(mut data: &[u8], out: &mut Vec<DiagSocket>) -> io::Result<bool> {
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "malformed sock_diag reply");
    while data.len() >= HEADER_LEN {
        let len = u32::from_ne_bytes(data[0..4].try_into().map_err(|_| bad())?) as usize;
        let kind = u16::from_ne_bytes(data[4..6].try_into().map_err(|_| bad())?);
        if len < HEADER_LEN || len > data.len() {
            return Err(bad());
        }
        let body = &data[HEADER_LEN..len];
        match kind {
            NLMSG_DONE => return Ok(true),
            NLMSG_ERROR => {
                let code = body.get(0..4).ok_or_else(bad)?;
                let errno = i32::from_ne_bytes(code.try_into().map_err(|_| bad())?);
                return Err(io::Error::from_raw_os_error(-errno));
            }
            SOCK_DIAG_BY_FAMILY if body.len() >= MSG_LEN => out.push(socket(body)),
            _ => {}
        }
        let aligned = (len + 3) & !3;
        data = data.get(aligned..).unwrap_or_default();
    }
    Ok(false)
}

fn socket(msg: &[u8]) -> DiagSocket {
    let u32_at = |at: usize| u32::from_ne_bytes([msg[at], msg[at + 1], msg[at + 2], msg[at + 3]]);
    let port = |at: usize| u16::from_be_bytes([msg[at], msg[at + 1]]);
    let v6 = msg[0] == AddressFamily::INET6.as_raw() as u8;
    let ip = |at: usize| -> IpAddr {
        if v6 {
            let mut bytes = [0u8; 16];
            bytes.copy_from_slice(&msg[at..at + 16]);
            IpAddr::V6(Ipv6Addr::from(bytes))
        } else {
            IpAddr::V4(Ipv4Addr::new(msg[at], msg[at + 1], msg[at + 2], msg[at + 3]))
        }
    };
    DiagSocket {
        state: msg[1],
        local: SocketAddr::new(ip(8), port(4)),
        remote: SocketAddr::new(ip(24), port(6)),
        uid: u32_at(64),
        inode: u64::from(u32_at(68)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_listener_of_this_process() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let sockets = tcp_sockets(false).unwrap();
        let found = sockets.iter().find(|it| it.local.port() == port).expect("our listener");
        assert_eq!(found.state, 10, "LISTEN");
        assert_eq!(found.local.ip(), IpAddr::from([127, 0, 0, 1]));
        assert!(found.inode > 0);
        // IPv6 may be disabled on the host; when it is there, the dump works too.
        if std::net::TcpListener::bind("[::1]:0").is_ok() {
            tcp_sockets(true).unwrap();
        }
    }

    #[test]
    fn malformed_replies_are_errors_not_panics() {
        let mut out = Vec::new();
        assert!(parse(&[1, 0, 0, 0, 0, 0], &mut out).is_ok(), "a short tail is ignored");
        assert!(parse(&[200, 0, 0, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], &mut out).is_err());
        let mut done = vec![0u8; 20];
        done[0] = 20;
        done[4] = NLMSG_DONE as u8;
        assert!(parse(&done, &mut out).unwrap());
        assert!(out.is_empty());
    }
}
