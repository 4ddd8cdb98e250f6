//! The kernel's process events connector (`NETLINK_CONNECTOR`, `CN_IDX_PROC`): fork, exec and
//! exit of every process as they happen, so the lifecycle source sees processes that live
//! shorter than a poll. Subscribing needs `CAP_NET_ADMIN` (root). `procfs` has no netlink
//! support; this is a small message builder and parser (safe code over byte buffers, `rustix`
//! for the socket).

use std::{io, os::fd::OwnedFd, time::Duration};

use rustix::net::{
    AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType, netlink,
    sockopt::{self, Timeout},
};

/// `CN_IDX_PROC` and `CN_VAL_PROC`: the connector's process events channel.
const CN_IDX_PROC: u32 = 1;
const CN_VAL_PROC: u32 = 1;
/// `PROC_CN_MCAST_LISTEN`.
const MCAST_LISTEN: u32 = 1;
const NLMSG_DONE: u16 = 3;
const HEADER_LEN: usize = 16;
/// `struct cn_msg` without its payload.
const CN_MSG_LEN: usize = 20;
/// `what`, `cpu`, `timestamp_ns` of `struct proc_event`.
const EVENT_HEADER_LEN: usize = 16;
const PROC_EVENT_FORK: u32 = 0x0000_0001;
const PROC_EVENT_EXEC: u32 = 0x0000_0002;
const PROC_EVENT_EXIT: u32 = 0x8000_0000;

/// One process event. Pids are thread ids; `tgid` is the process id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcEvent {
    /// A task was created: a new process when `child_pid == child_tgid`, else a thread.
    Fork {
        /// The process that forked.
        parent_tgid: u32,
        /// The new task.
        child_pid: u32,
        /// The new task's process.
        child_tgid: u32,
    },
    /// A process replaced its program.
    Exec {
        /// The task.
        pid: u32,
        /// Its process.
        tgid: u32,
    },
    /// A task exited: the process when `pid == tgid`.
    Exit {
        /// The task.
        pid: u32,
        /// Its process.
        tgid: u32,
        /// The exit code as `wait` reports it.
        exit_code: u32,
    },
}

/// A subscription to process events.
#[derive(Debug)]
pub struct ProcConnector {
    fd: OwnedFd,
    buf: Vec<u8>,
}

impl ProcConnector {
    /// Subscribes; fails without `CAP_NET_ADMIN` or when the kernel lacks the connector.
    pub fn subscribe() -> io::Result<ProcConnector> {
        let fd = rustix::net::socket_with(
            AddressFamily::NETLINK,
            SocketType::DGRAM,
            SocketFlags::CLOEXEC,
            Some(netlink::CONNECTOR),
        )?;
        rustix::net::bind(&fd, &netlink::SocketAddrNetlink::new(0, CN_IDX_PROC))?;
        // Bursts of forks must not overflow the queue between two reads.
        let _ = sockopt::set_socket_recv_buffer_size(&fd, 4 << 20);
        rustix::net::send(&fd, &listen_message(), SendFlags::empty())?;
        Ok(ProcConnector { fd, buf: vec![0; 64 * 1024] })
    }

    /// Waits up to `timeout` for events and returns those that arrived (maybe none). An
    /// overflowed queue (`ENOBUFS`: events were lost) is an error the caller recovers from by
    /// polling the process table.
    pub fn next(&mut self, timeout: Duration) -> io::Result<Vec<ProcEvent>> {
        sockopt::set_socket_timeout(
            &self.fd,
            Timeout::Recv,
            Some(timeout.max(Duration::from_millis(1))),
        )?;
        let mut out = Vec::new();
        let mut flags = RecvFlags::empty();
        loop {
            match rustix::net::recv(&self.fd, &mut self.buf[..], flags) {
                Ok((len, _)) => parse(&self.buf[..len.min(self.buf.len())], &mut out),
                Err(rustix::io::Errno::AGAIN) => return Ok(out),
                Err(rustix::io::Errno::INTR) => continue,
                Err(err) => return Err(err.into()),
            }
            // Drain what is already queued without waiting again.
            flags = RecvFlags::DONTWAIT;
        }
    }
}

fn listen_message() -> Vec<u8> {
    let len = HEADER_LEN + CN_MSG_LEN + 4;
    let mut msg = Vec::with_capacity(len);
    msg.extend_from_slice(&(len as u32).to_ne_bytes());
    msg.extend_from_slice(&NLMSG_DONE.to_ne_bytes());
    msg.extend_from_slice(&0u16.to_ne_bytes());
    msg.extend_from_slice(&0u32.to_ne_bytes()); // sequence
    msg.extend_from_slice(&0u32.to_ne_bytes()); // port id
    msg.extend_from_slice(&CN_IDX_PROC.to_ne_bytes());
    msg.extend_from_slice(&CN_VAL_PROC.to_ne_bytes());
    msg.extend_from_slice(&0u32.to_ne_bytes()); // seq
    msg.extend_from_slice(&0u32.to_ne_bytes()); // ack
    msg.extend_from_slice(&4u16.to_ne_bytes()); // payload length
    msg.extend_from_slice(&0u16.to_ne_bytes()); // flags
    msg.extend_from_slice(&MCAST_LISTEN.to_ne_bytes());
    msg
}

