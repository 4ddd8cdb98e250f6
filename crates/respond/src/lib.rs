//! Vigil's response: the ban manager and the actions that enforce its bans (issue 7, SPEC §5).
//!
//! - [`BanManager`] — pure decision logic with an injected clock: `Requested` bans become
//!   `Banned` (with `until`) or `Refused` (with a reason); expiry, operator unbans, restore on
//!   start, extension of a ban requested again, per-address history for recidivists, optional
//!   prefix aggregation (/24, /64). `vigil replay` calls it directly in dry-run.
//! - [`Guard`] and [`BanTarget`] — the only way to an action: loopback, special ranges, the
//!   host's own addresses and the allow-list are refused by construction.
//! - Actions ([`Action`]): [`NftablesAction`] (one table, typed sets with per-element timeouts,
//!   one `nft -f -` batch), [`IpsetAction`] (`ipset restore`), [`ExecAction`] (an argument
//!   template; never a shell).
//! - [`BanDetector`] — the manager as a pipeline detector, with an action [`Worker`] thread
//!   behind a bounded queue, and the [`Control`] files `vigil bans`/`vigil unban` use.
//!
//! Dry-run is the default: nothing reaches an action until `[bans] enforce = true`.
//!
//! Deciding without any I/O, as `vigil replay` does:
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use vigil_respond::{BanManager, BansConfig};
//! use vigil_core::event::{Ban, BanStage};
//!
//! let config = BansConfig { detect_own_addresses: false, ..BansConfig::default() };
//! let mut bans = BanManager::new(&config, ["192.0.2.1".parse().unwrap()]).unwrap();
//! let at = Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap();
//! let request = Ban { bantime_seconds: 600, ..Ban::request("203.0.113.9", "sshd", at) };
//! let decided = &bans.decide(&request, at).events[0];
//! assert_eq!((decided.stage, decided.dry_run), (BanStage::Banned, true));
//! assert_eq!(decided.until, Some(at + chrono::TimeDelta::seconds(600)));
//! let refused = &bans.decide(&Ban::request("192.0.2.1", "sshd", at), at).events[0];
//! assert_eq!(refused.reason.as_deref(), Some("the host's own address"));
//! let lifted = bans.expire(at + chrono::TimeDelta::seconds(600)).events;
//! assert_eq!(lifted[0].stage, BanStage::Unbanned);
//! ```

mod action;
mod config;
mod control;
mod detector;
mod error;
mod manager;
mod target;
mod worker;

pub use action::{Action, ExecAction, IpsetAction, NftablesAction, build_actions};
pub use config::{
    AggregateConfig, BansConfig, ExecConfig, IpsetConfig, NftablesConfig, PLACEHOLDERS,
};
pub use control::{AgentLock, Control, DETECTOR_NAME, state_file, write_atomically};
pub use detector::BanDetector;
pub use error::RespondError;
pub use manager::{
    BanManager, BanRecord, BanState, Change, Counters, Entry, HistoryRecord, Outcome, STATE_VERSION,
};
pub use target::{BanTarget, Guard, IpNet, host_addresses, normalise};
pub use worker::{Worker, WorkerStats};
