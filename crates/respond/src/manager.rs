//! The ban manager: pure decision logic with an injected clock and no I/O.
//!
//! [`BanManager::decide`] turns a jail's `Requested` ban into `Banned` (with `until`) or
//! `Refused` (with a reason); [`BanManager::expire`] lifts what ran out; [`BanManager::unban`]
//! lifts on an operator's request; [`BanManager::restore`] re-applies persisted bans on start.
//! Each returns an [`Outcome`]: the ban events to dispatch and the [`Change`]s for the actions.
//! The state ([`BanState`]) serialises to JSON and survives restarts. `vigil replay` calls the
//! same API in dry-run, so what a replay shows is what the agent would have done.
//!
//! Bounded: at most `max_active` bans (more are refused and counted) and `max_history`
//! remembered addresses (the least recently banned are forgotten first, counted).

use std::{
    collections::{BTreeSet, HashMap},
    net::IpAddr,
    sync::Arc,
};

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use vigil_event::{Ban, BanStage, Evidence, Value};

use crate::{BanTarget, BansConfig, Guard, IpNet, RespondError};

/// The version of [`BanState`]'s JSON.
pub const STATE_VERSION: u32 = 1;

/// One active ban, as persisted and as `vigil bans` prints it. Persisted as a compact row
/// (`[ip, jail, at, until, failures, bantime_seconds, previous_bans, flags]`, times in Unix
/// seconds) so 100,000 bans load in a fraction of a second.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(into = "RecordRow", try_from = "RecordRow")]
pub struct BanRecord {
    /// The address or prefix.
    pub ip: IpNet,
    /// The jail that asked for it (for a prefix: the jail whose request completed it).
    pub jail: Arc<str>,
    /// When the ban started.
    pub at: DateTime<Utc>,
    /// When it ends; `None` for a permanent ban.
    pub until: Option<DateTime<Utc>>,
    /// Failures counted in the window of the latest request.
    pub failures: u64,
    /// True when enforcement was off when it was decided.
    pub dry_run: bool,
    /// The duration asked for, in seconds (negative: permanent).
    pub bantime_seconds: i64,
    /// How many times this address had been banned before.
    pub previous_bans: u32,
    /// True for a prefix banned because several of its addresses were.
    pub aggregated: bool,
}

/// [`BanRecord`]'s persisted form.
#[derive(Serialize, Deserialize)]
struct RecordRow(IpNet, Arc<str>, i64, Option<i64>, u64, i64, u32, u8);

const DRY_RUN: u8 = 1;
const AGGREGATED: u8 = 2;

impl From<BanRecord> for RecordRow {
    fn from(it: BanRecord) -> RecordRow {
        let flags =
            if it.dry_run { DRY_RUN } else { 0 } | if it.aggregated { AGGREGATED } else { 0 };
        RecordRow(
            it.ip,
            it.jail,
            it.at.timestamp(),
            it.until.map(|it| it.timestamp()),
            it.failures,
            it.bantime_seconds,
            it.previous_bans,
            flags,
        )
    }
}

impl TryFrom<RecordRow> for BanRecord {
    type Error = String;

    fn try_from(row: RecordRow) -> Result<BanRecord, String> {
        let time = |secs: i64| {
            DateTime::<Utc>::from_timestamp(secs, 0)
                .ok_or_else(|| format!("time {secs} out of range"))
        };
        Ok(BanRecord {
            ip: row.0,
            jail: row.1,
            at: time(row.2)?,
            until: row.3.map(time).transpose()?,
            failures: row.4,
            bantime_seconds: row.5,
            previous_bans: row.6,
            dry_run: row.7 & DRY_RUN != 0,
            aggregated: row.7 & AGGREGATED != 0,
        })
    }
}

/// How often one address was banned, for `previous_bans` of its next ban. Persisted as
/// `[ip, bans, last]` (Unix seconds).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(into = "HistoryRow", try_from = "HistoryRow")]
pub struct HistoryRecord {
    /// The address or prefix.
    pub ip: IpNet,
    /// Bans so far.
    pub bans: u32,
    /// When the latest started.
    pub last: DateTime<Utc>,
}

#[derive(Serialize, Deserialize)]
struct HistoryRow(IpNet, u32, i64);

impl From<HistoryRecord> for HistoryRow {
    fn from(it: HistoryRecord) -> HistoryRow {
        HistoryRow(it.ip, it.bans, it.last.timestamp())
    }
}