/// Parses one datagram (one or more netlink messages) of events into `out`; anything
/// malformed or of another kind is skipped.
fn parse(mut data: &[u8], out: &mut Vec<ProcEvent>) {
    let u32_at = |d: &[u8], at: usize| -> Option<u32> {
        Some(u32::from_ne_bytes(d.get(at..at + 4)?.try_into().ok()?))
    };
    while data.len() >= HEADER_LEN {
        let Some(len) = u32_at(data, 0).map(|it| it as usize) else { return };
        if len < HEADER_LEN || len > data.len() {
            return;
        }
        let event = &data[HEADER_LEN..len];
        let body = CN_MSG_LEN + EVENT_HEADER_LEN;
        if let (Some(CN_IDX_PROC), Some(what)) = (u32_at(event, 0), u32_at(event, CN_MSG_LEN)) {
            let field = |n: usize| u32_at(event, body + 4 * n);
            let parsed = match what {
                PROC_EVENT_FORK => (|| {
                    Some(ProcEvent::Fork {
                        parent_tgid: field(1)?,
                        child_pid: field(2)?,
                        child_tgid: field(3)?,
                    })
                })(),
                PROC_EVENT_EXEC => (|| Some(ProcEvent::Exec { pid: field(0)?, tgid: field(1)? }))(),
                PROC_EVENT_EXIT => (|| {
                    Some(ProcEvent::Exit { pid: field(0)?, tgid: field(1)?, exit_code: field(2)? })
                })(),
                _ => None,
            };
            out.extend(parsed);
        }
        let aligned = (len + 3) & !3;
        data = data.get(aligned..).unwrap_or_default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(what: u32, fields: &[u32]) -> Vec<u8> {
        let mut event = Vec::new();
        event.extend_from_slice(&CN_IDX_PROC.to_ne_bytes());
        event.extend_from_slice(&CN_VAL_PROC.to_ne_bytes());
        event.extend_from_slice(&[0; 12]);
        event.extend_from_slice(&what.to_ne_bytes());
        event.extend_from_slice(&0u32.to_ne_bytes());
        event.extend_from_slice(&0u64.to_ne_bytes());
        for it in fields {
            event.extend_from_slice(&it.to_ne_bytes());
        }
        let mut msg = ((HEADER_LEN + event.len()) as u32).to_ne_bytes().to_vec();
        msg.extend_from_slice(&[0; 12]);
        msg.extend_from_slice(&event);
        msg
    }

    #[test]
    fn parses_fork_exec_exit_and_skips_junk() {
        let mut data = message(PROC_EVENT_FORK, &[10, 10, 11, 11]);
        data.extend(message(PROC_EVENT_EXEC, &[11, 11]));
        data.extend(message(PROC_EVENT_EXIT, &[11, 11, 256, 17]));
        data.extend(message(0, &[])); // the acknowledgement of the subscription
        let mut out = Vec::new();
        parse(&data, &mut out);
        assert_eq!(
            out,
            [
                ProcEvent::Fork { parent_tgid: 10, child_pid: 11, child_tgid: 11 },
                ProcEvent::Exec { pid: 11, tgid: 11 },
                ProcEvent::Exit { pid: 11, tgid: 11, exit_code: 256 },
            ]
        );
        let mut out = Vec::new();
        parse(&message(PROC_EVENT_EXIT, &[1])[..40], &mut out);
        parse(&[255, 255, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], &mut out);
        assert!(out.is_empty(), "truncated and oversized messages are skipped");
    }

    #[test]
    fn sees_a_child_start_and_exit_when_root() {
        let Ok(mut connector) = ProcConnector::subscribe() else {
            // Unprivileged (CAP_NET_ADMIN is needed): the lifecycle source falls back to
            // polling, which the lifecycle tests cover.
            return;
        };
        #[allow(clippy::disallowed_methods)] // A real child process is the point.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let mut seen = Vec::new();
        for _ in 0..50 {
            seen.extend(connector.next(Duration::from_millis(100)).unwrap());
            let exec = seen.contains(&ProcEvent::Exec { pid, tgid: pid });
            if exec
                && seen.iter().any(|it| matches!(it, ProcEvent::Exit { tgid, .. } if *tgid == pid))
            {
                break;
            }
        }
        assert!(
            seen.iter()
                .any(|it| matches!(it, ProcEvent::Fork { child_tgid, .. } if *child_tgid == pid)),
            "fork of {pid} in {seen:?}"
        );
        assert!(seen.contains(&ProcEvent::Exec { pid, tgid: pid }));
        assert!(seen.contains(&ProcEvent::Exit { pid, tgid: pid, exit_code: 0 }));
    }
}
