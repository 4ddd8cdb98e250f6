//! Configuration of a jail, `[jails.<name>]`: fail2ban's jail options in Vigil's spelling.
//!
//! ```toml
//! [jails.sshd]
//! enabled = true
//! filter = "sshd"            # a built-in action set (see the table in the README)
//! # filter_file = "/etc/fail2ban/filter.d/sshd.conf[mode=aggressive]"
//! maxretry = 5
//! findtime = "10m"
//! bantime = "10m"
//! ignoreip = ["127.0.0.1/8", "::1"]
//!
//! [jails.sshd.bantime_increment]
//! enabled = true
//! factor = 1.0
//! maxtime = "1w"
//! # multipliers = [1, 2, 4, 8, 16, 32, 64]   # fail2ban's bantime.multipliers
//!
//! [jails.recidive]
//! bantime = -1               # permanent, as fail2ban's negative bantime
//! ```

use std::{collections::BTreeMap, num::NonZeroU32, time::Duration};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Jail, filter::JailFilter};
use crate::{Error, net::IpList};

/// One jail: a filter that recognises failures, and the rule that turns failures of one address
/// into a ban request (`maxretry` failures within `findtime`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct JailConfig {
    /// Whether the jail runs.
    pub enabled: bool,
    /// The failures, as a built-in action set over the lines vigil-parse reads: `sshd`
    /// (fail2ban's sshd filter, normal mode), `sshd-aggressive`, `nginx-http-auth`,
    /// `nginx-limit-req`, `nginx-botsearch`, `recidive`. Ignored when
    /// `filter_file` is set.
    pub filter: String,
    /// A fail2ban filter file used unchanged instead of `filter`, with options as fail2ban
    /// writes them: `/etc/fail2ban/filter.d/sshd.conf[mode=aggressive]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(example = &"/etc/fail2ban/filter.d/sshd.conf[mode=aggressive]")]
    pub filter_file: Option<String>,
    /// Failures of one address within `findtime` that ask for a ban (at least 1).
    pub maxretry: u32,
    /// The sliding window failures are counted in.
    #[serde(with = "vigil_core::duration")]
    #[schemars(with = "String")]
    pub findtime: Duration,
    /// How long a first ban lasts: a duration (`"10m"`), or `-1` for a permanent ban
    /// (fail2ban's negative `bantime`; a permanent ban is never lengthened nor lifted by time).
    #[schemars(with = "BantimeSchema")]
    pub bantime: Bantime,
    /// Longer bans for addresses banned before (fail2ban's `bantime.increment`).
    pub bantime_increment: BantimeIncrement,
    /// Addresses and prefixes never counted nor banned (fail2ban's `ignoreip`; host names are
    /// not accepted).
    pub ignoreip: Vec<String>,
    /// Most addresses with failures tracked at once; beyond it the stalest are forgotten and
    /// counted as evicted.
    pub max_tracked: usize,
}

/// fail2ban's `bantime.increment`: the n-th ban of an address lasts
/// `bantime × factor × 2^(n-1)` (the first ban lasts `bantime`), at most `maxtime`; with
/// `multipliers`, `bantime × factor × multipliers[n-1]` instead (the last multiplier repeated).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct BantimeIncrement {
    /// Whether repeat offenders get longer bans.
    pub enabled: bool,
    /// Multiplier of the doubling, or of `multipliers` (`bantime.factor`).
    pub factor: f64,
    /// Longest ban (`bantime.maxtime`).
    #[serde(with = "vigil_core::duration")]
    #[schemars(with = "String")]
    pub maxtime: Duration,
    /// Most addresses whose earlier bans are remembered; beyond it the ones banned longest ago
    /// are forgotten and counted as evicted.
    pub max_remembered: usize,
    /// fail2ban's `bantime.multipliers` (written as a list: `[1, 2, 4, 8, 16, 32, 64]`): the
    /// n-th ban of an address lasts `bantime × factor × multipliers[n-1]`, the last multiplier
    /// repeated for later bans, at most `maxtime`. As in fail2ban the first ban lasts `bantime`
    /// whatever the first multiplier. Empty (the default): the doubling formula. Each at least 1.
    #[schemars(with = "Vec<u32>")]
    pub multipliers: Vec<NonZeroU32>,
}

/// A jail's `bantime`: how long a ban lasts, or permanent (fail2ban's negative `bantime`).
///
/// Written as a duration text (`"10m"`, `"1d"`) or as a negative number (`-1`, also `"-1"`);
/// it is written back as the text or `-1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bantime {
    /// Bans last this long.
    For(Duration),
    /// Bans never end by themselves.
    Permanent,
}

