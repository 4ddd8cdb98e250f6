//! The sshd detector (SPEC §3, seed 004's example module): successful and failed logins,
//! failed logins per source address within a window, the `SSHLoginTriesExceeded` finding, and
//! daily statistics.
//!
//! # What counts
//!
//! - A successful login: `accepted`.
//! - A failed login: `failed_password`, `failed_password_invalid`, `failed_auth` (one
//!   authentication attempt each; `invalid_user` and the disconnect lines that accompany an
//!   attempt are not counted again).
//! - Failed logins of users with no successful login that day: failed logins of a user are
//!   counted there until that user logs in successfully the same day, which removes them.
//! - Addresses blocked: distinct addresses of `Ban` events in stage `banned` that day.
//!
//! Days are calendar days in the zone the lines were written in.
//!
//! # State format
//!
//! `{"version": 1, "days": {"2026-11-01": {…}}, "tries": {…}, "totals": {…}}`; restored state
//! is cut to the configured limits.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
};

use chrono::{DateTime, FixedOffset, Utc};
use serde::{Deserialize, Serialize};
use vigil_core::{ComponentError, Detector, DetectorContext, Statistics};
use vigil_event::{BanStage, Event, Evidence, Finding, FindingLevel, Payload, Value};
use vigil_parse::Action;

use super::SshdConfig;
use crate::{
    Observation,
    bounded::BoundedCounts,
    duration_text::millis,
    observation::utc,
    window::{SavedWindows, Windows},
};

/// The statistics of one day.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DayStats {
    /// Successful logins.
    pub successful_logins: u64,
    /// Failed logins.
    pub failed_logins: u64,
    /// Failed logins per user, for users with no successful login that day yet.
    failed_without_success: BoundedCounts,
    /// Users with a successful login that day.
    succeeded_users: BTreeSet<String>,
    /// Distinct addresses with failed logins.
    failing_addresses: BTreeSet<IpAddr>,
    /// Failing addresses beyond the per-day limit.
    failing_addresses_other: u64,
    /// Distinct addresses blocked.
    blocked: BTreeSet<String>,
    /// Blocked addresses beyond the per-day limit.
    blocked_other: u64,
    /// `SSHLoginTriesExceeded` findings.
    pub tries_exceeded: u64,
}

impl DayStats {
    /// The day as reported.
    pub fn report(&self) -> Value {
        serde_json::json!({
            "successful_logins": self.successful_logins,
            "failed_logins": self.failed_logins,
            "failed_logins_without_success": self.failed_without_success.total(),
            "failing_addresses": self.failing_addresses.len() as u64 + self.failing_addresses_other,
            "addresses_blocked": self.blocked.len() as u64 + self.blocked_other,
            "tries_exceeded": self.tries_exceeded,
        })
    }
}

/// Overall counters.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
struct Totals {
    successful_logins: u64,
    failed_logins: u64,
    tries_exceeded: u64,
}

#[derive(Serialize, Deserialize)]
struct Saved {
    version: u32,
    #[serde(default)]
    days: BTreeMap<String, DayStats>,
    #[serde(default)]
    totals: Totals,
    tries: SavedWindows<IpAddr, ()>,
    #[serde(default)]
    offset: i32,
}

/// See the module docs.
#[derive(Debug, Clone)]
pub struct SshdDetector {
    max_tries: usize,
    window_ms: i64,
    days_kept: usize,
    max_keys: usize,
    tries: Windows<IpAddr, ()>,
    days: BTreeMap<String, DayStats>,
    totals: Totals,
    /// The zone offset of the last line, for the day of ban decisions.
    offset: i32,
    /// The last day computed: its start and end (ms, local midnight to midnight) and name.
    day_cache: Option<(i64, i64, i32, String)>,
}

impl SshdDetector {
    /// The detector's name.
    pub const NAME: &'static str = "sshd";
    /// The finding dispatched when an address crosses `max_tries`.
    pub const FINDING_NAME: &'static str = "SSHLoginTriesExceeded";

