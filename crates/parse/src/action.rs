//! The closed vocabularies of parsed lines: what happened ([`Action`]) and how loud ([`Level`]).
//!
//! Actions are an enum rather than strings so that the hot loop can count them in an array and
//! compare them without touching memory; their names are the contract (`vigil parse` output,
//! detector filters) and follow the truth format of `shared/data/gen_authlog.py`.

macro_rules! actions {
    ($($(#[$doc:meta])* $variant:ident => $name:literal,)*) => {
        /// What a log line reports, as a snake_case name (see [`Action::as_str`]).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum Action {
            $($(#[$doc])* $variant,)*
        }

        impl Action {
            /// Every action, in declaration order (`action as usize` indexes this array).
            pub const ALL: &'static [Action] = &[$(Action::$variant,)*];

            /// The action's name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Action::$variant => $name,)*
                }
            }
        }
    };
}

actions! {
    // sshd.
    /// `Failed password for USER from IP port P ssh2`.
    FailedPassword => "failed_password",
    /// `Failed password for invalid user USER from IP port P ssh2`.
    FailedPasswordInvalid => "failed_password_invalid",
    /// `Failed publickey|keyboard-interactive/pam|… for [invalid user] USER from IP port P`.
    FailedAuth => "failed_auth",
    /// `Invalid user USER from IP port P`.
    InvalidUser => "invalid_user",
    /// `Accepted password|publickey|… for USER from IP port P ssh2`.
    Accepted => "accepted",
    /// `pam_unix(sshd:auth): authentication failure; … rhost=IP [user=USER]`.
    PamAuthFailure => "pam_auth_failure",
    /// `error: maximum authentication attempts exceeded for …`.
    MaxAuthExceeded => "max_auth_exceeded",
    /// `Disconnecting authenticating|invalid user USER IP port P: Too many authentication failures`.
    TooManyAuthFailures => "too_many_auth_failures",
    /// `Connection closed by authenticating user USER IP port P [preauth]` (or without a user).
    ClosedPreauth => "closed_preauth",
    /// `Connection closed by invalid user USER IP port P [preauth]`.
    ClosedPreauthInvalid => "closed_preauth_invalid",
    /// `Connection closed by IP port P` after authentication.
    ConnectionClosed => "connection_closed",
    /// `Disconnected from authenticating|invalid user USER IP port P [preauth]`.
    DisconnectedPreauth => "disconnected_preauth",
    /// `Received disconnect from IP port P:11: …`.
    ReceivedDisconnect => "received_disconnect",
    /// `Disconnected from user USER IP port P`.
    DisconnectedUser => "disconnected_user",
    /// `pam_unix(sshd:session): session opened for user USER…`.
    SessionOpened => "session_opened",
    /// `pam_unix(sshd:session): session closed for user USER`.
    SessionClosed => "session_closed",
    /// `Connection reset by IP port P [preauth]`.
    ConnectionReset => "connection_reset",
    /// `banner exchange: Connection from IP port P: invalid format`.
    BannerInvalid => "banner_invalid",
    /// `Did not receive identification string from IP port P`.
    NoIdentification => "no_identification",
    /// `Unable to negotiate with IP port P: no matching …`.
    NegotiationFailed => "negotiation_failed",
    /// `User USER from IP not allowed because …`.
    UserNotAllowed => "user_not_allowed",
    // Kernel firewall.
    /// `[UFW BLOCK]` or an iptables `LOG` prefix naming a drop, block or reject.
    FwBlock => "fw_block",
    /// `[UFW ALLOW]`.
    FwAllow => "fw_allow",
    /// `[UFW AUDIT]`.
    FwAudit => "fw_audit",
    /// `[UFW LIMIT BLOCK]`.
    FwLimit => "fw_limit",
    /// Any other iptables / nftables `LOG` line.
    FwLog => "fw_log",
    // fail2ban's own log.
    /// `[jail] Found IP`.
    Found => "found",
    /// `[jail] Ban IP`.
    Ban => "ban",
    /// `[jail] Unban IP`.
    Unban => "unban",
    /// `[jail] Restore Ban IP`.
    RestoreBan => "restore_ban",
    /// `[jail] Ignore IP by …`.
    Ignore => "ignore",
    // Web servers and frameworks.
    /// One HTTP request (access logs).
    HttpRequest => "http_request",
    /// HTTP basic authentication failed (nginx `user "x" was not found`, `password mismatch`).
    AuthFailed => "auth_failed",
    /// A request denied by an access rule (nginx `access forbidden by rule`, Django 403).
    AccessForbidden => "access_forbidden",
    /// A request rejected by a rate limit (nginx `limiting requests`).
    RateLimited => "rate_limited",
    /// A request for something that does not exist (nginx `open() … failed (2: …)`, Django 404).
    NotFound => "not_found",
    /// An upstream or application failure (nginx upstream errors, Django 500).
    ServerError => "server_error",
    /// Django `Invalid HTTP_HOST header`.
    DisallowedHost => "disallowed_host",
    /// Django `Forbidden (CSRF …)`.
    CsrfFailure => "csrf_failure",
    /// Django `Bad Request` (400).
    BadRequest => "bad_request",
}

/// A normalised level keyword (syslog severities plus the usual application spellings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Level {
    /// `emerg`, `emergency`, `panic`.
    Emergency,
    /// `alert`.
    Alert,
    /// `crit`, `critical`, `fatal`.
    Critical,
    /// `err`, `error`.
    Error,
    /// `warn`, `warning`.
    Warning,
    /// `notice`.
    Notice,
    /// `info`, `information`.
    Info,
    /// `debug`, `trace`.
    Debug,
}

