//! Configuration of the ban manager and its actions: the raw, serde-facing half of the
//! two-phase config (`[bans]` in the agent's file).
//!
//! ```toml
//! [bans]
//! enforce = true                      # dry-run until this is set
//! ignoreip = ["198.51.100.0/24"]
//! [bans.aggregate]
//! threshold = 5                       # ban the /24 (/64) once 5 of its addresses are banned
//! [bans.nftables]
//! table = "vigil"
//! [bans.exec.notify]
//! program = "/usr/local/bin/notify-ban"
//! args = ["--ip", "{ip}", "--jail", "{jail}"]
//! ```

use std::{collections::BTreeMap, net::IpAddr, path::PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{IpNet, RespondError};

/// The ban manager: decides the bans jails request and applies them through the actions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct BansConfig {
    /// Whether the ban manager runs (it receives the jails' ban requests).
    pub enabled: bool,
    /// Apply bans to the firewall. Off (the default), every decision is made, dispatched and
    /// persisted with `dry_run = true`, and no action runs.
    pub enforce: bool,
    /// Addresses and prefixes never banned (fail2ban's `ignoreip`), besides loopback and the
    /// host's own addresses.
    #[schemars(with = "Vec<String>", example = ["198.51.100.0/24", "2001:db8:1::/48"])]
    pub ignoreip: Vec<IpNet>,
    /// Read the host's own addresses from /proc at start and never ban them.
    pub detect_own_addresses: bool,
    /// More addresses of this host never to ban (a public address behind NAT, a VIP).
    #[schemars(example = ["203.0.113.1"])]
    pub own_addresses: Vec<IpAddr>,
    /// Ban duration in seconds when a request gives none (0).
    pub default_bantime_seconds: i64,
    /// Most active bans; requests beyond it are refused and counted.
    pub max_active: usize,
    /// Most addresses whose ban count is remembered for repeat offenders; the least recently
    /// banned are forgotten first, counted.
    pub max_history: usize,
    /// Ban a whole prefix once several of its addresses are banned.
    pub aggregate: AggregateConfig,
    /// The nftables action: one table with typed sets, changed in one `nft -f -` batch.
    pub nftables: NftablesConfig,
    /// The ipset action: `hash:net` sets with timeouts, changed through `ipset restore`.
    pub ipset: IpsetConfig,
    /// Programs run with an argument template on every ban and unban (never through a shell).
    pub exec: BTreeMap<String, ExecConfig>,
}

impl Default for BansConfig {
    fn default() -> Self {
        BansConfig {
            enabled: true,
            enforce: false,
            ignoreip: Vec::new(),
            detect_own_addresses: true,
            own_addresses: Vec::new(),
            default_bantime_seconds: 600,
            max_active: 1_000_000,
            max_history: 100_000,
            aggregate: AggregateConfig::default(),
            nftables: NftablesConfig::default(),
            ipset: IpsetConfig::default(),
            exec: BTreeMap::new(),
        }
    }
}

/// Prefix aggregation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct AggregateConfig {
    /// Banned addresses of one prefix that make the whole prefix banned; 0 turns aggregation
    /// off. A prefix holding an allow-listed, own or loopback address is never banned.
    pub threshold: u32,
    /// The IPv4 prefix length aggregated (1–32).
    pub ipv4_prefix: u8,
    /// The IPv6 prefix length aggregated (1–128).
    pub ipv6_prefix: u8,
}

impl Default for AggregateConfig {
    fn default() -> Self {
        AggregateConfig { threshold: 0, ipv4_prefix: 24, ipv6_prefix: 64 }
    }
}

