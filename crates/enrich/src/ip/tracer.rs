//! The IP tracer's state machine: per-address activity, the threat score, block-listing,
//! patterns across addresses and sweeps, and the reputation export.
//!
//! The score (0–100) is a sum of explained components, each capped, so an operator can always
//! read why an address scores what it does:
//!
//! | component | points |
//! |---|---|
//! | failed logins (`failed_password`, `failed_password_invalid`, `failed_auth`, `max_auth_exceeded`, `auth_failed`) | 4 each, at most 40 |
//! | burst: most failures inside one `burst_window` (tumbling), from the 5th on | 6 each beyond 4, at most 30 |
//! | invalid user names tried (`invalid_user`) | 3 each, at most 15 |
//! | bans seen (fail2ban `ban`/`restore_ban` lines) | 20 each, at most 30 |
//! | suspicious events (firewall blocks, bad banners, no identification, failed negotiation, too many auth failures, forbidden/rate-limited/CSRF/bad-host requests) | 2 each, at most 20 |
//! | port scan: 5 or more distinct firewall-blocked destination ports | 15 |
//! | member of a sweep: its /24 or /64 holds `sweep_min_addresses` or more hostile addresses | 10 |
//! | accepted logins without any burst | −10 each, at most −30 |
//!
//! A fast brute force (dozens of failures within minutes) reaches 40 + 30 = 70 on failures
//! alone; a legitimate user who mistypes a password now and then, and logs in, stays low.

use std::{
    borrow::Cow,
    collections::BTreeMap,
    net::IpAddr,
    sync::{Arc, Mutex},
};

use chrono::{DateTime, TimeZone, Utc};
use serde::Serialize;
use serde_json::json;
use vigil_core::Enricher;
use vigil_event::{Ban, Event, Evidence, Found, IpFinding, Payload, Severity};

use super::{
    IpTracerConfig,
    classify::{IpClass, PrefixSet, canonical, classify, subnet_of},
    table::{AddressTable, Record, secs, subnet_key, subnet_of_key},
};
use crate::bounded::BoundedMap;

/// What one log action means for an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Failed,
    InvalidUser,
    Accepted,
    Ban,
    Suspicious,
    Other,
}

fn kind_of(action: &str) -> Kind {
    match action {
        "failed_password"
        | "failed_password_invalid"
        | "failed_auth"
        | "max_auth_exceeded"
        | "auth_failed" => Kind::Failed,
        "invalid_user" => Kind::InvalidUser,
        "accepted" => Kind::Accepted,
        "ban" | "restore_ban" => Kind::Ban,
        "fw_block"
        | "fw_limit"
        | "banner_invalid"
        | "no_identification"
        | "negotiation_failed"
        | "too_many_auth_failures"
        | "user_not_allowed"
        | "access_forbidden"
        | "rate_limited"
        | "csrf_failure"
        | "disallowed_host" => Kind::Suspicious,
        _ => Kind::Other,
    }
}

#[derive(Debug, Clone, Default)]
struct SubnetState {
    hostile_addresses: u32,
    failed: u64,
    suspicious: u64,
    last_seen: i64,
}

/// The score's components, in points (see the module documentation).
#[derive(Debug, Clone, Copy, Default)]
struct Parts {
    failed: i32,
    burst: i32,
    invalid: i32,
    bans: i32,
    suspicious: i32,
    portscan: i32,
    sweep: i32,
    accepted: i32,
}

impl Parts {
    fn of(it: &Record, sweep: bool) -> Parts {
        let burst = if it.max_window >= 5 { (6 * (it.max_window as i32 - 4)).min(30) } else { 0 };
        Parts {
            failed: (4 * it.failed.min(100) as i32).min(40),
            burst,
            invalid: (3 * it.invalid.min(100) as i32).min(15),
            bans: (20 * it.bans().min(100) as i32).min(30),
            suspicious: (2 * it.suspicious.min(100) as i32).min(20),
            portscan: if it.dports.count_ones() >= 5 { 15 } else { 0 },
            sweep: if sweep { 10 } else { 0 },
            accepted: if burst == 0 { -(10 * it.accepted.min(100) as i32).min(30) } else { 0 },
        }
    }

    fn total(&self) -> u8 {
        let sum = self.failed
            + self.burst
            + self.invalid
            + self.bans
            + self.suspicious
            + self.portscan
            + self.sweep
            + self.accepted;
        sum.clamp(0, 100) as u8
    }
}

