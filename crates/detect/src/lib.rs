//! Vigil's built-in detectors: stateful units that turn events into findings and statistics.
//!
//! A detector (seed 004's "module") implements [`vigil_core::Detector`]. The runtime feeds it,
//! one at a time, the events that match the filter it was registered with; the detector updates
//! its in-memory state and dispatches [findings](vigil_core::event::Finding) and audit records
//! through the [`DetectorContext`](vigil_core::DetectorContext) it is handed. Detectors do no I/O:
//! their statistics are read with [`statistics`](vigil_core::Detector::statistics) and their
//! state is saved and restored by the runtime, which keeps them fast and easy to test.
//!
//! Each detector lives in its own folder with a serde configuration (`<Name>Config`, whose
//! `build` returns the detector, or `None` when it is disabled) and the detector type
//! (`<Name>Detector`, whose `filter` is the filter to register it with).
//!
//! The detectors: [`JailsDetector`] (every `[jails.<name>]` jail, fail2ban semantics, `ban`
//! requests with evidence), [`SshdDetector`] (logins, `SSHLoginTriesExceeded`, daily
//! statistics), [`PortScanDetector`], [`IpSweepDetector`], [`RecurringErrorsDetector`],
//! [`ResourceExhaustionDetector`], and [`ReportDetector`]. The line-reading ones also take a
//! borrowed [`Observation`] ([`LineDetector`]), which [`Replay`] feeds straight from the parser
//! for `vigil replay`; every finding carries its evidence (rule, window, count, lines).
//!
//! [`ReportDetector`] dispatches a notice for every record and counts what it sees:
//!
//! ```
//! use vigil_core::{Detector, DetectorContext};
//! use vigil_core::event::{Event, LogEvent, Payload};
//! use vigil_detect::ReportConfig;
//!
//! let mut report = ReportConfig::default().build().expect("report is enabled by default");
//! let mut ctx = DetectorContext::new("web-1", report.name());
//! let line = LogEvent::new("sshd", "Accepted publickey for deploy from 192.0.2.4 port 50022");
//! report.handle(&Event::new("web-1", "auth_log", Payload::Log(line)), &mut ctx)?;
//!
//! let notices = ctx.take();
//! assert_eq!(notices.len(), 1);
//! assert_eq!(report.statistics()["records"], 1);
//! # Ok::<(), vigil_core::ComponentError>(())
//! ```

#![deny(missing_docs)]

mod bounded;
mod duration_text;
mod error;
mod ip_sweep;
pub mod jail;
mod line_detector;
pub mod net;
mod observation;
mod port_scan;
mod recurring_errors;
mod replay;
mod report;
mod resource_exhaustion;
mod sshd;
mod window;

pub use error::Error;
pub use ip_sweep::{IpSweepConfig, IpSweepDetector};
pub use jail::{Bantime, JailConfig, JailSet, JailsConfig, JailsDetector};
pub use line_detector::LineDetector;
pub use observation::{Observation, action_named};
pub use port_scan::{PortScanConfig, PortScanDetector};
pub use recurring_errors::{RecurringErrorsConfig, RecurringErrorsDetector, signature};
pub use replay::{MAX_FINDINGS_KEPT, Replay, ReplaySummary};
pub use report::{ReportConfig, ReportDetector};
pub use resource_exhaustion::{ResourceExhaustionConfig, ResourceExhaustionDetector};
pub use sshd::{DayStats, SshdConfig, SshdDetector};