impl TryFrom<HistoryRow> for HistoryRecord {
    type Error = String;

    fn try_from(row: HistoryRow) -> Result<HistoryRecord, String> {
        let last = DateTime::<Utc>::from_timestamp(row.2, 0)
            .ok_or_else(|| format!("time {} out of range", row.2))?;
        Ok(HistoryRecord { ip: row.0, bans: row.1, last })
    }
}

/// Everything the manager persists.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BanState {
    /// [`STATE_VERSION`].
    pub version: u32,
    /// Active bans.
    pub active: Vec<BanRecord>,
    /// Per-address history.
    pub history: Vec<HistoryRecord>,
    /// Rows [`from_value`](BanState::from_value) could not read and left out.
    #[serde(skip)]
    pub skipped: usize,
}

impl BanState {
    /// Reads the JSON a [`BanManager::state`] produced. A row that cannot be read (a
    /// hand-edited file, a time out of range) is left out and counted in `skipped`, so one bad
    /// row never costs the other bans; a wrong version or shape is an error.
    pub fn from_value(value: Value) -> Result<BanState, RespondError> {
        #[derive(Deserialize)]
        struct Raw {
            version: u32,
            #[serde(default)]
            active: Vec<Value>,
            #[serde(default)]
            history: Vec<Value>,
        }
        let raw: Raw =
            serde_json::from_value(value).map_err(|err| RespondError::State(err.to_string()))?;
        if raw.version != STATE_VERSION {
            return Err(RespondError::State(format!("unknown version {}", raw.version)));
        }
        fn rows<T: serde::de::DeserializeOwned>(values: Vec<Value>, skipped: &mut usize) -> Vec<T> {
            let total = values.len();
            let kept: Vec<T> =
                values.into_iter().filter_map(|it| serde_json::from_value(it).ok()).collect();
            *skipped += total - kept.len();
            kept
        }
        let mut skipped = 0;
        let active = rows(raw.active, &mut skipped);
        let history = rows(raw.history, &mut skipped);
        Ok(BanState { version: raw.version, active, history, skipped })
    }

    /// The JSON form.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// One ban as an action sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// What to ban; validated.
    pub target: BanTarget,
    /// When it ends; `None` for a permanent ban.
    pub until: Option<DateTime<Utc>>,
    /// The jail.
    pub jail: Arc<str>,
    /// Failures counted.
    pub failures: u64,
    /// Seconds asked for.
    pub bantime_seconds: i64,
}

impl Entry {
    /// Whole seconds left at `now`, at least 1; `None` for a permanent ban.
    pub fn remaining_seconds(&self, now: DateTime<Utc>) -> Option<u64> {
        let until = self.until?;
        let ms = (until - now).num_milliseconds().max(1);
        Some((ms as u64).div_ceil(1000))
    }
}

/// What an action must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// Ban (or extend the ban of) one target.
    Ban(Entry),
    /// Lift the ban of one target.
    Unban(Entry),
    /// Replace everything with exactly these bans (start-up, or after a failed change).
    Restore(Vec<Entry>),
}

/// What one manager call decided.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    /// Ban events to dispatch, in order (for `decide`, the first answers the request).
    pub events: Vec<Ban>,
    /// Changes for the actions (empty in dry-run: nothing is enforced).
    pub changes: Vec<Change>,
}

/// Counters for statistics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    /// Requests decided.
    pub requested: u64,
    /// New bans.
    pub banned: u64,
    /// Bans extended by a new request.
    pub extended: u64,
    /// Requests refused.
    pub refused: u64,
    /// Bans lifted on expiry.
    pub expired: u64,
    /// Bans lifted by an operator.
    pub unbanned: u64,
    /// Prefix bans made by aggregation.
    pub aggregated: u64,
    /// Requests refused because `max_active` bans were active.
    pub refused_full: u64,
    /// History entries forgotten to stay within `max_history`.
    pub history_evicted: u64,
}