struct State {
    ips: AddressTable,
    /// By [`subnet_key`].
    subnets: BoundedMap<u128, SubnetState>,
    /// The latest event time seen, the "now" of TTL expiry.
    latest: i64,
    blocklisted: u64,
}

/// What the tracer concluded about an address after one event.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// The address's class.
    pub class: IpClass,
    /// Its threat score now.
    pub score: u8,
    /// Whether it is block-listed.
    pub blocklisted: bool,
    /// Whether this event put it on the block-list.
    pub newly_blocklisted: bool,
}

/// Per-address activity, as `vigil ip --json` prints it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Activity {
    /// Failed logins.
    pub failed_logins: u32,
    /// Attempts with a user name that does not exist.
    pub invalid_users: u32,
    /// Successful logins.
    pub accepted_logins: u32,
    /// Bans seen (fail2ban or the ban manager).
    pub bans: u32,
    /// Other suspicious events.
    pub suspicious_events: u32,
    /// Most failures inside one burst window.
    pub max_failures_in_window: u32,
    /// First event from the address (event time).
    pub first_seen: Option<DateTime<Utc>>,
    /// Last event from the address (event time).
    pub last_seen: Option<DateTime<Utc>>,
}

/// Everything the tracer knows about one address.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IpReport {
    /// The address (IPv4-mapped addresses as IPv4).
    pub ip: IpAddr,
    /// Its class.
    pub class: IpClass,
    /// The cloud provider, when the class is `cloud`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// Threat score 0–100.
    pub score: u8,
    /// Why: one line per non-zero component.
    pub score_reasons: Vec<String>,
    /// What it did.
    pub activity: Activity,
    /// Its /24 or /64.
    pub subnet: String,
    /// Whether it is block-listed.
    pub blocklisted: bool,
    /// Whether it is on the allow-list.
    pub allowlisted: bool,
}

/// One subnet's pattern.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SubnetPattern {
    /// The /24 or /64.
    pub subnet: String,
    /// Distinct hostile addresses seen in it.
    pub addresses: u32,
    /// Failed logins from it.
    pub failed_logins: u64,
    /// Suspicious events from it.
    pub suspicious_events: u64,
    /// Whether it is a sweep (`sweep_min_addresses` or more hostile addresses).
    pub sweep: bool,
}

/// Activity summed per address class.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ClassPattern {
    /// Addresses tracked.
    pub addresses: u64,
    /// Of which hostile (a failure or a suspicious event).
    pub hostile: u64,
    /// Of which block-listed.
    pub blocklisted: u64,
    /// Failed logins.
    pub failed_logins: u64,
}

/// Patterns across addresses.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Patterns {
    /// By address class.
    pub by_class: BTreeMap<&'static str, ClassPattern>,
    /// The subnets with the most hostile addresses, most first.
    pub subnets: Vec<SubnetPattern>,
    /// The subnets that are sweeps.
    pub sweeps: Vec<SubnetPattern>,
}

/// Memory figures of the tracer's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct IpTracerStats {
    /// Addresses tracked now.
    pub addresses: usize,
    /// The most addresses tracked.
    pub capacity: usize,
    /// Addresses forgotten to make room.
    pub evictions: u64,
    /// Subnets tracked now.
    pub subnets: usize,
    /// Subnets forgotten to make room.
    pub subnet_evictions: u64,
    /// Addresses block-listed since start.
    pub blocklisted: u64,
}

/// The IP tracer (see the module documentation). Cheap to share; state behind one mutex.
pub struct IpTracer {
    config: IpTracerConfig,
    cloud: PrefixSet,
    allow: PrefixSet,
    state: Mutex<State>,
}

impl std::fmt::Debug for IpTracer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IpTracer").field("stats", &self.stats()).finish_non_exhaustive()
    }
}

impl IpTracer {
    pub(super) fn new(config: IpTracerConfig, cloud: PrefixSet, allow: PrefixSet) -> IpTracer {
        let state = State {
            ips: AddressTable::new(config.max_addresses),
            subnets: BoundedMap::new(config.max_subnets),
            latest: i64::MIN,
            blocklisted: 0,
        };
        IpTracer { config, cloud, allow, state: Mutex::new(state) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|it| it.into_inner())
    }

    /// The class of `ip` (and its cloud provider).
    pub fn classify(&self, ip: IpAddr) -> (IpClass, Option<&str>) {
        classify(ip, &self.cloud)
    }

    /// Whether `ip` is on the allow-list.
    pub fn is_allowlisted(&self, ip: IpAddr) -> bool {
        self.allow.lookup(ip).is_some()
    }