    /// A detector configured by `config`.
    pub fn new(config: &SshdConfig) -> SshdDetector {
        let max_tries = config.max_tries.max(1) as usize;
        let window_ms = millis(config.window);
        SshdDetector {
            max_tries,
            window_ms,
            days_kept: config.days_kept.max(1),
            max_keys: config.max_keys_per_day.max(1),
            tries: Windows::new(max_tries, window_ms, config.max_tracked, false),
            days: BTreeMap::new(),
            totals: Totals::default(),
            offset: 0,
            day_cache: None,
        }
    }

    /// Whether a line with this action matters to the detector.
    pub fn wants(action: Option<Action>) -> bool {
        matches!(
            action,
            Some(
                Action::Accepted
                    | Action::FailedPassword
                    | Action::FailedPasswordInvalid
                    | Action::FailedAuth
            )
        )
    }

    /// Reads one line; a finding is pushed to `out` when an address crosses the threshold.
    pub fn observe(&mut self, obs: &Observation<'_>, out: &mut Vec<Finding>) {
        if !SshdDetector::wants(obs.action) || obs.source != "sshd" {
            return;
        }
        self.offset = obs.utc_offset_seconds;
        let day_key = day_of(obs.at_ms, obs.utc_offset_seconds);
        let max_keys = self.max_keys;
        let user = obs.user.unwrap_or("");
        if obs.action == Some(Action::Accepted) {
            self.totals.successful_logins += 1;
        } else {
            self.totals.failed_logins += 1;
        }
        let day = self.day(day_key);
        if obs.action == Some(Action::Accepted) {
            day.successful_logins += 1;
            day.failed_without_success.remove(user);
            if day.succeeded_users.len() < max_keys {
                day.succeeded_users.insert(user.to_owned());
            }
            return;
        }
        day.failed_logins += 1;
        if !day.succeeded_users.contains(user) {
            day.failed_without_success.add(user, max_keys);
        }
        let Some(ip) = obs.ip else { return };
        if !day.failing_addresses.contains(&ip) {
            if day.failing_addresses.len() < max_keys {
                day.failing_addresses.insert(ip);
            } else {
                day.failing_addresses_other += 1;
            }
        }
        let Some(items) = self.tries.add(ip, obs.at_ms, (), obs.line) else { return };
        self.totals.tries_exceeded += 1;
        let day_key = self.day_key(obs.at_ms, obs.utc_offset_seconds);
        self.day(day_key).tries_exceeded += 1;
        let window_s = self.window_ms / 1000;
        let evidence = Evidence {
            rule: format!("sshd: {} failed logins within {window_s}s", self.max_tries),
            count: items.len() as u64,
            window_seconds: window_s as u64,
            first_seen: items.first().map(|it| utc(it.at_ms)),
            last_seen: items.last().map(|it| utc(it.at_ms)),
            lines: items.into_iter().map(|it| it.line).collect(),
            ..Evidence::default()
        };
        let summary = format!("{} failed ssh logins from {ip} within {window_s}s", evidence.count);
        let finding =
            Finding::new(FindingLevel::Warning, SshdDetector::FINDING_NAME, "sshd", summary)
                .with_data("ip", ip.to_string())
                .with_data("failures", evidence.count)
                .with_data("at", obs.at().to_rfc3339())
                .with_record(obs.line)
                .with_evidence(evidence);
        out.push(finding);
    }

    /// Counts a ban decision in its day's blocked addresses.
    pub fn ban_decided(&mut self, ip: &str, at: DateTime<Utc>) {
        let max_keys = self.max_keys;
        let key = self.day_key(at.timestamp_millis(), self.offset);
        let day = self.day(key);
        if !day.blocked.contains(ip) {
            if day.blocked.len() < max_keys {
                day.blocked.insert(ip.to_owned());
            } else {
                day.blocked_other += 1;
            }
        }
    }

    /// The name of the day of `at_ms` in the zone `offset`, computed once per day.
    fn day_key(&mut self, at_ms: i64, offset: i32) -> String {
        if let Some((start, end, zone, key)) = &self.day_cache
            && *zone == offset
            && (*start..*end).contains(&at_ms)
        {
            return key.clone();
        }
        let key = day_of(at_ms, offset);
        let local_ms = at_ms + i64::from(offset) * 1000;
        let start = local_ms.div_euclid(86_400_000) * 86_400_000 - i64::from(offset) * 1000;
        self.day_cache = Some((start, start + 86_400_000, offset, key.clone()));
        key
    }

