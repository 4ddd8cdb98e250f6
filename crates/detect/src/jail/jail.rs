//! One jail's state machine: failures of each address in a sliding window, and the ban history
//! of each address for `bantime.increment`.
//!
//! # Semantics (fail2ban's documented jail behaviour)
//!
//! - A failure at time `t` counts in the window `[t - findtime, t]` (both ends included); when
//!   an address has `maxretry` failures in it, the jail asks for a ban at `t`.
//! - After asking, the address's failures are forgotten (fail2ban hands the ticket to the
//!   actions and drops it from the fail list), so counting starts again from zero.
//! - While the address is still banned (`t < until` of the jail's last request), a new
//!   threshold crossing asks for nothing (fail2ban's "already banned") and is counted.
//! - The n-th ban of an address lasts `bantime` for n = 1 and, with `bantime.increment`,
//!   `max(bantime, bantime × factor × 2^(n-1))` (the exponent capped at 20), at most
//!   `maxtime`; with `bantime.multipliers`, `bantime × factor × multipliers[n-1]` (the last
//!   multiplier for every later ban), at most `maxtime` (fail2ban 1.0.2's `setBanTimeExtra`
//!   and `incrBanTime`: the formula only applies from the second ban).
//! - A negative `bantime` (`-1`) bans for good: the request asks for `bantime_seconds = -1`,
//!   the address stays "already banned" and increments never apply.
//! - Addresses in `ignoreip` are neither counted nor banned.
//!
//! fail2ban's implementation approximates the window with a rate estimate once a ticket is
//! older than `findtime`; Vigil keeps the last `maxretry` failure times, which is the exact
//! sliding window the documentation describes.
//!
//! Memory: per address at most `maxretry` failures (with their lines, each cut to
//! [`MAX_LINE_CHARS`]); at most `max_tracked` addresses with failures and `max_remembered` with
//! a ban history; beyond those the stalest are evicted and counted.

use std::{
    collections::{HashMap, VecDeque},
    net::IpAddr,
};

use serde::{Deserialize, Serialize};
use vigil_event::{Ban, Evidence, Value};

use super::{JailConfig, filter::JailFilter};
use crate::{
    Observation, bounded::truncate_chars, duration_text::millis, net::IpList, observation::utc,
};

/// Longest evidence line kept, in characters.
pub const MAX_LINE_CHARS: usize = 1024;

/// Closed windows are dropped every this many failures.
const PURGE_EVERY: u64 = 4096;

/// One counted failure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Failure {
    at_ms: i64,
    line: String,
}

/// An address's ban history.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct BanRecord {
    /// Bans asked for so far.
    count: u32,
    /// When the last one started.
    at_ms: i64,
    /// When the last one ends.
    until_ms: i64,
}

/// Counters reported by [`Jail::statistics`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct JailStats {
    /// Failures counted.
    pub failures: u64,
    /// Failures of addresses in `ignoreip`.
    pub ignored: u64,
    /// Bans asked for.
    pub bans: u64,
    /// Threshold crossings of addresses still banned.
    pub already_banned: u64,
    /// Addresses whose failures were forgotten to keep within `max_tracked`.
    pub evicted_failures: u64,
    /// Addresses whose ban history was forgotten to keep within `max_remembered`.
    pub evicted_bans: u64,
}

/// A jail: see the module docs.
#[derive(Debug)]
pub struct Jail {
    name: String,
    filter: JailFilter,
    ignore: IpList,
    maxretry: usize,
    findtime_ms: i64,
    bantime_ms: i64,
    increment: bool,
    factor: f64,
    maxtime_ms: i64,
    multipliers: Vec<u32>,
    max_tracked: usize,
    max_remembered: usize,
    rule: String,
    failures: HashMap<IpAddr, VecDeque<Failure>>,
    bans: HashMap<IpAddr, BanRecord>,
    stats: JailStats,
}

/// The saved state of one jail.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
struct SavedJail {
    failures: Vec<(IpAddr, Vec<Failure>)>,
    bans: Vec<(IpAddr, BanRecord)>,
    stats: JailStats,
}

