//! The ipset action: two `hash:net` sets with per-element timeouts, changed through one
//! `ipset restore` per batch.
//!
//! A restore fills fresh sets and swaps them in (`swap` is atomic), so the host is never
//! without its bans; a ban uses `add … -exist` (which also renews the timeout) and an unban
//! `del … -exist` (no error if the kernel already expired it). ipset's longest timeout is
//! 2,147,483 s; longer bans are cut to it and renewed on the next restore.

use std::{fmt::Write as _, time::Duration};

use chrono::{DateTime, Utc};

use super::{Action, command_line, run};
use crate::{Change, Entry, IpsetConfig, RespondError};

/// ipset's largest timeout, in seconds.
const MAX_TIMEOUT: u64 = 2_147_483;
/// Elements per set.
const MAX_ELEMENTS: usize = 2_000_000;

/// ipset through `ipset restore`.
#[derive(Debug, Clone)]
pub struct IpsetAction {
    argv: Vec<std::ffi::OsString>,
    set_v4: String,
    set_v6: String,
}

impl IpsetAction {
    /// The action `config` describes (validated by [`crate::BansConfig::validate`]).
    pub fn new(config: &IpsetConfig) -> IpsetAction {
        let mut argv = command_line(&config.ipset, config.netns.as_deref());
        argv.push("restore".into());
        IpsetAction { argv, set_v4: config.set_v4.clone(), set_v6: config.set_v6.clone() }
    }

    /// The `ipset restore` script for `changes` at `now`.
    pub fn script(&self, changes: &[Change], now: DateTime<Utc>) -> String {
        let mut out = String::new();
        let start = changes.iter().rposition(|it| matches!(it, Change::Restore(_))).unwrap_or(0);
        for change in &changes[start..] {
            match change {
                Change::Restore(entries) => self.restore(&mut out, entries, now),
                Change::Ban(entry) => {
                    let set = self.set_of(entry);
                    let _ =
                        writeln!(out, "add {set} {}{} -exist", entry.target, timeout(entry, now));
                }
                Change::Unban(entry) => {
                    let _ = writeln!(out, "del {} {} -exist", self.set_of(entry), entry.target);
                }
            }
        }
        out
    }

    fn set_of(&self, entry: &Entry) -> &str {
        if entry.target.net().is_ipv4() { &self.set_v4 } else { &self.set_v6 }
    }

    fn restore(&self, out: &mut String, entries: &[Entry], now: DateTime<Utc>) {
        for (set, family) in [(&self.set_v4, "inet"), (&self.set_v6, "inet6")] {
            let create = format!("hash:net family {family} timeout 0 maxelem {MAX_ELEMENTS}");
            let _ = writeln!(out, "create {set} {create} -exist");
            let _ = writeln!(out, "create {set}-new {create} -exist");
            let _ = writeln!(out, "flush {set}-new");
            for entry in entries.iter().filter(|it| self.set_of(it) == set.as_str()) {
                let _ =
                    writeln!(out, "add {set}-new {}{} -exist", entry.target, timeout(entry, now));
            }
            let _ = writeln!(out, "swap {set}-new {set}");
            let _ = writeln!(out, "destroy {set}-new");
        }
    }
}

/// ` timeout N` (0: permanent).
fn timeout(entry: &Entry, now: DateTime<Utc>) -> String {
    let seconds = entry.remaining_seconds(now).map_or(0, |it| it.min(MAX_TIMEOUT));
    format!(" timeout {seconds}")
}

impl Action for IpsetAction {
    fn name(&self) -> &str {
        "ipset"
    }

    fn apply(&mut self, changes: &[Change], now: DateTime<Utc>) -> Result<(), RespondError> {
        let script = self.script(changes, now);
        if script.is_empty() {
            return Ok(());
        }
        run(&self.argv, script.as_bytes(), Duration::from_secs(60))
    }
}
