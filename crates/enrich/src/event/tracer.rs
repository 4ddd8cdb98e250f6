//! The event tracer's rules and bounded state.

use std::{
    borrow::Cow,
    collections::{BTreeMap, HashMap},
    net::IpAddr,
    sync::{LazyLock, Mutex},
    time::Duration,
};

use chrono::{DateTime, TimeZone, Utc};
use regex::{Regex, RegexBuilder};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use vigil_core::Enricher;
use vigil_event::{Causality, Event, EventFinding, ExhaustionTrigger, Found, LogEvent, Payload};

use crate::bounded::BoundedMap;

/// `[tracers.event]`: related services, severity scores, causality chains and aggregates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct EventTracerConfig {
    /// Run the tracer on log events.
    pub enabled: bool,
    /// How far back a cause is looked for (failures before a ban, an exhaustion before a
    /// refused connection).
    #[serde(with = "vigil_core::duration")]
    #[schemars(with = "String")]
    pub chain_window: Duration,
    /// Most addresses whose recent failures are remembered for chains.
    pub max_addresses: usize,
    /// Most distinct keys counted per aggregate dimension; the rest count under `other`.
    pub max_keys: usize,
}

impl Default for EventTracerConfig {
    fn default() -> Self {
        EventTracerConfig {
            enabled: true,
            chain_window: Duration::from_secs(600),
            max_addresses: 50_000,
            max_keys: 1_000,
        }
    }
}

impl EventTracerConfig {
    /// The tracer, or `None` when disabled.
    pub fn build(&self) -> Option<EventTracer> {
        self.enabled.then(|| self.build_always())
    }

    /// The tracer whether enabled or not.
    pub fn build_always(&self) -> EventTracer {
        EventTracer {
            window: self.chain_window.as_secs() as i64,
            max_keys: self.max_keys.max(1),
            state: Mutex::new(State {
                failures: BoundedMap::new(self.max_addresses.max(1)),
                exhaustion: None,
                aggregates: Aggregates::default(),
                last: LastKeys::default(),
            }),
        }
    }
}

/// The service a log event is about: `sshd`, `nginx`, `django`, `postgresql`, … (the
/// `service` field for fail2ban jails and HTTP logs, else the source program).
pub fn service_name(log: &LogEvent) -> &str {
    let raw = match log.source.as_str() {
        // fail2ban lines name the jail in `service`; the service is fail2ban itself.
        "fail2ban" => "fail2ban",
        "nginx_access" | "nginx_error" => "nginx",
        "firewall" => "firewall",
        other => log.service.as_deref().filter(|_| other == "syslog").unwrap_or(other),
    };
    match raw {
        "sshd" | "ssh" => "sshd",
        "postgres" | "postgresql" => "postgresql",
        "mysqld" | "mariadbd" | "mysql" => "mysql",
        "redis-server" | "redis" => "redis",
        "kernel" => "kernel",
        other => other,
    }
}

/// Services that usually take part in the same story (seed 001: fail2ban ↔ ssh, nginx ↔
/// django, …): the list, and the same joined with commas (what the trace records, without
/// allocating a list per event).
fn related(service: &str) -> (&'static [&'static str], &'static str) {
    match service {
        "sshd" => (&["fail2ban", "firewall", "pam"], "fail2ban,firewall,pam"),
        "fail2ban" => (&["sshd", "nginx", "firewall"], "sshd,nginx,firewall"),
        "firewall" | "ufw" => (&["fail2ban", "sshd"], "fail2ban,sshd"),
        "nginx" => (
            &["django", "gunicorn", "uwsgi", "php-fpm", "fail2ban"],
            "django,gunicorn,uwsgi,php-fpm,fail2ban",
        ),
        "django" | "gunicorn" | "uwsgi" => {
            (&["nginx", "postgresql", "mysql", "redis"], "nginx,postgresql,mysql,redis")
        }
        "php-fpm" => (&["nginx", "mysql"], "nginx,mysql"),
        "postgresql" | "mysql" => (&["django", "gunicorn", "php-fpm"], "django,gunicorn,php-fpm"),
        "redis" => (&["django", "gunicorn"], "django,gunicorn"),
        "kernel" => (&["systemd"], "systemd"),
        "sudo" | "su" => (&["pam", "sshd"], "pam,sshd"),
        "CRON" | "cron" => (&["pam"], "pam"),
        _ => (&[], ""),
    }
}

