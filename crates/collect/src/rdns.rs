//! Optional reverse DNS for connection addresses: `/etc/hosts`, then a PTR query to the
//! resolvers of `/etc/resolv.conf`, with a deadline per batch and a bounded cache.
//!
//! A dead resolver must not stall `vigil conns`: every lookup runs on its own thread and the
//! caller waits at most the deadline for the whole batch; an address that did not resolve in
//! time is remembered as unresolved. The cache holds at most `capacity` addresses (oldest out
//! first). The DNS client is a few dozen lines of wire format because the standard library has
//! no reverse lookup and `getnameinfo` would need `unsafe` (forbidden in this workspace).

use std::{
    collections::{HashMap, VecDeque},
    net::{IpAddr, SocketAddr, UdpSocket},
    sync::{Arc, Mutex, mpsc},
    time::{Duration, Instant},
};

/// A reverse lookup: the name of an address, or `None`.
pub type Resolve = Arc<dyn Fn(IpAddr) -> Option<String> + Send + Sync>;

/// Most lookups in flight at once; addresses beyond it in one batch stay unresolved.
const MAX_IN_FLIGHT: usize = 32;

/// Reverse DNS with a bounded cache and a deadline.
pub struct ReverseDns {
    resolve: Resolve,
    deadline: Duration,
    capacity: usize,
    cache: Mutex<Cache>,
}

/// Names (or `None`: did not resolve) by address, and the addresses oldest first.
type Cache = (HashMap<IpAddr, Option<String>>, VecDeque<IpAddr>);

impl std::fmt::Debug for ReverseDns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReverseDns")
            .field("deadline", &self.deadline)
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl ReverseDns {
    /// The system's resolution (`/etc/hosts`, then `/etc/resolv.conf`'s name servers).
    pub fn system(capacity: usize, deadline: Duration) -> ReverseDns {
        ReverseDns::with_resolver(
            Arc::new(move |ip| system_lookup(ip, deadline)),
            capacity,
            deadline,
        )
    }

    /// Any resolver, under the same cache and deadline.
    pub fn with_resolver(resolve: Resolve, capacity: usize, deadline: Duration) -> ReverseDns {
        ReverseDns { resolve, deadline, capacity: capacity.max(1), cache: Mutex::default() }
    }

    /// Names of `ips`, looked up together within the deadline (cached ones at once).
    pub fn lookup_many(&self, ips: &[IpAddr]) -> HashMap<IpAddr, String> {
        let mut names = HashMap::new();
        let mut todo = Vec::new();
        if let Ok(cache) = self.cache.lock() {
            for ip in ips {
                match cache.0.get(ip) {
                    Some(Some(name)) => drop(names.insert(*ip, name.clone())),
                    Some(None) => {}
                    None if !todo.contains(ip) => todo.push(*ip),
                    None => {}
                }
            }
        }
        todo.truncate(MAX_IN_FLIGHT);
        let (tx, rx) = mpsc::sync_channel(todo.len().max(1));
        for ip in &todo {
            let (tx, resolve, ip) = (tx.clone(), self.resolve.clone(), *ip);
            let spawned = std::thread::Builder::new()
                .name("vigil-rdns".into())
                .spawn(move || drop(tx.send((ip, resolve(ip)))));
            if spawned.is_err() {
                break;
            }
        }
        drop(tx);
        let until = Instant::now() + self.deadline;
        let mut answers: HashMap<IpAddr, Option<String>> = HashMap::new();
        while answers.len() < todo.len() {
            match rx.recv_timeout(until.saturating_duration_since(Instant::now())) {
                Ok((ip, name)) => drop(answers.insert(ip, name)),
                Err(_) => break,
            }
        }
        if let Ok(mut cache) = self.cache.lock() {
            for ip in todo {
                let name = answers.remove(&ip).flatten();
                if let Some(name) = &name {
                    names.insert(ip, name.clone());
                }
                let (map, order) = &mut *cache;
                if map.insert(ip, name).is_none() {
                    order.push_back(ip);
                }
                while order.len() > self.capacity {
                    if let Some(old) = order.pop_front() {
                        map.remove(&old);
                    }
                }
            }
        }
        names
    }

    /// Addresses in the cache (resolved or not).
    pub fn cached(&self) -> usize {
        self.cache.lock().map_or(0, |it| it.0.len())
    }
}