/// The ban manager. See the module docs.
#[derive(Debug)]
pub struct BanManager {
    guard: Guard,
    configured_own: Vec<IpAddr>,
    enforce: bool,
    default_bantime: i64,
    max_active: usize,
    max_history: usize,
    aggregate_threshold: u32,
    v4_prefix: u8,
    v6_prefix: u8,
    active: HashMap<BanTarget, BanRecord>,
    expiry: BTreeSet<(DateTime<Utc>, BanTarget)>,
    /// Active single-address bans per aggregation prefix.
    per_prefix: HashMap<IpNet, u32>,
    history: HashMap<IpNet, HistoryRecord>,
    counters: Counters,
}

impl BanManager {
    /// A manager for `config`, protecting `own_addresses` besides the configured ones.
    pub fn new(
        config: &BansConfig,
        own_addresses: impl IntoIterator<Item = IpAddr>,
    ) -> Result<BanManager, RespondError> {
        config.validate()?;
        let own = own_addresses.into_iter().chain(config.own_addresses.iter().copied());
        let guard = Guard::new(own, config.ignoreip.iter().copied());
        Ok(BanManager {
            guard,
            configured_own: config.own_addresses.clone(),
            enforce: config.enforce,
            default_bantime: config.default_bantime_seconds,
            max_active: config.max_active,
            max_history: config.max_history,
            aggregate_threshold: config.aggregate.threshold,
            v4_prefix: config.aggregate.ipv4_prefix,
            v6_prefix: config.aggregate.ipv6_prefix,
            active: HashMap::new(),
            expiry: BTreeSet::new(),
            per_prefix: HashMap::new(),
            history: HashMap::new(),
            counters: Counters::default(),
        })
    }

    /// The guard every target passes.
    pub fn guard(&self) -> &Guard {
        &self.guard
    }

    /// Replaces the host's own addresses (they change: DHCP, a new interface); the configured
    /// extras and the allow-list stay. Returns whether anything changed.
    pub fn set_host_addresses(&mut self, host: impl IntoIterator<Item = IpAddr>) -> bool {
        let own = host.into_iter().chain(self.configured_own.iter().copied());
        let guard = Guard::new(own, self.guard.allow().iter().copied());
        let changed = guard.own() != self.guard.own();
        self.guard = guard;
        changed
    }

    /// Whether actions are applied (false: dry-run).
    pub fn enforcing(&self) -> bool {
        self.enforce
    }

    /// The counters.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// The active bans, in no particular order.
    pub fn active(&self) -> impl Iterator<Item = &BanRecord> {
        self.active.values()
    }

    /// The number of active bans.
    pub fn active_len(&self) -> usize {
        self.active.len()
    }

    /// The active ban of `text` (an address or prefix), if any.
    pub fn get(&self, text: &str) -> Option<&BanRecord> {
        let net: IpNet = text.parse().ok()?;
        self.active.iter().find(|(target, _)| target.net() == net).map(|it| it.1)
    }

    /// Decides a `Requested` ban at `now`. The first event answers it (`Banned` or `Refused`);
    /// a second `Banned` event follows when the ban completes a prefix for aggregation.
    pub fn decide(&mut self, request: &Ban, now: DateTime<Utc>) -> Outcome {
        self.counters.requested += 1;
        let mut outcome = Outcome::default();
        let target = match request.ip.parse::<IpNet>().and_then(|net| self.guard.check(net)) {
            Ok(it) => it,
            Err(err) => {
                self.counters.refused += 1;
                let reason = match err {
                    RespondError::Protected { reason, .. } => reason,
                    other => other.to_string(),
                };
                outcome.events.push(self.refused(request, reason));
                return outcome;
            }
        };
        let bantime = if request.bantime_seconds == 0 {
            self.default_bantime
        } else {
            request.bantime_seconds
        };
        let start = request.at.max(now);
        let until = until_of(start, bantime);
        let net = target.net();
        let previous = self.history.get(&net).map_or(0, |it| it.bans).max(request.previous_bans);

        if let Some(existing) = self.active.get(&target).cloned() {
            // Requested again while banned: extend to the later end, never duplicate.
            self.counters.extended += 1;
            let until = later(existing.until, until);
            let record = BanRecord {
                jail: Arc::from(request.jail.as_str()),
                failures: request.failures,
                bantime_seconds: bantime,
                until,
                ..existing
            };
            self.replace(target, record.clone());
            outcome.events.push(self.banned(request, &record, Some("extended".into())));
            outcome.changes.push(Change::Ban(entry(target, &record)));
            self.retain_changes(&mut outcome);
            return outcome;
        }
        if self.active.len() >= self.max_active {
            self.counters.refused += 1;
            self.counters.refused_full += 1;
            let reason = format!("{} bans are active, the most allowed", self.max_active);
            outcome.events.push(self.refused(request, reason));
            return outcome;
        }
        let record = BanRecord {
            ip: net,
            jail: Arc::from(request.jail.as_str()),
            at: request.at,
            until,
            failures: request.failures,
            dry_run: !self.enforce,
            bantime_seconds: bantime,
            previous_bans: previous,
            aggregated: false,
        };
        self.insert(target, record.clone());
        self.remember(net, request.at);
        self.counters.banned += 1;
        outcome.events.push(self.banned(request, &record, None));
        outcome.changes.push(Change::Ban(entry(target, &record)));
        if let Some((prefix, record)) = self.aggregate(net, record.until, request) {
            outcome.changes.push(Change::Ban(entry(prefix, &record)));
            let event = self.banned(request, &record, Some("aggregated".into()));
            outcome.events.push(Ban { evidence: aggregate_evidence(&record, net), ..event });
        }
        self.retain_changes(&mut outcome);
        outcome
    }