/// The services the tracer knows by name, so their names are recorded without allocating.
const KNOWN_SERVICES: &[&str] = &[
    "sshd",
    "fail2ban",
    "firewall",
    "ufw",
    "nginx",
    "django",
    "gunicorn",
    "uwsgi",
    "php-fpm",
    "postgresql",
    "mysql",
    "redis",
    "kernel",
    "systemd",
    "sudo",
    "su",
    "pam",
    "CRON",
    "cron",
];

/// `service` as a name the trace can hold: borrowed when it is a known name, else copied.
fn static_name(service: &str) -> Cow<'static, str> {
    match KNOWN_SERVICES.iter().find(|it| **it == service) {
        Some(known) => Cow::Borrowed(known),
        None => Cow::Owned(service.to_owned()),
    }
}

/// Services that usually take part in the same story as `service`.
pub fn related_services(service: &str) -> &'static [&'static str] {
    related(service).0
}

/// The related services joined with commas (as the trace records them).
pub fn related_text(service: &str) -> &'static str {
    related(service).1
}

/// Points an action adds to the level's base.
fn action_weight(action: &str) -> u8 {
    match action {
        "ban" | "restore_ban" => 45,
        "max_auth_exceeded" | "too_many_auth_failures" | "user_not_allowed" => 40,
        "failed_password_invalid" | "invalid_user" | "failed_auth" => 35,
        "failed_password" | "pam_auth_failure" | "auth_failed" => 30,
        "server_error" | "csrf_failure" | "disallowed_host" | "access_forbidden" => 30,
        "fw_block" | "fw_limit" | "banner_invalid" | "no_identification" | "negotiation_failed" => {
            25
        }
        "found" | "rate_limited" | "bad_request" => 20,
        "accepted" => 15,
        "closed_preauth"
        | "closed_preauth_invalid"
        | "disconnected_preauth"
        | "connection_reset" => 10,
        "not_found" | "unban" | "ignore" | "fw_log" | "fw_audit" => 5,
        _ => 0,
    }
}

/// Severity score 0–100 from the level name and the action.
pub fn severity_score(level: Option<&str>, action: Option<&str>) -> u8 {
    let base: u8 = match level {
        Some("emergency" | "alert") => 80,
        Some("critical") => 70,
        Some("error") => 50,
        Some("warning") => 30,
        Some("notice") => 20,
        Some("info") => 10,
        Some("debug") => 5,
        _ => 15,
    };
    let weight = action.map_or(0, action_weight);
    (u16::from(base) + u16::from(weight)).min(100) as u8
}

#[derive(Debug, Clone)]
struct Failures {
    count: u32,
    invalid_users: u32,
    first: i64,
    last: i64,
}

#[derive(Debug, Clone)]
struct Exhaustion {
    kind: &'static str,
    service: String,
    victim: Option<String>,
    at: i64,
}

/// Counts per key, at most `max_keys` keys; the rest under `other`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Counts<K: std::hash::Hash + Eq = String> {
    /// Count per key.
    pub counts: HashMap<K, u64, crate::bounded::Hasher>,
    /// Events whose key came after the limit.
    pub other: u64,
}

impl<K: std::hash::Hash + Eq> Default for Counts<K> {
    fn default() -> Self {
        Counts { counts: HashMap::default(), other: 0 }
    }
}

impl Counts<IpAddr> {
    fn add_ip(&mut self, key: IpAddr, max_keys: usize) {
        if let Some(n) = self.counts.get_mut(&key) {
            *n += 1;
        } else if self.counts.len() < max_keys {
            self.counts.insert(key, 1);
        } else {
            self.other += 1;
        }
    }
}

impl<K: std::hash::Hash + Eq + ToString> Counts<K> {
    /// The `n` largest counts.
    pub fn top(&self, n: usize) -> Vec<(String, u64)> {
        let mut all: Vec<(String, u64)> =
            self.counts.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        all.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        all.truncate(n);
        all
    }
}

impl Counts {
    fn add(&mut self, key: &str, max_keys: usize) {
        if let Some(n) = self.counts.get_mut(key) {
            *n += 1;
        } else if self.counts.len() < max_keys {
            self.counts.insert(key.chars().take(128).collect(), 1);
        } else {
            self.other += 1;
        }
    }
}

/// The key one aggregate dimension counted last, and the events counted under it since the count
/// was last written to the map. Consecutive events mostly share their source, service and level:
/// counting one is then a string comparison instead of hashing the key and probing the map. The
/// key is always one the map holds (so a deferred count is exactly a `+= 1` on it), and every
/// reader of the aggregates writes the deferred counts first ([`Counts::flush`]).
#[derive(Debug, Default)]
struct LastKey {
    key: String,
    held: bool,
    pending: u64,
}