/// `/etc/hosts`, then a PTR query to each name server of `/etc/resolv.conf`.
pub fn system_lookup(ip: IpAddr, timeout: Duration) -> Option<String> {
    let hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    if let Some(name) = hosts_lookup(&hosts, ip) {
        return Some(name);
    }
    let resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let servers = resolv.lines().filter_map(|line| {
        let mut words = line.split_whitespace();
        (words.next() == Some("nameserver")).then(|| words.next()?.parse::<IpAddr>().ok())?
    });
    servers.take(3).find_map(|server| ptr_query(SocketAddr::new(server, 53), ip, timeout))
}

/// The first name of the first `/etc/hosts` line for `ip`.
pub fn hosts_lookup(hosts: &str, ip: IpAddr) -> Option<String> {
    hosts.lines().find_map(|line| {
        let line = line.split('#').next()?;
        let mut words = line.split_whitespace();
        let address: IpAddr = words.next()?.parse().ok()?;
        (address == ip).then(|| words.next().map(str::to_owned))?
    })
}

/// The `in-addr.arpa` or `ip6.arpa` name of an address.
pub fn reverse_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            format!("{d}.{c}.{b}.{a}.in-addr.arpa")
        }
        IpAddr::V6(v6) => {
            let mut name = String::new();
            for byte in v6.octets().iter().rev() {
                name.push_str(&format!("{:x}.{:x}.", byte & 0xf, byte >> 4));
            }
            name + "ip6.arpa"
        }
    }
}

fn ptr_query(server: SocketAddr, ip: IpAddr, timeout: Duration) -> Option<String> {
    let bind = if server.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
    let socket = UdpSocket::bind(bind).ok()?;
    socket.set_read_timeout(Some(timeout.max(Duration::from_millis(1)))).ok()?;
    let id = (std::process::id() as u16) ^ 0x5a5a;
    socket.send_to(&ptr_request(id, &reverse_name(ip)), server).ok()?;
    let mut buf = [0u8; 1500];
    let (len, from) = socket.recv_from(&mut buf).ok()?;
    (from == server).then(|| parse_ptr_response(&buf[..len], id))?
}

/// A recursive PTR query for `name`.
pub fn ptr_request(id: u16, name: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]); // RD; one question
    for label in name.split('.').filter(|it| !it.is_empty()) {
        out.push(label.len().min(63) as u8);
        out.extend_from_slice(&label.as_bytes()[..label.len().min(63)]);
    }
    out.extend_from_slice(&[0, 0, 12, 0, 1]); // root; type PTR; class IN
    out
}

/// The first PTR answer of a response to query `id`, without the trailing dot.
pub fn parse_ptr_response(msg: &[u8], id: u16) -> Option<String> {
    let u16_at = |at: usize| Some(u16::from_be_bytes([*msg.get(at)?, *msg.get(at + 1)?]));
    if u16_at(0)? != id || msg.get(3)? & 0x0f != 0 || msg.get(2)? & 0x80 == 0 {
        return None; // not our answer, an error code, or not a response
    }
    let (questions, answers) = (u16_at(4)?, u16_at(6)?);
    let mut at = 12;
    for _ in 0..questions {
        at = skip_name(msg, at)? + 4;
    }
    for _ in 0..answers {
        at = skip_name(msg, at)?;
        let (kind, len) = (u16_at(at)?, usize::from(u16_at(at + 8)?));
        let data = at + 10;
        if kind == 12 {
            return read_name(msg, data);
        }
        at = data + len;
    }
    None
}

fn skip_name(msg: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let len = *msg.get(at)?;
        match len {
            0 => return Some(at + 1),
            l if l & 0xc0 == 0xc0 => return Some(at + 2),
            l => at += 1 + usize::from(l),
        }
    }
}