/// The nftables action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct NftablesConfig {
    /// Whether bans go into nftables when enforcing.
    pub enabled: bool,
    /// The `nft` program.
    pub nft: PathBuf,
    /// The table (family `inet`) Vigil owns: it is recreated on start. Letters, digits, `_`.
    pub table: String,
    /// Priority of the table's input chain (lower runs earlier).
    pub priority: i32,
    /// Also drop banned sources in a forward chain (routed traffic: containers, VMs).
    pub forward: bool,
    /// Run `nft` inside this network namespace (`ip netns exec NAME nft …`); unset: the
    /// agent's own.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(example = &"vigil-test")]
    pub netns: Option<String>,
}

impl Default for NftablesConfig {
    fn default() -> Self {
        NftablesConfig {
            enabled: true,
            nft: PathBuf::from("nft"),
            table: "vigil".into(),
            priority: -10,
            forward: false,
            netns: None,
        }
    }
}

/// The ipset action. The sets are only filled; a rule such as
/// `iptables -I INPUT -m set --match-set vigil_v4 src -j DROP` uses them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct IpsetConfig {
    /// Whether bans go into ipset sets when enforcing.
    pub enabled: bool,
    /// The `ipset` program.
    pub ipset: PathBuf,
    /// The IPv4 set (`hash:net`, timeout). Letters, digits, `_`, `-`; at most 24 characters.
    pub set_v4: String,
    /// The IPv6 set.
    pub set_v6: String,
    /// Run `ipset` inside this network namespace; unset: the agent's own.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(example = &"vigil-test")]
    pub netns: Option<String>,
}

impl Default for IpsetConfig {
    fn default() -> Self {
        IpsetConfig {
            enabled: false,
            ipset: PathBuf::from("ipset"),
            set_v4: "vigil_v4".into(),
            set_v6: "vigil_v6".into(),
            netns: None,
        }
    }
}

/// A program run on every ban (and optionally unban), with placeholders substituted inside
/// each argument: `{ip}`, `{jail}`, `{until}` (RFC 3339, empty when permanent), `{bantime}`
/// (seconds), `{failures}`, `{family}` (`inet` or `inet6`). A value never becomes two
/// arguments, and no shell is involved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ExecConfig {
    /// Whether this action runs when enforcing.
    pub enabled: bool,
    /// The program (a path, or a name looked up in `PATH`).
    #[schemars(example = &"/usr/local/bin/notify-ban")]
    pub program: PathBuf,
    /// Arguments on a ban.
    #[schemars(example = ["--ban", "{ip}", "--jail", "{jail}"])]
    pub args: Vec<String>,
    /// Arguments on an unban; empty: nothing runs on unban.
    #[schemars(example = ["--unban", "{ip}"])]
    pub unban_args: Vec<String>,
    /// Longest a run may take, in seconds, before it is killed.
    pub timeout_seconds: u64,
    /// On start, run the ban arguments again for every persisted ban (for a program that keeps
    /// no state of its own); off, a start runs nothing.
    pub restore: bool,
}

impl Default for ExecConfig {
    fn default() -> Self {
        ExecConfig {
            enabled: true,
            program: PathBuf::new(),
            args: Vec::new(),
            unban_args: Vec::new(),
            timeout_seconds: 30,
            restore: false,
        }
    }
}

/// The placeholders an exec argument may use.
pub const PLACEHOLDERS: [&str; 6] = ["ip", "jail", "until", "bantime", "failures", "family"];