impl Counts {
    /// [`add`](Counts::add), through `last`.
    fn add_cached(&mut self, last: &mut LastKey, key: &str, max_keys: usize) {
        if last.held && last.key == key {
            last.pending += 1;
            return;
        }
        self.flush(last);
        if let Some(n) = self.counts.get_mut(key) {
            *n += 1;
        } else if self.counts.len() < max_keys {
            let stored: String = key.chars().take(128).collect();
            let whole = stored.len() == key.len();
            self.counts.insert(stored, 1);
            if !whole {
                // Stored truncated: the map does not hold `key` as is.
                return;
            }
        } else {
            self.other += 1;
            return;
        }
        last.key.clear();
        last.key.push_str(key);
        last.held = true;
    }

    /// Writes the counts `last` deferred into the map.
    fn flush(&mut self, last: &mut LastKey) {
        if last.pending > 0 {
            if let Some(n) = self.counts.get_mut(last.key.as_str()) {
                *n += last.pending;
            }
            last.pending = 0;
        }
    }
}

/// The last keys of the dimensions most events share with the event before them.
#[derive(Debug, Default)]
struct LastKeys {
    source: LastKey,
    service: LastKey,
    level: LastKey,
    action: LastKey,
}

/// Aggregates of the log events traced.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Aggregates {
    /// Events traced.
    pub events: u64,
    /// By format/source (`sshd`, `nginx_access`, …).
    pub by_source: Counts,
    /// By level.
    pub by_level: Counts,
    /// By action.
    pub by_action: Counts,
    /// By address.
    pub by_ip: Counts<IpAddr>,
    /// By user.
    pub by_user: Counts,
    /// By service.
    pub by_service: Counts,
}

#[derive(Debug)]
struct State {
    failures: BoundedMap<IpAddr, Failures>,
    exhaustion: Option<Exhaustion>,
    aggregates: Aggregates,
    /// Counts deferred from `aggregates` (see [`LastKey`]).
    last: LastKeys,
}

impl State {
    /// The aggregates with every deferred count written.
    fn aggregates(&mut self) -> &Aggregates {
        let (agg, last) = (&mut self.aggregates, &mut self.last);
        agg.by_source.flush(&mut last.source);
        agg.by_service.flush(&mut last.service);
        agg.by_level.flush(&mut last.level);
        agg.by_action.flush(&mut last.action);
        &self.aggregates
    }
}

/// The event tracer.
#[derive(Debug)]
pub struct EventTracer {
    window: i64,
    max_keys: usize,
    state: Mutex<State>,
}

fn is_failure(action: &str) -> bool {
    matches!(
        action,
        "failed_password"
            | "failed_password_invalid"
            | "failed_auth"
            | "invalid_user"
            | "max_auth_exceeded"
            | "auth_failed"
    )
}

/// Whether `haystack` contains `needle` (ASCII lowercase), ignoring ASCII case, without
/// allocating.
fn contains_ignore_case(haystack: &str, needle: &str) -> bool {
    let needle = needle.as_bytes();
    haystack.as_bytes().windows(needle.len()).any(|it| it.eq_ignore_ascii_case(needle))
}

/// Every phrase [`exhaustion_of`] and [`is_connection_failure`] look for, found in one
/// case-insensitive pass. Most messages hold none of them, and then neither has to scan the
/// message once per phrase. The pattern is a constant; should it ever fail to build, every
/// message is scanned as before.
static FAILURE_PHRASES: LazyLock<Option<Regex>> = LazyLock::new(|| {
    RegexBuilder::new(
        "out of memory|oom-kill|memoryerror|no space left on device|disk full|connection refused|timed out|timeout",
    )
    .case_insensitive(true)
    .build()
    .ok()
});

/// Whether `message` may name an exhaustion or a connection failure (a superset: the precise
/// tests decide).
fn may_name_a_failure(message: &str) -> bool {
    FAILURE_PHRASES.as_ref().is_none_or(|it| it.is_match(message))
}

/// Memory or disk exhaustion named by a message: the kind and the victim process, if any.
fn exhaustion_of(message: &str) -> Option<(&'static str, Option<String>)> {
    let has = |needle: &str| contains_ignore_case(message, needle);
    if has("out of memory") || has("oom-kill") || has("memoryerror") {
        // "Killed process 4242 (python3)".
        let victim = message
            .find("Killed process ")
            .and_then(|at| message[at..].split_once('('))
            .and_then(|(_, rest)| rest.split_once(')'))
            .map(|(name, _)| name.chars().take(64).collect());
        return Some(("memory", victim));
    }
    if has("no space left on device") || has("disk full") {
        return Some(("disk", None));
    }
    None
}