fn read_name(msg: &[u8], mut at: usize) -> Option<String> {
    let mut labels: Vec<String> = Vec::new();
    // Compression pointers may chain; a bound on jumps stops a malicious loop.
    for _ in 0..64 {
        let len = *msg.get(at)?;
        if len == 0 {
            return (!labels.is_empty()).then(|| labels.join("."));
        }
        if len & 0xc0 == 0xc0 {
            at = usize::from(u16::from_be_bytes([len & 0x3f, *msg.get(at + 1)?]));
            continue;
        }
        let label = msg.get(at + 1..at + 1 + usize::from(len))?;
        labels.push(String::from_utf8_lossy(label).into_owned());
        at += 1 + usize::from(len);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_file_and_reverse_names() {
        let hosts = "# comment\n127.0.0.1 localhost\n10.0.0.5  db.internal db # primary\n::1 ip6-localhost\n";
        assert_eq!(
            hosts_lookup(hosts, "10.0.0.5".parse().unwrap()).as_deref(),
            Some("db.internal")
        );
        assert_eq!(hosts_lookup(hosts, "::1".parse().unwrap()).as_deref(), Some("ip6-localhost"));
        assert_eq!(hosts_lookup(hosts, "10.0.0.6".parse().unwrap()), None);
        assert_eq!(reverse_name("192.0.2.7".parse().unwrap()), "7.2.0.192.in-addr.arpa");
        let v6 = reverse_name("2001:db8::1".parse().unwrap());
        assert!(v6.starts_with("1.0.0.0.") && v6.ends_with(".8.b.d.0.1.0.0.2.ip6.arpa"), "{v6}");
    }

    /// A PTR response as a name server sends it: the question echoed, one answer whose owner
    /// name is a compression pointer to the question and whose data is a name.
    fn response(id: u16) -> Vec<u8> {
        let query = ptr_request(id, "7.2.0.192.in-addr.arpa");
        let mut msg = query.clone();
        msg[2] = 0x81; // response, recursion desired
        msg[3] = 0x80; // recursion available, no error
        msg[7] = 1; // one answer
        msg.extend_from_slice(&[0xc0, 12, 0, 12, 0, 1, 0, 0, 0x0e, 0x10]);
        let data = [&[4u8][..], b"host", &[7], b"example", &[0]].concat();
        msg.extend_from_slice(&(data.len() as u16).to_be_bytes());
        msg.extend_from_slice(&data);
        msg
    }

    #[test]
    fn ptr_responses_parse_and_junk_does_not() {
        assert_eq!(parse_ptr_response(&response(7), 7).as_deref(), Some("host.example"));
        assert_eq!(parse_ptr_response(&response(7), 8), None, "another query's answer");
        let mut nxdomain = response(7);
        nxdomain[3] = 0x83;
        assert_eq!(parse_ptr_response(&nxdomain, 7), None);
        let full = response(7);
        for cut in 0..full.len() {
            assert_eq!(parse_ptr_response(&full[..cut], 7), None, "truncated at {cut}");
        }
        // A pointer to itself must not loop.
        let mut looped = full.clone();
        let at = looped.len() - 14;
        looped[at] = 0xc0;
        looped[at + 1] = at as u8;
        let _ = parse_ptr_response(&looped, 7);
    }

    #[test]
    fn lookups_are_cached_bounded_and_bounded_in_time() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = calls.clone();
        let slow: Resolve = Arc::new(move |ip: IpAddr| {
            counted.fetch_add(1, Ordering::SeqCst);
            if ip == IpAddr::from([192, 0, 2, 1]) {
                // A resolver that never answers in time.
                std::thread::sleep(Duration::from_secs(5));
            }
            Some(format!("host-{ip}"))
        });
        let dns = ReverseDns::with_resolver(slow, 2, Duration::from_millis(300));
        let ips: Vec<IpAddr> = vec![[192, 0, 2, 1].into(), [192, 0, 2, 2].into()];
        let names = dns.lookup_many(&ips);
        assert_eq!(names.len(), 1, "the slow lookup is abandoned at the deadline");
        assert_eq!(names[&ips[1]], "host-192.0.2.2");
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        // Both are cached (the slow one as unresolved): no second lookup.
        assert_eq!(dns.lookup_many(&ips).len(), 1);
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        // The cache keeps at most two addresses: a third pushes the oldest out.
        dns.lookup_many(&[[192, 0, 2, 3].into()]);
        assert_eq!(dns.cached(), 2);
        dns.lookup_many(&ips[1..]);
        assert_eq!(calls.load(Ordering::SeqCst), 3, "192.0.2.2 is still cached");
        dns.lookup_many(&ips[..1]);
        assert_eq!(calls.load(Ordering::SeqCst), 4, "192.0.2.1, the oldest, was evicted");
    }

    #[test]
    fn the_system_resolver_reads_etc_hosts() {
        let localhost = IpAddr::from([127, 0, 0, 1]);
        let hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
        let expected = hosts_lookup(&hosts, localhost);
        let dns = ReverseDns::system(16, Duration::from_secs(2));
        if let Some(expected) = expected {
            assert_eq!(dns.lookup_many(&[localhost]).get(&localhost), Some(&expected));
        }
    }
}