impl BansConfig {
    /// Checks what serde cannot.
    pub fn validate(&self) -> Result<(), RespondError> {
        let bad = |message: String| Err(RespondError::Config(message));
        let aggregate = &self.aggregate;
        if !(1..=32).contains(&aggregate.ipv4_prefix) {
            return bad(format!("aggregate.ipv4_prefix {} is not 1-32", aggregate.ipv4_prefix));
        }
        if !(1..=128).contains(&aggregate.ipv6_prefix) {
            return bad(format!("aggregate.ipv6_prefix {} is not 1-128", aggregate.ipv6_prefix));
        }
        if self.max_active == 0 {
            return bad("max_active must be at least 1".into());
        }
        if !is_name(&self.nftables.table, 64, false) {
            return bad(format!(
                "nftables.table {:?}: letters, digits and _ only",
                self.nftables.table
            ));
        }
        for (key, netns) in [("nftables", &self.nftables.netns), ("ipset", &self.ipset.netns)] {
            if let Some(netns) = netns
                && !is_name(netns, 64, true)
            {
                return bad(format!("{key}.netns {netns:?}: letters, digits, _ and - only"));
            }
        }
        for set in [&self.ipset.set_v4, &self.ipset.set_v6] {
            if !is_name(set, 24, true) {
                return bad(format!("ipset set {set:?}: letters, digits, _ and -, at most 24"));
            }
        }
        for (name, exec) in &self.exec {
            if exec.enabled && exec.program.as_os_str().is_empty() {
                return bad(format!("exec.{name}: program is empty"));
            }
            for arg in exec.args.iter().chain(&exec.unban_args) {
                if let Some(unknown) = unknown_placeholder(arg) {
                    return bad(format!(
                        "exec.{name}: unknown placeholder {{{unknown}}} in {arg:?}; known: {}",
                        PLACEHOLDERS.map(|it| format!("{{{it}}}")).join(", ")
                    ));
                }
            }
        }
        Ok(())
    }
}

fn is_name(text: &str, max: usize, dash: bool) -> bool {
    !text.is_empty()
        && text.len() <= max
        && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || (dash && c == '-'))
}

/// The first `{name}` in `arg` that is not a known placeholder.
fn unknown_placeholder(arg: &str) -> Option<String> {
    let mut rest = arg;
    while let Some(start) = rest.find('{') {
        let after = &rest[start + 1..];
        let end = after.find('}')?;
        let name = &after[..end];
        if !PLACEHOLDERS.contains(&name) {
            return Some(name.to_owned());
        }
        rest = &after[end + 1..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_dry_run_and_a_sample_config_parses() {
        let config = BansConfig::default();
        assert!(!config.enforce);
        assert_eq!(toml::from_str::<BansConfig>("").unwrap(), config);
        config.validate().unwrap();
        let sample = r#"
            enforce = true
            ignoreip = ["198.51.100.0/24", "2001:db8:1::/48", "192.0.2.7"]
            [aggregate]
            threshold = 5
            [nftables]
            table = "vigil_test"
            netns = "vigil-1"
            [exec.notify]
            enabled = true
            program = "/bin/echo"
            args = ["ban={ip}", "{jail}"]
        "#;
        let config: BansConfig = toml::from_str(sample).unwrap();
        config.validate().unwrap();
        assert_eq!(config.ignoreip[0].to_string(), "198.51.100.0/24");
        assert_eq!(config.aggregate.threshold, 5);
        assert_eq!(config.exec["notify"].args, ["ban={ip}", "{jail}"]);
    }

    #[test]
    fn bad_values_are_refused_with_the_key() {
        let err = toml::from_str::<BansConfig>("enforced = true").unwrap_err();
        assert!(err.to_string().contains("unknown field `enforced`"), "{err}");
        let err = toml::from_str::<BansConfig>("ignoreip = [\"10.0.0.300\"]").unwrap_err();
        assert!(err.to_string().contains("invalid address"), "{err}");
        let check = |text: &str| {
            toml::from_str::<BansConfig>(text).unwrap().validate().unwrap_err().to_string()
        };
        assert!(check("[nftables]\ntable = \"a b\"").contains("nftables.table"));
        assert!(check("[nftables]\nnetns = \"x;rm\"").contains("nftables.netns"));
        assert!(check("[aggregate]\nipv4_prefix = 33").contains("ipv4_prefix"));
        assert!(check("[ipset]\nset_v4 = \"a-very-long-set-name-over-24\"").contains("ipset set"));
        let text = "[exec.x]\nenabled = true\nprogram = \"/bin/true\"\nargs = [\"{ipaddr}\"]";
        assert!(check(text).contains("unknown placeholder {ipaddr}"));
    }
}