fn is_connection_failure(message: &str) -> Option<&'static str> {
    let has = |needle: &str| contains_ignore_case(message, needle);
    if has("connection refused") {
        Some("refused")
    } else if has("timed out") || has("timeout") {
        Some("timeout")
    } else {
        None
    }
}

fn time(secs: i64) -> Option<DateTime<Utc>> {
    Utc.timestamp_opt(secs, 0).single()
}

/// The trace's tracer name.
pub const EVENT_TRACER: &str = "event";

impl EventTracer {
    /// Traces one log event at `at`; returns what the trace records.
    pub fn trace(&self, log: &LogEvent, at: DateTime<Utc>) -> EventFinding {
        self.trace_in(&mut self.lock(), log, at)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|it| it.into_inner())
    }

    /// [`trace`](EventTracer::trace) with the state already locked.
    fn trace_in(&self, state: &mut State, log: &LogEvent, at: DateTime<Utc>) -> EventFinding {
        let service = service_name(log);
        let action = log.action.as_deref();
        let score = severity_score(log.level.as_deref(), action);
        let now = at.timestamp();
        let mut causality = None;
        let max_keys = self.max_keys;
        let (agg, last) = (&mut state.aggregates, &mut state.last);
        agg.events += 1;
        agg.by_source.add_cached(&mut last.source, &log.source, max_keys);
        agg.by_service.add_cached(&mut last.service, service, max_keys);
        if let Some(level) = &log.level {
            agg.by_level.add_cached(&mut last.level, level, max_keys);
        }
        if let Some(action) = action {
            agg.by_action.add_cached(&mut last.action, action, max_keys);
        }
        if let Some(user) = &log.user {
            agg.by_user.add(user, max_keys);
        }
        if let Some(ip) = log.ip {
            agg.by_ip.add_ip(ip, max_keys);
        }
        let window = self.window;
        match (action, log.ip) {
            (Some(action), Some(ip)) if is_failure(action) => {
                let entry = state.failures.entry(
                    &ip,
                    || Failures { count: 0, invalid_users: 0, first: now, last: now },
                    |it| now - it.last > window,
                );
                if now - entry.last > window {
                    *entry = Failures { count: 0, invalid_users: 0, first: now, last: now };
                }
                entry.count += 1;
                entry.last = now;
                if matches!(action, "invalid_user" | "failed_password_invalid") {
                    entry.invalid_users += 1;
                }
                let cause = match action {
                    "invalid_user" | "failed_password_invalid" => "unknown user name",
                    "failed_password" if entry.invalid_users > 0 => {
                        "password guessing (unknown user names tried too)"
                    }
                    "failed_password" | "auth_failed" => "wrong password",
                    "failed_auth" => "credentials rejected (key or keyboard-interactive)",
                    "max_auth_exceeded" => "too many attempts on one connection",
                    _ => "authentication failure",
                };
                if entry.count >= 2 || action != "failed_password" {
                    causality = Some(Causality::AuthenticationFailure {
                        cause: Cow::Borrowed(cause),
                        failures_in_window: entry.count,
                    });
                }
            }
            (Some("ban" | "restore_ban"), Some(ip)) => {
                let before = state.failures.remove(&ip).filter(|it| now - it.last <= window);
                causality = Some(Causality::FailedLoginsToBan {
                    failures: before.as_ref().map_or(0, |it| it.count),
                    first_failure: before.as_ref().and_then(|it| time(it.first)),
                    last_failure: before.as_ref().and_then(|it| time(it.last)),
                });
            }
            (None | Some("server_error"), _) if may_name_a_failure(&log.message) => {
                if let Some((kind, victim)) = exhaustion_of(&log.message) {
                    causality = Some(Causality::ResourceExhaustion {
                        kind: Cow::Borrowed(kind),
                        victim: victim.clone(),
                    });
                    state.exhaustion =
                        Some(Exhaustion { kind, service: service.to_owned(), victim, at: now });
                } else if let Some(failure) = is_connection_failure(&log.message) {
                    let trigger = state
                        .exhaustion
                        .as_ref()
                        .filter(|it| now >= it.at && now - it.at <= window)
                        .map(|it| {
                            Box::new(ExhaustionTrigger {
                                kind: Cow::Borrowed(it.kind),
                                service: it.service.clone(),
                                victim: it.victim.clone(),
                                at: time(it.at),
                            })
                        });
                    causality = Some(Causality::ConnectionFailure {
                        failure: Cow::Borrowed(failure),
                        trigger,
                    });
                }
            }
            _ => {}
        }
        EventFinding {
            service: static_name(service),
            related: Cow::Borrowed(related_text(service)),
            severity_score: score,
            causality,
        }
    }

    /// The aggregates so far.
    pub fn aggregates(&self) -> Aggregates {
        self.lock().aggregates().clone()
    }

    /// The aggregates as JSON, the `n` largest keys per dimension.
    pub fn aggregates_json(&self, n: usize) -> Value {
        let agg = self.aggregates();
        fn top<K: std::hash::Hash + Eq + ToString>(
            counts: &Counts<K>,
            n: usize,
        ) -> BTreeMap<String, u64> {
            let mut out: BTreeMap<String, u64> = counts.top(n).into_iter().collect();
            if counts.other > 0 {
                out.insert("other".to_owned(), counts.other);
            }
            out
        }
        json!({
            "events": agg.events,
            "by_source": top(&agg.by_source, n),
            "by_level": top(&agg.by_level, n),
            "by_action": top(&agg.by_action, n),
            "by_ip": top(&agg.by_ip, n),
            "by_user": top(&agg.by_user, n),
            "by_service": top(&agg.by_service, n),
        })
    }
}