    /// Lifts every ban whose `until` is at or before `now`.
    pub fn expire(&mut self, now: DateTime<Utc>) -> Outcome {
        let mut outcome = Outcome::default();
        while let Some(&(until, target)) = self.expiry.first() {
            if until > now {
                break;
            }
            self.expiry.pop_first();
            if let Some(record) = self.remove(target) {
                self.counters.expired += 1;
                outcome.changes.push(Change::Unban(entry(target, &record)));
                outcome.events.push(self.lifted(&record, now, "expired"));
            }
        }
        self.retain_changes(&mut outcome);
        outcome
    }

    /// Lifts the ban of `text` (an address or prefix) at an operator's request, with any
    /// aggregated prefix that covers the address.
    pub fn unban(&mut self, text: &str, now: DateTime<Utc>) -> Result<Outcome, RespondError> {
        let net: IpNet = text.parse()?;
        // The ban itself, and for an address the aggregated prefixes that still cover it: the
        // operator wants the address through.
        let targets: Vec<BanTarget> = self
            .active
            .iter()
            .filter(|(it, record)| {
                it.net() == net
                    || (net.is_host() && record.aggregated && it.net().contains(net.addr()))
            })
            .map(|it| *it.0)
            .collect();
        if targets.is_empty() {
            return Err(RespondError::NotBanned(net.to_string()));
        }
        let mut outcome = Outcome::default();
        for target in targets {
            if let Some(record) = self.remove(target) {
                self.counters.unbanned += 1;
                outcome.changes.push(Change::Unban(entry(target, &record)));
                outcome.events.push(self.lifted(&record, now, "lifted by an operator"));
            }
        }
        self.retain_changes(&mut outcome);
        Ok(outcome)
    }

    /// Re-applies every active ban: one `Restored` event per ban and one `Change::Restore` with
    /// all of them (an empty one too, so the actions set themselves up). What ran out by `now`
    /// is expired first.
    pub fn restore(&mut self, now: DateTime<Utc>) -> Outcome {
        let mut outcome = self.expire(now);
        outcome.changes.extend(self.restore_change());
        outcome.events.extend(self.restored_events());
        outcome
    }

    /// The `Change::Restore` of every active ban (none in dry-run), sorted by target.
    pub fn restore_change(&self) -> Option<Change> {
        if !self.enforce {
            return None;
        }
        let mut entries: Vec<Entry> =
            self.active.iter().map(|(target, record)| entry(*target, record)).collect();
        entries.sort_unstable_by_key(|it| it.target);
        Some(Change::Restore(entries))
    }

    /// One `Restored` event per active ban, sorted by address.
    pub fn restored_events(&self) -> Vec<Ban> {
        self.restored_targets().into_iter().filter_map(|it| self.restored_event(it)).collect()
    }

    /// The active targets, sorted: with [`restored_event`](BanManager::restored_event), the
    /// `Restored` events built a few at a time.
    pub fn restored_targets(&self) -> Vec<BanTarget> {
        let mut targets: Vec<BanTarget> = self.active.keys().copied().collect();
        targets.sort_unstable();
        targets
    }