    /// Records one event from `ip` (`action` as vigil-parse names it; `dport` for firewall
    /// lines) at `at`, and returns the address's class and score.
    pub fn observe(
        &self,
        ip: IpAddr,
        action: Option<&str>,
        at: DateTime<Utc>,
        dport: Option<u16>,
    ) -> Observation {
        self.observe_in(&mut self.lock(), ip, action, at, dport)
    }

    /// [`observe`](IpTracer::observe) with the state already locked.
    fn observe_in(
        &self,
        state: &mut State,
        ip: IpAddr,
        action: Option<&str>,
        at: DateTime<Utc>,
        dport: Option<u16>,
    ) -> Observation {
        let ip = canonical(ip);
        let kind = action.map_or(Kind::Other, kind_of);
        let now = at.timestamp();
        let ttl = self.config.ttl.as_secs() as i64;
        let window = self.config.burst_window.as_secs() as i64;
        state.latest = state.latest.max(now);
        let horizon = state.latest.saturating_sub(ttl);
        let cloud = &self.cloud;
        let at = secs(now);
        let entry = state.ips.entry(
            ip,
            || Record::new(ip, classify(ip, cloud).0, at),
            |it| i64::from(it.last_seen) < horizon,
        );
        entry.first_seen = entry.first_seen.min(at);
        entry.last_seen = entry.last_seen.max(at);
        let add = |n: &mut u32| *n = n.saturating_add(1);
        match kind {
            Kind::Failed => {
                add(&mut entry.failed);
                let start = i64::from(entry.window_start);
                let now = i64::from(at);
                if now.saturating_sub(start) > window || now < start {
                    entry.window_start = at;
                    entry.window_count = 0;
                }
                add(&mut entry.window_count);
                entry.max_window = entry.max_window.max(entry.window_count);
            }
            Kind::InvalidUser => add(&mut entry.invalid),
            Kind::Accepted => add(&mut entry.accepted),
            Kind::Ban => entry.add_ban(),
            Kind::Suspicious => {
                add(&mut entry.suspicious);
                if let Some(port) = dport {
                    entry.dports |= 1u64 << (port % 64);
                }
            }
            Kind::Other => {}
        }
        let hostile_event = matches!(kind, Kind::Failed | Kind::InvalidUser | Kind::Suspicious);
        let newly_hostile = hostile_event && !entry.hostile();
        if newly_hostile {
            entry.set_hostile();
        }
        // The record is read in place (no copy of it: copying 64 bytes just after the narrow
        // writes above stalls on store forwarding), and stays borrowed while the subnet is
        // updated (another field of the state).
        let mut sweep = false;
        if hostile_event {
            let subnet = state
                .subnets
                .entry(&subnet_key(ip), SubnetState::default, |it| it.last_seen < horizon);
            subnet.last_seen = now;
            if newly_hostile {
                subnet.hostile_addresses = subnet.hostile_addresses.saturating_add(1);
            }
            match kind {
                Kind::Failed => subnet.failed = subnet.failed.saturating_add(1),
                Kind::Suspicious => subnet.suspicious = subnet.suspicious.saturating_add(1),
                _ => {}
            }
            sweep = subnet.hostile_addresses >= self.config.sweep_min_addresses;
        }
        let score = Parts::of(entry, sweep).total();
        let mut newly_blocklisted = false;
        let class = entry.class();
        let blocklisted = entry.blocklisted();
        if score >= self.config.blocklist_threshold
            && !blocklisted
            && can_block(ip, class)
            && !self.is_allowlisted(ip)
        {
            newly_blocklisted = true;
            state.blocklisted += 1;
            entry.set_blocklisted();
        }
        Observation {
            class,
            score,
            blocklisted: newly_blocklisted || blocklisted,
            newly_blocklisted,
        }
    }

    /// What the tracer knows about `ip`, or `None` if it has seen nothing from it.
    pub fn report(&self, ip: IpAddr) -> Option<IpReport> {
        let ip = canonical(ip);
        let state = self.lock();
        let it = state.ips.get(ip)?;
        Some(self.report_of(&state, ip, it))
    }

    /// A report for an address the tracer has seen nothing from.
    pub fn empty_report(&self, ip: IpAddr) -> IpReport {
        let ip = canonical(ip);
        let (class, provider) = self.classify(ip);
        IpReport {
            ip,
            class,
            provider: provider.map(str::to_owned),
            score: 0,
            score_reasons: Vec::new(),
            activity: Activity {
                failed_logins: 0,
                invalid_users: 0,
                accepted_logins: 0,
                bans: 0,
                suspicious_events: 0,
                max_failures_in_window: 0,
                first_seen: None,
                last_seen: None,
            },
            subnet: subnet_of(ip).to_string(),
            blocklisted: false,
            allowlisted: self.is_allowlisted(ip),
        }
    }