impl Enricher for EventTracer {
    fn name(&self) -> &str {
        EVENT_TRACER
    }

    fn wants(&self, event: &Event) -> bool {
        matches!(event.payload, Payload::Log(_))
    }

    fn enrich(&self, event: &mut Event, _extra: &mut Vec<Event>) {
        let Payload::Log(log) = &event.payload else { return };
        let at = log.timestamp.unwrap_or(event.timestamp);
        let found = self.trace(log, at);
        crate::record(&mut event.enrichment, EVENT_TRACER, Found::Event(found));
    }

    /// One lock and at most one clock reading for the whole batch.
    fn enrich_batch(&self, events: &mut [&mut Event], _extra: &mut Vec<(usize, Event)>) {
        let mut now = None;
        let mut state = self.lock();
        for event in events.iter_mut() {
            let Payload::Log(log) = &event.payload else { continue };
            let at = log.timestamp.unwrap_or(event.timestamp);
            let found = self.trace_in(&mut state, log, at);
            let clock = || *now.get_or_insert_with(crate::now);
            crate::record_at(&mut event.enrichment, EVENT_TRACER, Found::Event(found), clock);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_phrase_prefilter_lets_every_phrase_through_in_any_case() {
        for phrase in [
            "out of memory",
            "oom-kill",
            "memoryerror",
            "no space left on device",
            "disk full",
            "connection refused",
            "timed out",
            "timeout",
        ] {
            let message = format!("x {} y", phrase.to_ascii_uppercase());
            assert!(may_name_a_failure(&message), "{message}");
            assert!(exhaustion_of(&message).is_some() || is_connection_failure(&message).is_some());
        }
        let plain = "pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)";
        assert!(!may_name_a_failure(plain));
        assert!(exhaustion_of(plain).is_none() && is_connection_failure(plain).is_none());
    }

    #[test]
    fn counting_through_the_last_key_counts_exactly_as_the_map_alone() {
        let long = "x".repeat(130);
        let keys = ["sshd", "sshd", "nginx", &long, &long, "sshd", "a", "b", "c", "c", "c", "b"];
        for max_keys in [1, 2, 3, 100] {
            let (mut plain, mut cached, mut last) =
                (Counts::default(), Counts::default(), LastKey::default());
            let mut state = 0x2545_f491_u32;
            for step in 0..2_000 {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                // Runs of the same key, as consecutive events have.
                let key = keys[(state as usize / 7) % keys.len()];
                for _ in 0..(state % 4) {
                    plain.add(key, max_keys);
                    cached.add_cached(&mut last, key, max_keys);
                }
                if step % 97 == 0 {
                    cached.flush(&mut last);
                    assert_eq!(cached, plain, "max_keys {max_keys}, step {step}");
                }
            }
            cached.flush(&mut last);
            assert_eq!(cached, plain, "max_keys {max_keys}");
            assert!(plain.counts.values().sum::<u64>() + plain.other > 2_000);
        }
    }
}