impl Jail {
    pub(super) fn new(name: &str, config: &JailConfig, filter: JailFilter, ignore: IpList) -> Jail {
        let maxretry = config.maxretry.max(1) as usize;
        let rule = format!(
            "jail {name}: {} failures within findtime {}s ({})",
            maxretry,
            config.findtime.as_secs(),
            filter.describe()
        );
        Jail {
            name: name.to_owned(),
            filter,
            ignore,
            maxretry,
            findtime_ms: millis(config.findtime),
            bantime_ms: config.bantime.duration().map_or(-1, millis),
            increment: config.bantime_increment.enabled,
            factor: config.bantime_increment.factor,
            maxtime_ms: millis(config.bantime_increment.maxtime),
            multipliers: config.bantime_increment.multipliers.iter().map(|it| it.get()).collect(),
            max_tracked: config.max_tracked.max(1),
            max_remembered: config.bantime_increment.max_remembered.max(1),
            rule,
            failures: HashMap::new(),
            bans: HashMap::new(),
            stats: JailStats::default(),
        }
    }

    /// The jail's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The failure matcher.
    pub fn filter(&self) -> &JailFilter {
        &self.filter
    }

    /// The counters.
    pub fn stats(&self) -> &JailStats {
        &self.stats
    }

    /// Addresses with failures in memory.
    pub fn tracked(&self) -> usize {
        self.failures.len()
    }

    /// Reads one line; a ban request is pushed to `out` when the line crosses the threshold.
    pub fn observe(&mut self, obs: &Observation<'_>, out: &mut Vec<Ban>) {
        let Some(ip) = self.filter.failure(obs) else { return };
        if self.ignore.contains(ip) {
            self.stats.ignored += 1;
            return;
        }
        self.stats.failures += 1;
        let at = obs.at_ms;
        if self.stats.failures.is_multiple_of(PURGE_EVERY) {
            // Windows that closed hold nothing that can count again.
            let since = at.saturating_sub(self.findtime_ms);
            self.failures.retain(|_, w| w.back().is_some_and(|it| it.at_ms >= since));
        }
        if !self.failures.contains_key(&ip) && self.failures.len() >= self.max_tracked {
            self.make_room(at);
        }
        let window = self.failures.entry(ip).or_default();
        let line = truncate_chars(obs.line, MAX_LINE_CHARS);
        if window.len() >= self.maxretry
            && let Some(mut oldest) = window.pop_front()
        {
            // A full window: the oldest failure's buffer takes the new line (no allocation).
            oldest.line.clear();
            oldest.line.push_str(line);
            window.push_back(Failure { at_ms: at, line: oldest.line });
        } else {
            window.push_back(Failure { at_ms: at, line: line.to_owned() });
        }
        while window.len() > self.maxretry {
            window.pop_front();
        }
        let since = at.saturating_sub(self.findtime_ms);
        while window.front().is_some_and(|it| it.at_ms < since) {
            window.pop_front();
        }
        if window.len() < self.maxretry {
            return;
        }
        let Some(counted) = self.failures.remove(&ip) else { return };
        if let Some(record) = self.bans.get(&ip)
            && at < record.until_ms
        {
            self.stats.already_banned += 1;
            return;
        }
        out.push(self.request(ip, at, counted));
    }

    /// Records a ban of `ip` at `at` and builds its request.
    fn request(&mut self, ip: IpAddr, at: i64, counted: VecDeque<Failure>) -> Ban {
        if !self.bans.contains_key(&ip) && self.bans.len() >= self.max_remembered {
            self.forget_bans(at);
        }
        let previous = self.bans.get(&ip).map_or(0, |it| it.count);
        let bantime_ms = self.bantime_ms_of(previous);
        let until_ms = if bantime_ms < 0 { i64::MAX } else { at.saturating_add(bantime_ms) };
        let record = BanRecord { count: previous.saturating_add(1), at_ms: at, until_ms };
        self.bans.insert(ip, record);
        self.stats.bans += 1;
        let mut ban = Ban::request(ip.to_string(), self.name.clone(), utc(at));
        ban.failures = counted.len() as u64;
        ban.bantime_seconds = if bantime_ms < 0 { -1 } else { bantime_ms / 1000 };
        ban.previous_bans = previous;
        ban.evidence = Evidence {
            rule: self.rule.clone(),
            count: counted.len() as u64,
            window_seconds: (self.findtime_ms / 1000) as u64,
            first_seen: counted.front().map(|it| utc(it.at_ms)),
            last_seen: counted.back().map(|it| utc(it.at_ms)),
            lines: counted.into_iter().map(|it| it.line).collect(),
            ..Evidence::default()
        };
        ban
    }