    fn day(&mut self, key: String) -> &mut DayStats {
        if !self.days.contains_key(&key) {
            while self.days.len() >= self.days_kept {
                self.days.pop_first();
            }
        }
        self.days.entry(key).or_default()
    }

    /// The statistics of `day` (`YYYY-MM-DD`), if any line of that day was seen.
    pub fn day_report(&self, day: &str) -> Option<Value> {
        self.days.get(day).map(DayStats::report)
    }

    /// The days with statistics, oldest first.
    pub fn days(&self) -> impl Iterator<Item = &str> {
        self.days.keys().map(String::as_str)
    }
}

/// The calendar day of `at_ms` in the zone `offset` seconds east of UTC.
fn day_of(at_ms: i64, offset: i32) -> String {
    let zone = FixedOffset::east_opt(offset).unwrap_or(FixedOffset::east_opt(0).expect("UTC"));
    utc(at_ms).with_timezone(&zone).format("%Y-%m-%d").to_string()
}

impl Detector for SshdDetector {
    fn name(&self) -> &str {
        SshdDetector::NAME
    }

    fn handle(&mut self, event: &Event, ctx: &mut DetectorContext) -> Result<(), ComponentError> {
        match &event.payload {
            Payload::Log(log) => {
                let mut out = Vec::new();
                self.observe(&Observation::from_log(log, event.timestamp), &mut out);
                for finding in out {
                    ctx.finding(finding);
                }
            }
            Payload::Ban(ban) if ban.stage == BanStage::Banned => self.ban_decided(&ban.ip, ban.at),
            _ => {}
        }
        Ok(())
    }

    fn statistics(&self) -> Statistics {
        let mut stats = Statistics::new();
        stats.insert("successful_logins".into(), self.totals.successful_logins.into());
        stats.insert("failed_logins".into(), self.totals.failed_logins.into());
        stats.insert("tries_exceeded".into(), self.totals.tries_exceeded.into());
        stats.insert("findings_suppressed".into(), self.tries.suppressed.into());
        stats.insert("tracked_addresses".into(), (self.tries.len() as u64).into());
        stats.insert("evicted_addresses".into(), self.tries.evicted.into());
        let days: vigil_event::Map =
            self.days.iter().map(|(day, stats)| (day.clone(), stats.report())).collect();
        stats.insert("days".into(), Value::Object(days.into_iter().collect()));
        stats
    }

    fn save_state(&self) -> Option<Value> {
        let saved = Saved {
            version: 1,
            days: self.days.clone(),
            totals: self.totals.clone(),
            tries: self.tries.save(),
            offset: self.offset,
        };
        serde_json::to_value(saved).ok()
    }

    fn restore_state(&mut self, state: Value) -> Result<(), ComponentError> {
        if state.get("version").and_then(Value::as_u64) != Some(1) {
            return Err(ComponentError::msg("invalid sshd state: expected version 1"));
        }
        let saved: Saved = serde_json::from_value(state)
            .map_err(|err| ComponentError::msg(format!("invalid sshd state: {err}")))?;
        let mut days = saved.days;
        while days.len() > self.days_kept {
            days.pop_first();
        }
        for day in days.values_mut() {
            day.failed_without_success.enforce_limits(self.max_keys);
            while day.succeeded_users.len() > self.max_keys {
                day.succeeded_users.pop_last();
            }
            while day.failing_addresses.len() > self.max_keys {
                day.failing_addresses.pop_last();
                day.failing_addresses_other += 1;
            }
            while day.blocked.len() > self.max_keys {
                day.blocked.pop_last();
                day.blocked_other += 1;
            }
        }
        self.days = days;
        self.totals = saved.totals;
        self.tries.restore(saved.tries);
        self.offset = saved.offset;
        Ok(())
    }
}
