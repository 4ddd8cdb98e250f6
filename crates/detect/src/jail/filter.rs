//! What a jail counts as a failure: a built-in action set over the lines vigil-parse already
//! read (the fast path: one parse per line for every jail), or a fail2ban filter file run
//! unchanged through vigil-f2b.
//!
//! # Built-in action sets
//!
//! | `filter` | failures (vigil-parse actions) | fail2ban equivalent |
//! |---|---|---|
//! | `sshd` | `failed_password`, `failed_password_invalid`, `failed_auth` (not `publickey`), `invalid_user`, `max_auth_exceeded`, `user_not_allowed` | `filter.d/sshd.conf`, `mode = normal` |
//! | `sshd-aggressive` | `sshd` + `closed_preauth`, `closed_preauth_invalid`, `disconnected_preauth`, `connection_reset`, `banner_invalid`, `no_identification`, `negotiation_failed` | `mode = aggressive` |
//! | `nginx-http-auth` | `auth_failed` | `nginx-http-auth.conf` |
//! | `nginx-limit-req` | `rate_limited` | `nginx-limit-req.conf` |
//! | `nginx-botsearch` | `not_found` from nginx | `nginx-botsearch.conf` (any path) |
//! | `recidive` | `ban` from fail2ban's own log | `recidive.conf` |
//!
//! Not failures in `sshd` (as in fail2ban's normal mode): `pam_auth_failure` and
//! `received_disconnect` (fail2ban's NOFAIL helpers), `too_many_auth_failures` (fail2ban only
//! knows the older `Disconnecting: Too many authentication failures` wording), `failed_auth`
//! with the `publickey` method (NOFAIL in fail2ban), and everything after authentication.

use std::{fmt, net::IpAddr};

use vigil_f2b::{Clock, Filter, chrono_tz, read_filter, split_options};
use vigil_parse::Action;

use crate::{Error, Observation, net::canonical};

/// The failures of fail2ban's sshd filter in normal mode.
const SSHD: &[Action] = &[
    Action::FailedPassword,
    Action::FailedPasswordInvalid,
    Action::FailedAuth,
    Action::InvalidUser,
    Action::MaxAuthExceeded,
    Action::UserNotAllowed,
];

/// What `mode = aggressive` adds.
const SSHD_AGGRESSIVE_EXTRA: &[Action] = &[
    Action::ClosedPreauth,
    Action::ClosedPreauthInvalid,
    Action::DisconnectedPreauth,
    Action::ConnectionReset,
    Action::BannerInvalid,
    Action::NoIdentification,
    Action::NegotiationFailed,
];

/// The names `filter` accepts.
pub const BUILTIN_FILTERS: &[&str] = &[
    "sshd",
    "sshd-aggressive",
    "nginx-http-auth",
    "nginx-limit-req",
    "nginx-botsearch",
    "recidive",
];

/// A jail's failure matcher.
pub enum JailFilter {
    /// A built-in action set.
    Actions {
        /// The set's name.
        name: String,
        /// `actions[action as usize]`: whether the action is a failure.
        actions: Vec<bool>,
        /// Only lines from sources starting with this (`nginx` for `nginx-botsearch`).
        source_prefix: Option<&'static str>,
    },
    /// A fail2ban filter file.
    File {
        /// The file as configured, options included.
        spec: String,
        /// The loaded matcher (it keeps multi-line state, so it is per jail).
        filter: Box<Filter>,
    },
}

impl fmt::Debug for JailFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

impl JailFilter {
    /// The built-in action set `name` (see the module docs).
    pub fn builtin(name: &str) -> Result<JailFilter, Error> {
        let set = |actions: &[&[Action]]| {
            let mut on = vec![false; Action::ALL.len()];
            for action in actions.iter().flat_map(|it| it.iter()) {
                on[*action as usize] = true;
            }
            on
        };
        let (actions, source_prefix) = match name {
            "sshd" | "sshd[mode=normal]" => (set(&[SSHD]), None),
            "sshd-aggressive" | "sshd[mode=aggressive]" => {
                (set(&[SSHD, SSHD_AGGRESSIVE_EXTRA]), None)
            }
            "nginx-http-auth" => (set(&[&[Action::AuthFailed]]), Some("nginx")),
            "nginx-limit-req" => (set(&[&[Action::RateLimited]]), Some("nginx")),
            "nginx-botsearch" => (set(&[&[Action::NotFound]]), Some("nginx")),
            "recidive" => (set(&[&[Action::Ban]]), Some("fail2ban")),
            _ => {
                return Err(Error::Config(format!(
                    "unknown filter {name:?}; built-in filters: {}; or set filter_file",
                    BUILTIN_FILTERS.join(", ")
                )));
            }
        };
        Ok(JailFilter::Actions { name: name.to_owned(), actions, source_prefix })
    }

    /// A fail2ban filter file, `path[opt=value, …]`.
    pub fn file(spec: &str) -> Result<JailFilter, Error> {
        let (path, opts) = split_options(spec).map_err(Error::Config)?;
        let def = read_filter(std::path::Path::new(&path), &opts)?;
        let year = chrono::Datelike::year(&chrono::Utc::now());
        let filter = Filter::new(&def, year);
        if filter.failregex_count() == 0 {
            return Err(Error::Config(format!("{path}: no usable failregex")));
        }
        Ok(JailFilter::File { spec: spec.to_owned(), filter: Box::new(filter) })
    }

    /// Whether the filter needs every line (a filter file) rather than only lines whose action
    /// it lists.
    pub fn needs_every_line(&self) -> bool {
        matches!(self, JailFilter::File { .. })
    }

    /// Whether `action` can be a failure for this filter.
    pub fn counts_action(&self, action: Action) -> bool {
        match self {
            JailFilter::Actions { actions, .. } => actions[action as usize],
            JailFilter::File { .. } => true,
        }
    }

    /// The address that failed on this line, if the line is a failure.
    pub fn failure(&mut self, obs: &Observation<'_>) -> Option<IpAddr> {
        match self {
            JailFilter::Actions { actions, source_prefix, .. } => {
                let action = obs.action?;
                if !actions[action as usize] {
                    return None;
                }
                if action == Action::FailedAuth && obs.method == Some("publickey") {
                    return None;
                }
                if let Some(prefix) = source_prefix
                    && !obs.source.starts_with(*prefix)
                {
                    return None;
                }
                obs.ip
            }
            JailFilter::File { filter, .. } => {
                let clock = Clock {
                    now: obs.at_ms as f64 / 1000.0,
                    zone: chrono_tz::UTC,
                    real_year: chrono::Datelike::year(&obs.at()),
                };
                let result = filter.process_line(obs.line, &clock);
                if !result.matched {
                    return None;
                }
                // A failure ID that is not an address (a host name, a user) is never banned.
                result.host.and_then(|it| it.trim().parse::<IpAddr>().ok()).map(canonical)
            }
        }
    }

    /// How the filter is shown in evidence and statistics.
    pub fn describe(&self) -> String {
        match self {
            JailFilter::Actions { name, .. } => format!("filter {name}"),
            JailFilter::File { spec, .. } => format!("filter_file {spec}"),
        }
    }
}