impl Bantime {
    /// The duration, `None` when permanent.
    pub fn duration(self) -> Option<Duration> {
        match self {
            Bantime::For(it) => Some(it),
            Bantime::Permanent => None,
        }
    }

    /// Whether bans are permanent.
    pub fn is_permanent(self) -> bool {
        self == Bantime::Permanent
    }
}

impl From<Duration> for Bantime {
    fn from(it: Duration) -> Bantime {
        Bantime::For(it)
    }
}

/// The schema of [`Bantime`]: a duration text or a negative number.
#[derive(JsonSchema)]
#[allow(dead_code)] // Only its schema is used.
#[serde(untagged)]
enum BantimeSchema {
    /// A duration such as `"10m"`.
    Text(String),
    /// `-1`: permanent.
    Permanent(i64),
}

impl Serialize for Bantime {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Bantime::For(it) => vigil_core::duration::serialize(it, s),
            Bantime::Permanent => s.serialize_i64(-1),
        }
    }
}

impl<'de> Deserialize<'de> for Bantime {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Bantime, D::Error> {
        struct Visitor;
        const EXPECTED: &str = "a duration such as \"10m\", or -1 for a permanent ban";
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Bantime;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(EXPECTED)
            }

            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Bantime, E> {
                if n < 0 {
                    Ok(Bantime::Permanent)
                } else {
                    Err(E::custom(format!("invalid bantime {n}: expected {EXPECTED}")))
                }
            }

            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Bantime, E> {
                Err(E::custom(format!("invalid bantime {n}: expected {EXPECTED}")))
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Bantime, E> {
                let trimmed = text.trim();
                if let Ok(n) = trimmed.parse::<i64>() {
                    return self.visit_i64(n);
                }
                let text = serde::de::value::StrDeserializer::<E>::new(text);
                vigil_core::duration::deserialize(text).map(Bantime::For)
            }
        }
        d.deserialize_any(Visitor)
    }
}

impl Default for BantimeIncrement {
    fn default() -> Self {
        BantimeIncrement {
            enabled: false,
            factor: 1.0,
            maxtime: Duration::from_secs(7 * 24 * 3600),
            max_remembered: 20_000,
            multipliers: Vec::new(),
        }
    }
}

impl Default for JailConfig {
    /// fail2ban's default sshd jail: maxretry 5, findtime 10m, bantime 10m.
    fn default() -> Self {
        JailConfig {
            enabled: true,
            filter: "sshd".to_owned(),
            filter_file: None,
            maxretry: 5,
            findtime: Duration::from_secs(600),
            bantime: Bantime::For(Duration::from_secs(600)),
            bantime_increment: BantimeIncrement::default(),
            ignoreip: vec!["127.0.0.1/8".to_owned(), "::1".to_owned()],
            max_tracked: 20_000,
        }
    }
}

impl JailConfig {
    /// The jail `name` this configuration describes, or `None` when it is disabled. Reads the
    /// filter file when there is one.
    pub fn build(&self, name: &str) -> Result<Option<Jail>, Error> {
        if !self.enabled {
            return Ok(None);
        }
        let bad = |what: String| Error::Config(format!("jail {name}: {what}"));
        if self.maxretry == 0 {
            return Err(bad("maxretry must be at least 1".into()));
        }
        if self.findtime.is_zero() {
            return Err(bad("findtime must not be zero".into()));
        }
        if !(self.bantime_increment.factor.is_finite() && self.bantime_increment.factor > 0.0) {
            return Err(bad("bantime_increment.factor must be a positive number".into()));
        }
        let ignore = IpList::parse(&self.ignoreip).map_err(|err| bad(err.to_string()))?;
        let filter = match &self.filter_file {
            Some(spec) => JailFilter::file(spec).map_err(|err| bad(err.to_string()))?,
            None => JailFilter::builtin(&self.filter).map_err(|err| bad(err.to_string()))?,
        };
        Ok(Some(Jail::new(name, self, filter, ignore)))
    }
}

/// The `[jails]` table: jails by name. fail2ban's default `sshd` jail is always declared; a
/// `[jails.sshd]` table changes it and `enabled = false` turns it off.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct JailsConfig(pub BTreeMap<String, JailConfig>);

impl Default for JailsConfig {
    fn default() -> Self {
        JailsConfig([("sshd".to_owned(), JailConfig::default())].into_iter().collect())
    }
}

impl JailsConfig {
    /// The jails in effect: the configured ones, plus the default `sshd` jail when the table
    /// does not declare it.
    pub fn effective(&self) -> BTreeMap<String, JailConfig> {
        let mut jails = self.0.clone();
        jails.entry("sshd".to_owned()).or_default();
        jails
    }
}