    fn report_of(&self, state: &State, ip: IpAddr, it: &Record) -> IpReport {
        let subnet = subnet_of(ip);
        let sweep_size = state
            .subnets
            .get(&subnet_key(ip))
            .map(|it| it.hostile_addresses)
            .filter(|n| *n >= self.config.sweep_min_addresses);
        let parts = Parts::of(it, sweep_size.is_some());
        let mut reasons = Vec::new();
        let mut push = |points: i32, text: String| {
            if points != 0 {
                reasons.push(format!("{points:+} {text}"));
            }
        };
        push(parts.failed, format!("{} failed logins (4 each, at most 40)", it.failed));
        push(
            parts.burst,
            format!(
                "{} failures within {} (6 each beyond 4, at most 30)",
                it.max_window,
                humantime::format_duration(self.config.burst_window)
            ),
        );
        push(parts.invalid, format!("{} invalid user names (3 each, at most 15)", it.invalid));
        push(parts.bans, format!("{} bans (20 each, at most 30)", it.bans()));
        push(parts.suspicious, format!("{} suspicious events (2 each, at most 20)", it.suspicious));
        push(
            parts.portscan,
            format!("port scan: {} or more distinct blocked ports", it.dports.count_ones()),
        );
        push(
            parts.sweep,
            format!(
                "member of a sweep: {} hostile addresses in {subnet}",
                sweep_size.unwrap_or_default()
            ),
        );
        push(parts.accepted, format!("{} accepted logins, no burst", it.accepted));
        let (_, provider) = self.classify(ip);
        IpReport {
            ip,
            class: it.class(),
            provider: provider.map(str::to_owned),
            score: parts.total(),
            score_reasons: reasons,
            activity: Activity {
                failed_logins: it.failed,
                invalid_users: it.invalid,
                accepted_logins: it.accepted,
                bans: it.bans(),
                suspicious_events: it.suspicious,
                max_failures_in_window: it.max_window,
                first_seen: Utc.timestamp_opt(i64::from(it.first_seen), 0).single(),
                last_seen: Utc.timestamp_opt(i64::from(it.last_seen), 0).single(),
            },
            subnet: subnet.to_string(),
            blocklisted: it.blocklisted(),
            allowlisted: self.is_allowlisted(ip),
        }
    }

    /// Every tracked address scoring at least `min_score`, highest first (ties by address).
    pub fn reputation(&self, min_score: u8) -> Vec<IpReport> {
        let state = self.lock();
        let mut out: Vec<IpReport> = state
            .ips
            .iter()
            .filter(|it| it.hostile() || it.bans() > 0)
            .map(|it| self.report_of(&state, it.ip(), it))
            .filter(|it| it.score >= min_score)
            .collect();
        out.sort_by(|a, b| b.score.cmp(&a.score).then(a.ip.cmp(&b.ip)));
        out
    }

    /// The `n` highest-scoring addresses.
    pub fn top(&self, n: usize) -> Vec<IpReport> {
        let mut all = self.reputation(1);
        all.truncate(n);
        all
    }

    /// Patterns across addresses: by class, the busiest subnets (at most `n`) and every sweep.
    pub fn patterns(&self, n: usize) -> Patterns {
        let state = self.lock();
        let mut by_class: BTreeMap<&'static str, ClassPattern> = BTreeMap::new();
        for it in state.ips.iter() {
            let row = by_class.entry(it.class().as_str()).or_default();
            row.addresses += 1;
            row.hostile += u64::from(it.hostile());
            row.blocklisted += u64::from(it.blocklisted());
            row.failed_logins += u64::from(it.failed);
        }
        let mut subnets: Vec<SubnetPattern> = state
            .subnets
            .iter()
            .map(|(key, it)| SubnetPattern {
                subnet: subnet_of_key(*key).to_string(),
                addresses: it.hostile_addresses,
                failed_logins: it.failed,
                suspicious_events: it.suspicious,
                sweep: it.hostile_addresses >= self.config.sweep_min_addresses,
            })
            .collect();
        subnets.sort_by(|a, b| {
            (b.addresses, b.failed_logins)
                .cmp(&(a.addresses, a.failed_logins))
                .then_with(|| a.subnet.cmp(&b.subnet))
        });
        let sweeps: Vec<SubnetPattern> = subnets.iter().filter(|it| it.sweep).cloned().collect();
        subnets.truncate(n);
        Patterns { by_class, subnets, sweeps }
    }