impl Level {
    /// The level's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Emergency => "emergency",
            Level::Alert => "alert",
            Level::Critical => "critical",
            Level::Error => "error",
            Level::Warning => "warning",
            Level::Notice => "notice",
            Level::Info => "info",
            Level::Debug => "debug",
        }
    }

    /// The level of a syslog severity number (0–7).
    pub fn from_severity(severity: u8) -> Option<Level> {
        Some(match severity {
            0 => Level::Emergency,
            1 => Level::Alert,
            2 => Level::Critical,
            3 => Level::Error,
            4 => Level::Warning,
            5 => Level::Notice,
            6 => Level::Info,
            7 => Level::Debug,
            _ => return None,
        })
    }

    /// The level a keyword names, any case (`ERROR`, `warn`, `Info`, `CRIT`, …).
    pub fn from_keyword(word: &str) -> Option<Level> {
        if word.len() > 11 {
            return None;
        }
        let mut buf = [0u8; 11];
        let buf = &mut buf[..word.len()];
        buf.copy_from_slice(word.as_bytes());
        buf.make_ascii_lowercase();
        Some(match &*buf {
            b"emerg" | b"emergency" | b"panic" => Level::Emergency,
            b"alert" => Level::Alert,
            b"crit" | b"critical" | b"fatal" => Level::Critical,
            b"err" | b"error" => Level::Error,
            b"warn" | b"warning" => Level::Warning,
            b"notice" => Level::Notice,
            b"info" | b"information" => Level::Info,
            b"debug" | b"trace" => Level::Debug,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_indexable() {
        let mut names: Vec<_> = Action::ALL.iter().map(|it| it.as_str()).collect();
        for (idx, action) in Action::ALL.iter().enumerate() {
            assert_eq!(*action as usize, idx);
        }
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Action::ALL.len());
    }

    #[test]
    fn level_keywords() {
        assert_eq!(Level::from_keyword("WARNING"), Some(Level::Warning));
        assert_eq!(Level::from_keyword("Err"), Some(Level::Error));
        assert_eq!(Level::from_keyword("informational"), None);
        assert_eq!(Level::from_severity(3), Some(Level::Error));
    }
}