    /// The `Restored` event of `target`, if it is still banned.
    pub fn restored_event(&self, target: BanTarget) -> Option<Ban> {
        let record = self.active.get(&target)?;
        Some(Ban { stage: BanStage::Restored, ..record_event(record, !self.enforce) })
    }

    /// The current state, for persistence.
    pub fn state(&self) -> BanState {
        let mut active: Vec<BanRecord> = self.active.values().cloned().collect();
        active.sort_by_key(|it| it.ip);
        let mut history: Vec<HistoryRecord> = self.history.values().cloned().collect();
        history.sort_by_key(|it| it.ip);
        BanState { version: STATE_VERSION, active, history, skipped: 0 }
    }

    /// Replaces the state with a persisted one. Bans whose address is now protected (the
    /// allow-list changed) are dropped and returned as `Unbanned` events; the others take this
    /// run's `dry_run`, since [`restore`](BanManager::restore) applies them by this run's mode.
    pub fn load_state(&mut self, state: BanState, now: DateTime<Utc>) -> Vec<Ban> {
        self.active.clear();
        self.expiry.clear();
        self.per_prefix.clear();
        self.history.clear();
        self.active.reserve(state.active.len().min(self.max_active));
        self.history.reserve(state.history.len().min(self.max_history));
        let mut dropped = Vec::new();
        for mut record in state.active {
            // Re-applied (or not) by this run's mode.
            record.dry_run = !self.enforce;
            match self.guard.check(record.ip) {
                Ok(target) if self.active.len() < self.max_active => self.insert(target, record),
                Ok(_) => dropped.push(self.lifted(&record, now, "more bans than max_active")),
                Err(err) => {
                    let reason = match err {
                        RespondError::Protected { reason, .. } => {
                            format!("now protected: {reason}")
                        }
                        other => other.to_string(),
                    };
                    dropped.push(self.lifted(&record, now, &reason));
                }
            }
        }
        for record in state.history {
            self.history.insert(record.ip, record);
        }
        self.trim_history();
        dropped
    }

    fn refused(&self, request: &Ban, reason: String) -> Ban {
        Ban {
            stage: BanStage::Refused,
            until: None,
            dry_run: !self.enforce,
            reason: Some(reason),
            ..request.clone()
        }
    }

    fn banned(&self, request: &Ban, record: &BanRecord, reason: Option<String>) -> Ban {
        Ban {
            stage: BanStage::Banned,
            ip: record.ip.to_string(),
            until: record.until,
            bantime_seconds: record.bantime_seconds,
            previous_bans: record.previous_bans,
            failures: record.failures,
            dry_run: !self.enforce,
            reason,
            ..request.clone()
        }
    }

    fn lifted(&self, record: &BanRecord, now: DateTime<Utc>, reason: &str) -> Ban {
        Ban {
            stage: BanStage::Unbanned,
            at: now,
            reason: Some(reason.to_owned()),
            ..record_event(record, !self.enforce)
        }
    }

    /// Bans the aggregation prefix of `net` when enough of its addresses are banned.
    fn aggregate(
        &mut self,
        net: IpNet,
        member_until: Option<DateTime<Utc>>,
        request: &Ban,
    ) -> Option<(BanTarget, BanRecord)> {
        if self.aggregate_threshold == 0 || !net.is_host() {
            return None;
        }
        let prefix = self.prefix_of(net);
        if self.per_prefix.get(&prefix).copied().unwrap_or(0) < self.aggregate_threshold {
            return None;
        }
        // A prefix holding a protected address is never banned; its addresses stay banned alone.
        let target = self.guard.check(prefix).ok()?;
        if let Some(existing) = self.active.get(&target).cloned() {
            // Already banned: only a later end of the new member extends it (no scan).
            let until = later(existing.until, member_until);
            if until == existing.until {
                return None;
            }
            let record = BanRecord { until, ..existing };
            self.replace(target, record.clone());
            return Some((target, record));
        }
        let members: Vec<&BanRecord> = self
            .active
            .iter()
            .filter(|(it, record)| {
                it.net().is_host() && prefix.contains(it.net().addr()) && !record.aggregated
            })
            .map(|it| it.1)
            .collect();
        let until = members.iter().map(|it| it.until).reduce(later).flatten();
        let failures = members.iter().map(|it| it.failures).sum();
        let bantime =
            members.iter().map(|it| it.bantime_seconds).max().unwrap_or(self.default_bantime);
        if self.active.len() >= self.max_active {
            return None;
        }
        let record = BanRecord {
            ip: prefix,
            jail: Arc::from(request.jail.as_str()),
            at: request.at,
            until,
            failures,
            dry_run: !self.enforce,
            bantime_seconds: bantime,
            previous_bans: self.history.get(&prefix).map_or(0, |it| it.bans),
            aggregated: true,
        };
        self.insert(target, record.clone());
        self.remember(prefix, request.at);
        self.counters.aggregated += 1;
        Some((target, record))
    }

