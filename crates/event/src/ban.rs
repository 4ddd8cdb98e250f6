//! Bans and the evidence behind every decision (SPEC §5, issue "Detection and response").
//!
//! A ban travels through the pipeline as one [`Ban`] payload in several [`BanStage`]s: a jail
//! *requests* it (with its evidence: the rule, the window, the count and the lines), the ban
//! manager *decides* it (validates the address, applies the increment for recidivists, fixes
//! `until`) or *refuses* it (loopback, allow-listed, the host's own address), and later lifts it.
//! Stores keep every stage, which answers "why was this address banned" without a second source.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::Map;

/// What happened to a ban.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BanStage {
    /// A detector (a jail) asks for the ban; `until` is not decided yet.
    Requested,
    /// The ban manager accepted it and fixed `until`; the actions were applied (or would have
    /// been, in dry-run).
    Banned,
    /// The ban manager refused it; `reason` says why (loopback, allow-listed, own address…).
    Refused,
    /// The ban expired or an operator lifted it.
    Unbanned,
    /// A ban persisted by an earlier run, applied again on start.
    Restored,
}

impl BanStage {
    /// The snake_case name used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            BanStage::Requested => "requested",
            BanStage::Banned => "banned",
            BanStage::Refused => "refused",
            BanStage::Unbanned => "unbanned",
            BanStage::Restored => "restored",
        }
    }
}

/// Why a detector concluded what it did: the rule, the window, the count and the lines (or event
/// ids) that crossed the threshold.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Evidence {
    /// The rule that fired, e.g. `jail sshd: maxretry 5 within findtime 600s`.
    pub rule: String,
    /// The counted occurrences.
    pub count: u64,
    /// The window the occurrences were counted in, in seconds (0 when there is none).
    pub window_seconds: u64,
    /// When the first counted occurrence happened.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_seen: Option<DateTime<Utc>>,
    /// When the last counted occurrence happened.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<DateTime<Utc>>,
    /// The raw lines, oldest first (bounded by the detector, usually to the counted ones).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub lines: Vec<String>,
    /// The ids of the counted events, when lines are not the evidence.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub event_ids: Vec<String>,
    /// Anything else the detector wants to keep.
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub data: Map,
}

/// One ban decision or request, for one address or prefix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ban {
    /// The stage this event reports.
    pub stage: BanStage,
    /// The address (`203.0.113.9`, `2001:db8::1`) or prefix (`203.0.113.0/24`) banned.
    pub ip: String,
    /// The jail (or detector) that asked for the ban.
    pub jail: String,
    /// When the ban starts (event time: the line that crossed the threshold).
    pub at: DateTime<Utc>,
    /// When it ends; `None` while only requested, or for a permanent ban.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<DateTime<Utc>>,
    /// The failures counted in the window that led to the ban.
    #[serde(default)]
    pub failures: u64,
    /// The ban duration asked for, in seconds: the jail has already applied its
    /// `bantime_increment` for repeat offenders (0: the ban manager's default; negative:
    /// permanent).
    #[serde(default)]
    pub bantime_seconds: i64,
    /// How many times this address was banned before (for the increment).
    #[serde(default)]
    pub previous_bans: u32,
    /// True when no action was applied because enforcement is off.
    #[serde(default)]
    pub dry_run: bool,
    /// Why it was refused or lifted, when it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The basis of the decision.
    #[serde(default)]
    pub evidence: Evidence,
}

impl Ban {
    /// A ban request from `jail` for `ip` at `at`, with no evidence yet.
    pub fn request(ip: impl Into<String>, jail: impl Into<String>, at: DateTime<Utc>) -> Ban {
        Ban {
            stage: BanStage::Requested,
            ip: ip.into(),
            jail: jail.into(),
            at,
            until: None,
            failures: 0,
            bantime_seconds: 0,
            previous_bans: 0,
            dry_run: true,
            reason: None,
            evidence: Evidence::default(),
        }
    }
}