    /// The length of the ban of an address banned `previous` times before, in milliseconds
    /// (negative: permanent). See the module docs for fail2ban's formula.
    fn bantime_ms_of(&self, previous: u32) -> i64 {
        if !(self.increment && previous > 0 && self.bantime_ms > 0) {
            return self.bantime_ms;
        }
        let base = self.bantime_ms as f64;
        let scaled = match self.multipliers.as_slice() {
            [] => (base * self.factor * f64::from(1u32 << previous.min(20))).max(base),
            list => {
                let index = (previous as usize).min(list.len() - 1);
                base * self.factor * f64::from(list[index])
            }
        };
        scaled.min(self.maxtime_ms as f64) as i64
    }

    /// Drops windows that closed before `now`; if that is not enough, the tenth of the
    /// addresses whose last failure is oldest.
    fn make_room(&mut self, now: i64) {
        let since = now.saturating_sub(self.findtime_ms);
        self.failures.retain(|_, w| w.back().is_some_and(|it| it.at_ms >= since));
        if self.failures.len() < self.max_tracked {
            return;
        }
        let mut last: Vec<i64> =
            self.failures.values().map(|w| w.back().map_or(i64::MIN, |it| it.at_ms)).collect();
        let k = (last.len() / 10).max(1) - 1;
        let (_, cut, _) = last.select_nth_unstable(k);
        let cut = *cut;
        let before = self.failures.len();
        self.failures.retain(|_, w| w.back().is_some_and(|it| it.at_ms > cut));
        self.stats.evicted_failures += (before - self.failures.len()) as u64;
    }

    /// Forgets the ban history of the tenth of the addresses banned longest ago (expired bans
    /// first, when increments are off).
    fn forget_bans(&mut self, now: i64) {
        if !self.increment {
            self.bans.retain(|_, r| r.until_ms > now);
            if self.bans.len() < self.max_remembered {
                return;
            }
        }
        let mut at: Vec<i64> = self.bans.values().map(|r| r.at_ms).collect();
        let k = (at.len() / 10).max(1) - 1;
        let (_, cut, _) = at.select_nth_unstable(k);
        let cut = *cut;
        let before = self.bans.len();
        self.bans.retain(|_, r| r.at_ms > cut);
        self.stats.evicted_bans += (before - self.bans.len()) as u64;
    }

    /// The jail's statistics.
    pub fn statistics(&self) -> Value {
        let mut value = serde_json::to_value(&self.stats).unwrap_or_default();
        if let Value::Object(map) = &mut value {
            map.insert("tracked".into(), self.failures.len().into());
            map.insert("remembered_bans".into(), self.bans.len().into());
            map.insert("rule".into(), self.rule.clone().into());
        }
        value
    }

    /// The state to persist.
    pub(super) fn save(&self) -> Value {
        let saved = SavedJail {
            failures: self
                .failures
                .iter()
                .map(|(ip, w)| (*ip, w.iter().cloned().collect()))
                .collect(),
            bans: self.bans.iter().map(|(ip, r)| (*ip, *r)).collect(),
            stats: self.stats.clone(),
        };
        serde_json::to_value(saved).unwrap_or(Value::Null)
    }

    /// Restores saved state, within this configuration's bounds.
    pub(super) fn restore(&mut self, state: Value) -> Result<(), String> {
        let saved: SavedJail = serde_json::from_value(state).map_err(|err| err.to_string())?;
        self.failures.clear();
        for (ip, mut failures) in saved.failures.into_iter().take(self.max_tracked) {
            let keep = failures.len().saturating_sub(self.maxretry.saturating_sub(1));
            failures.drain(..keep.min(failures.len()));
            for failure in &mut failures {
                failure.line = truncate_chars(&failure.line, MAX_LINE_CHARS).to_owned();
            }
            if !failures.is_empty() {
                self.failures.insert(crate::net::canonical(ip), failures.into());
            }
        }
        self.bans = saved.bans.into_iter().take(self.max_remembered).collect();
        self.stats = saved.stats;
        Ok(())
    }
}