    /// Memory figures.
    pub fn stats(&self) -> IpTracerStats {
        let state = self.lock();
        IpTracerStats {
            addresses: state.ips.len(),
            capacity: state.ips.capacity(),
            evictions: state.ips.evictions(),
            subnets: state.subnets.len(),
            subnet_evictions: state.subnets.evictions(),
            blocklisted: state.blocklisted,
        }
    }

    /// The ban request handed to the ban manager for a block-listed address: jail `ip_tracer`,
    /// the score and its reasons as evidence.
    pub fn ban_request(&self, host: Arc<str>, report: &IpReport, at: DateTime<Utc>) -> Event {
        let mut ban = Ban::request(report.ip.to_string(), "ip_tracer", at);
        ban.failures = u64::from(report.activity.failed_logins);
        let mut data = vigil_event::Map::new();
        data.insert("score".into(), json!(report.score));
        data.insert("score_reasons".into(), json!(report.score_reasons));
        data.insert("class".into(), json!(report.class));
        ban.evidence = Evidence {
            rule: format!(
                "ip_tracer: threat score {} >= {}",
                report.score, self.config.blocklist_threshold
            ),
            count: u64::from(report.activity.failed_logins),
            window_seconds: self.config.burst_window.as_secs(),
            first_seen: report.activity.first_seen,
            last_seen: report.activity.last_seen,
            lines: Vec::new(),
            event_ids: Vec::new(),
            data,
        };
        Event::new(host, "tracer.ip", Payload::Ban(ban)).with_severity(Severity::Warning)
    }
}

/// Whether `ip` may be block-listed at all: never loopback or unspecified (the host itself),
/// multicast or the IPv4 broadcast address (not a single sender).
fn can_block(ip: IpAddr, class: IpClass) -> bool {
    let broadcast = matches!(ip, IpAddr::V4(v4) if v4.is_broadcast());
    class != IpClass::Localhost && !ip.is_multicast() && !broadcast
}

/// The trace's tracer name.
pub const IP_TRACER: &str = "ip";

impl Enricher for IpTracer {
    fn name(&self) -> &str {
        IP_TRACER
    }

    fn wants(&self, event: &Event) -> bool {
        matches!(&event.payload, Payload::Log(log) if log.ip.is_some())
    }

    fn enrich(&self, event: &mut Event, extra: &mut Vec<Event>) {
        let mut state = self.lock();
        self.enrich_in(&mut state, event, &mut || crate::now(), |it| extra.push(it));
    }

    /// One lock and at most one clock reading for the whole batch.
    fn enrich_batch(&self, events: &mut [&mut Event], extra: &mut Vec<(usize, Event)>) {
        let mut now = None;
        let mut clock = || *now.get_or_insert_with(crate::now);
        let mut state = self.lock();
        for (at, event) in events.iter_mut().enumerate() {
            if self.wants(event) {
                self.enrich_in(&mut state, event, &mut clock, |it| extra.push((at, it)));
            }
        }
    }
}

impl IpTracer {
    /// Enriches `event` with the state locked; `clock` tells the trace's time if the event has
    /// no trace yet, `ban` takes the ban request of a newly block-listed address.
    fn enrich_in(
        &self,
        state: &mut State,
        event: &mut Event,
        clock: &mut impl FnMut() -> DateTime<Utc>,
        mut ban: impl FnMut(Event),
    ) {
        let Payload::Log(log) = &event.payload else { return };
        let Some(ip) = log.ip else { return };
        let at = log.timestamp.unwrap_or(event.timestamp);
        let seen = self.observe_in(state, ip, log.action.as_deref(), at, log.dport);
        let fields = &mut event.enrichment.fields;
        fields.insert(Cow::Borrowed("threat_score"), seen.score.into());
        let found = IpFinding {
            class: Cow::Borrowed(seen.class.as_str()),
            score: seen.score,
            blocklisted: seen.blocklisted,
        };
        crate::record_at(&mut event.enrichment, IP_TRACER, Found::Ip(found), clock);
        if seen.newly_blocklisted && self.config.request_bans {
            let ip = canonical(ip);
            if let Some(record) = state.ips.get(ip) {
                let report = self.report_of(state, ip, record);
                tracing::info!(ip = %ip, score = report.score, "Address block-listed by its threat score");
                ban(self.ban_request(event.host.clone(), &report, at));
            }
        }
    }
}