    fn prefix_of(&self, net: IpNet) -> IpNet {
        IpNet::new(net.addr(), if net.is_ipv4() { self.v4_prefix } else { self.v6_prefix })
    }

    fn insert(&mut self, target: BanTarget, record: BanRecord) {
        if let Some(until) = record.until {
            self.expiry.insert((until, target));
        }
        if self.aggregate_threshold > 0 && target.net().is_host() {
            *self.per_prefix.entry(self.prefix_of(target.net())).or_default() += 1;
        }
        if let Some(old) = self.active.insert(target, record)
            && let Some(until) = old.until
        {
            self.expiry.remove(&(until, target));
        }
    }

    fn replace(&mut self, target: BanTarget, record: BanRecord) {
        self.remove(target);
        self.insert(target, record);
    }

    fn remove(&mut self, target: BanTarget) -> Option<BanRecord> {
        let record = self.active.remove(&target)?;
        if let Some(until) = record.until {
            self.expiry.remove(&(until, target));
        }
        if self.aggregate_threshold > 0 && target.net().is_host() {
            let prefix = self.prefix_of(target.net());
            if let Some(count) = self.per_prefix.get_mut(&prefix) {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    self.per_prefix.remove(&prefix);
                }
            }
        }
        Some(record)
    }

    fn remember(&mut self, net: IpNet, at: DateTime<Utc>) {
        let record =
            self.history.entry(net).or_insert(HistoryRecord { ip: net, bans: 0, last: at });
        record.bans = record.bans.saturating_add(1);
        record.last = record.last.max(at);
        self.trim_history();
    }

    /// Forgets the least recently banned tenth once the history is over its bound, so the
    /// cost of trimming is paid rarely.
    fn trim_history(&mut self) {
        if self.history.len() <= self.max_history {
            return;
        }
        let keep = self.max_history - self.max_history / 10;
        let mut by_age: Vec<(DateTime<Utc>, IpNet)> =
            self.history.values().map(|it| (it.last, it.ip)).collect();
        by_age.sort_unstable();
        let drop = self.history.len() - keep;
        for (_, ip) in by_age.into_iter().take(drop) {
            self.history.remove(&ip);
            self.counters.history_evicted += 1;
        }
    }

    /// In dry-run nothing reaches an action.
    fn retain_changes(&self, outcome: &mut Outcome) {
        if !self.enforce {
            outcome.changes.clear();
        }
    }
}

fn until_of(start: DateTime<Utc>, bantime: i64) -> Option<DateTime<Utc>> {
    if bantime < 0 {
        return None;
    }
    let delta = TimeDelta::try_seconds(bantime.max(1)).unwrap_or(TimeDelta::MAX);
    Some(start.checked_add_signed(delta).unwrap_or(DateTime::<Utc>::MAX_UTC))
}

/// The later of two ends, `None` (permanent) being latest.
fn later(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        _ => None,
    }
}

fn entry(target: BanTarget, record: &BanRecord) -> Entry {
    Entry {
        target,
        until: record.until,
        jail: record.jail.clone(),
        failures: record.failures,
        bantime_seconds: record.bantime_seconds,
    }
}

fn record_event(record: &BanRecord, dry_run: bool) -> Ban {
    Ban {
        stage: BanStage::Banned,
        ip: record.ip.to_string(),
        jail: record.jail.to_string(),
        at: record.at,
        until: record.until,
        failures: record.failures,
        bantime_seconds: record.bantime_seconds,
        previous_bans: record.previous_bans,
        dry_run,
        reason: None,
        evidence: Evidence::default(),
    }
}

fn aggregate_evidence(record: &BanRecord, last: IpNet) -> Evidence {
    Evidence {
        rule: format!("aggregation: several addresses of {} banned (latest {last})", record.ip),
        count: record.failures,
        ..Evidence::default()
    }
}
