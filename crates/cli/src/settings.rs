//! The configuration file's schema: every section and key `vigil` reads, with its default.
//!
//! This is the raw phase of configuration (house style rule 5): plain serde structs that mirror
//! the TOML, with `deny_unknown_fields` so a typo is an error with a line and column, and a doc
//! comment on every key, from which `vigil config default` renders the commented example. The
//! validated phase is [`crate::agent::build`], which turns these into runtime objects.
//!
//! Each component crate owns its own config struct (`ReportConfig`, `JsonLinesConfig`, …); this
//! module only arranges them into sections.

use std::{collections::BTreeMap, num::NonZeroUsize, path::PathBuf, time::Duration};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use vigil_detect::ReportConfig;
use vigil_detect::{
    IpSweepConfig, JailsConfig, PortScanConfig, RecurringErrorsConfig, ResourceExhaustionConfig,
    SshdConfig,
};
use vigil_listen::{CsvConfig, ExecConfig, Template, WebhookConfig, WebhookFormat};
use vigil_listen::{JsonLinesConfig, LogListenerConfig};
use vigil_runtime::{DropPolicy, RuntimeConfig};
use vigil_store::{json_files::JsonFilesConfig, sqlite::SqliteConfig};
use vigil_tail::{StartAt, TailConfig};

/// Vigil agent configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Who this agent is and where it keeps its state.
    pub agent: AgentSection,
    /// The event pipeline: queues, shutdown, supervision.
    pub runtime: RuntimeSection,
    /// The agent's own log, written to standard error.
    pub log: LogSection,
    /// Sources: what the agent collects.
    pub sources: SourcesSection,
    /// Detectors: stateful units that correlate events and dispatch findings.
    pub detectors: DetectorsSection,
    /// Listeners: what happens to dispatched events. Each kind is a table of named instances.
    pub listeners: ListenersSection,
    /// Bans: the ban manager deciding the jails' requests, and the firewall actions applying
    /// them. Dry-run (nothing applied) until `enforce = true`.
    pub bans: vigil_respond::BansConfig,
    /// Enrichment tracers: context added to every source event before detection (issue 6).
    pub tracers: vigil_enrich::TracersConfig,
    /// Triggers, as named instances (`[triggers.miner]`): a condition on events that requests
    /// a deeper analysis (hash the executable, snapshot the process tree, trace an IP), with a
    /// priority and rate and concurrency limits; results go into the event's trace.
    pub triggers: BTreeMap<String, vigil_enrich::trigger::TriggerConfig>,
    /// Jails with fail2ban semantics, by name (`[jails.sshd]`): `maxretry` failures of one
    /// address within `findtime` ask for a ban of `bantime`. The `sshd` jail is always declared;
    /// set `enabled = false` in `[jails.sshd]` to turn it off.
    pub jails: JailsConfig,
    /// Storage destinations: where events are kept to be queried (`vigil query "SQL"`). Several
    /// may run at once; a log line's checkpoint advances only once every enabled destination
    /// has committed it.
    pub stores: StoresSection,
}

/// Agent identity and state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct AgentSection {
    /// Host name stamped on every event. Unset: the machine's host name.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(example = &"web-1")]
    pub host: Option<String>,
    /// Directory for state (detector state, checkpoints, the database). Unset:
    /// `$XDG_STATE_HOME/vigil`, else `~/.local/state/vigil`, or `/var/lib/vigil` when run as root.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(example = &"/var/lib/vigil")]
    pub state_dir: Option<PathBuf>,
}

/// Pipeline settings (seed 003's collector configuration).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeSection {
    /// Most sources that may be registered.
    pub max_sources: NonZeroUsize,
    /// Capacity of every subscription queue, in events. Memory is bounded by this times the
    /// number of detectors and listeners.
    pub event_buffer_size: NonZeroUsize,
    /// What a full queue does: `block` makes sources wait (nothing is lost), `drop_oldest`
    /// drops the oldest queued event, counted in health and logged.
    pub drop_policy: DropPolicyName,
    /// How long a graceful shutdown may take; what is still queued after it is abandoned.
    #[serde(with = "crate::config::duration::humantime")]
    #[schemars(with = "String")]
    pub shutdown_timeout: Duration,
    /// How often health is checked and logged, `agent_status` events published and detector
    /// state saved.
    #[serde(with = "crate::config::duration::humantime")]
    #[schemars(with = "String")]
    pub health_check_interval: Duration,
    /// Log every dispatched event and health check at debug level.
    pub debug_logging: bool,
    /// First delay before restarting a failed component; it doubles on each failure.
    #[serde(with = "crate::config::duration::humantime")]
    #[schemars(with = "String")]
    pub restart_backoff_initial: Duration,
    /// Longest delay between restarts of a failing component.
    #[serde(with = "crate::config::duration::humantime")]
    #[schemars(with = "String")]
    pub restart_backoff_max: Duration,
    /// Most events handed to a listener at once.
    pub listener_batch_size: NonZeroUsize,
    /// How often listeners flush what they buffered.
    #[serde(with = "crate::config::duration::humantime")]
    #[schemars(with = "String")]
    pub flush_interval: Duration,
}

impl Default for RuntimeSection {
    fn default() -> Self {
        let it = RuntimeConfig::default();
        let nz = |n: usize| NonZeroUsize::new(n).unwrap_or(NonZeroUsize::MIN);
        RuntimeSection {
            max_sources: nz(it.max_sources),
            event_buffer_size: nz(it.event_buffer_size),
            drop_policy: DropPolicyName::Block,
            shutdown_timeout: it.shutdown_timeout,
            health_check_interval: it.health_check_interval,
            debug_logging: it.debug_logging,
            restart_backoff_initial: it.restart_backoff_initial,
            restart_backoff_max: it.restart_backoff_max,
            listener_batch_size: nz(it.listener_batch_size),
            flush_interval: it.flush_interval,
        }
    }
}

impl RuntimeSection {
    /// The runtime's validated configuration.
    pub fn to_runtime_config(&self) -> RuntimeConfig {
        RuntimeConfig::new()
            .with_max_event_sources(self.max_sources.get())
            .with_event_buffer_size(self.event_buffer_size.get())
            .with_drop_policy(match self.drop_policy {
                DropPolicyName::Block => DropPolicy::Block,
                DropPolicyName::DropOldest => DropPolicy::DropOldest,
            })
            .with_shutdown_timeout(self.shutdown_timeout)
            .with_health_check_interval(self.health_check_interval)
            .with_debug_logging(self.debug_logging)
            .with_restart_backoff(self.restart_backoff_initial, self.restart_backoff_max)
            .with_listener_batch_size(self.listener_batch_size.get())
            .with_flush_interval(self.flush_interval)
    }
}

/// What a full queue does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DropPolicyName {
    /// Sources wait for room; nothing is lost.
    #[default]
    Block,
    /// The oldest queued event is dropped and counted.
    DropOldest,
}

/// The agent's own log.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct LogSection {
    /// Least severe level written: `error`, `warn`, `info`, `debug` or `trace`. The `VIGIL_LOG`
    /// environment variable (tracing filter syntax) and `-v`/`-q` take precedence.
    pub level: LogLevel,
    /// `text` for people, `json` for log shippers.
    pub format: LogFormat,
}

/// Log levels of the agent's own log, ordered from least to most verbose.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum LogLevel {
    /// Errors only.
    Error,
    /// Warnings and errors.
    Warn,
    /// Normal operation.
    #[default]
    Info,
    /// Pipeline detail.
    Debug,
    /// Everything.
    Trace,
}

impl LogLevel {
    /// The tracing filter directive for this level.
    pub fn as_directive(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}

/// Formats of the agent's own log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// One human-readable line per record.
    #[default]
    Text,
    /// One JSON object per record.
    Json,
}

/// Built-in sources.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct SourcesSection {
    /// The agent's own health, published as `agent_status` events at start and at every health
    /// check.
    pub agent: AgentSourceConfig,
    /// Host resources: CPU, memory, swap, load, filesystems, disk I/O (`system_metric` events).
    pub system: SystemSourceConfig,
    /// Network interfaces, TCP states and listening ports (`network_metric` events).
    pub network: NetworkSourceConfig,
    /// A snapshot of every process (`process` events, phase `snapshot`).
    pub process: ProcessSourceConfig,
    /// Every TCP and UDP socket with its owning process (`connection` events).
    pub connections: ConnectionsSourceConfig,
    /// Process start and exit (`process` events), and findings for suspicious processes: a
    /// deleted executable, an executable in a world-writable directory, a name that does not
    /// match the executable.
    pub process_lifecycle: ProcessLifecycleSourceConfig,
    /// Log files to follow, as named instances (`[sources.files.auth]`): each line becomes a
    /// log event from the source `files.<name>`; checkpoints survive restarts and rotation.
    pub files: BTreeMap<String, TailConfig>,
    /// The systemd journal, as named instances (`[sources.journal.sshd]`): each matching entry
    /// becomes a log event from the source `journal.<name>`; the cursor survives restarts.
    /// Needs a vigil built with the `journald` feature (`cargo build --features journald`).
    pub journal: BTreeMap<String, JournalSourceConfig>,
}

/// One journal source instance: which entries of the systemd journal to read, and how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct JournalSourceConfig {
    /// Whether the source runs.
    pub enabled: bool,
    /// Directory of journal files to read. Unset: the system journal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub directory: Option<PathBuf>,
    /// Units whose entries are kept (`_SYSTEMD_UNIT`), e.g. `ssh.service`.
    pub units: Vec<String>,
    /// Syslog identifiers whose entries are kept (`SYSLOG_IDENTIFIER`). An entry matching a
    /// unit or an identifier is kept.
    pub identifiers: Vec<String>,
    /// Where reading starts at the very first run (no saved cursor): `end` or `beginning`.
    pub start_at: StartAt,
    /// Most entries sent in one batch.
    pub batch_size: usize,
    /// Parser of each entry's message (a built-in parser name, `auto`, or `none`). Unset:
    /// `sshd` when the only identifier is `sshd`, else `auto`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parser: Option<String>,
    /// Directory of the cursor file. Unset: `checkpoints` in the agent's state directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoint_dir: Option<PathBuf>,
}

impl Default for JournalSourceConfig {
    fn default() -> Self {
        JournalSourceConfig {
            enabled: false,
            directory: None,
            units: Vec::new(),
            identifiers: vec!["sshd".to_owned()],
            start_at: StartAt::End,
            batch_size: 256,
            parser: None,
            checkpoint_dir: None,
        }
    }
}

impl JournalSourceConfig {
    /// The parser the entries' messages go through.
    #[cfg_attr(
        not(feature = "journald"),
        expect(dead_code, reason = "used by the journald feature")
    )]
    pub fn parser(&self) -> &str {
        match &self.parser {
            Some(it) => it,
            None if self.identifiers.iter().all(|it| it == "sshd")
                && !self.identifiers.is_empty() =>
            {
                "sshd"
            }
            None => "auto",
        }
    }
}

impl Default for SourcesSection {
    fn default() -> Self {
        SourcesSection {
            agent: AgentSourceConfig::default(),
            // Host metrics are cheap (well under a millisecond of CPU per sample) and what an
            // operator coming from node_exporter expects to see at once; the per-process and
            // per-socket sources are noisier and opt-in.
            system: SystemSourceConfig { enabled: true, ..SystemSourceConfig::default() },
            network: NetworkSourceConfig { enabled: true, ..NetworkSourceConfig::default() },
            process: ProcessSourceConfig::default(),
            connections: ConnectionsSourceConfig::default(),
            process_lifecycle: ProcessLifecycleSourceConfig::default(),
            // A disabled instance, so the generated example shows every key.
            files: [(
                "auth".to_owned(),
                TailConfig {
                    enabled: false,
                    paths: vec!["/var/log/auth.log".to_owned()],
                    ..TailConfig::default()
                },
            )]
            .into_iter()
            .collect(),
            journal: [(
                "sshd".to_owned(),
                JournalSourceConfig {
                    units: vec!["ssh.service".to_owned(), "sshd.service".to_owned()],
                    ..JournalSourceConfig::default()
                },
            )]
            .into_iter()
            .collect(),
        }
    }
}

/// Declares a host collector's section: `enabled` and `interval`, with their defaults.
macro_rules! collector_section {
    ($(#[$doc:meta])* $name:ident, $interval:expr, $interval_doc:literal $(, $(#[$fdoc:meta])* $field:ident: $ty:ty = $default:expr)*) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
        #[serde(default, deny_unknown_fields)]
        pub struct $name {
            /// Run this source.
            pub enabled: bool,
            #[doc = $interval_doc]
            #[serde(with = "crate::config::duration::humantime")]
            #[schemars(with = "String")]
            pub interval: Duration,
            $($(#[$fdoc])* pub $field: $ty,)*
        }

        impl Default for $name {
            fn default() -> Self {
                $name { enabled: false, interval: $interval $(, $field: $default)* }
            }
        }
    };
}

collector_section!(
    /// The `system` source.
    SystemSourceConfig,
    Duration::from_secs(15),
    "How often to sample; CPU percentages cover the time since the previous sample.",
    /// How long filesystems get to answer `statvfs` in one sample; a mount that does not
    /// answer in time (a hung network filesystem) is reported in `failed_collectors`.
    #[serde(with = "crate::config::duration::humantime")]
    #[schemars(with = "String")]
    disk_timeout: Duration = Duration::from_secs(2)
);
collector_section!(
    /// The `network` source.
    NetworkSourceConfig,
    Duration::from_secs(15),
    "How often to sample."
);
collector_section!(
    /// The `process` source.
    ProcessSourceConfig,
    Duration::from_secs(60),
    "How often to publish the snapshot; CPU percentages cover the time since the previous one."
);

collector_section!(
    /// The `connections` source.
    ConnectionsSourceConfig,
    Duration::from_secs(60),
    "How often to publish the sockets."
);

collector_section!(
    /// The `process_lifecycle` source.
    ProcessLifecycleSourceConfig,
    Duration::from_secs(1),
    "How often to compare the process table with the previous one; a process that starts and \
     exits between two polls is not seen (unless `netlink` is on).",
    /// Also follow the kernel's process events connector (netlink; needs root): starts and
    /// exits as they happen, including processes shorter than a poll. Without root the source
    /// logs a warning and polls.
    netlink: bool = false
);

/// The `agent` status source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct AgentSourceConfig {
    /// Publish `agent_status` events.
    pub enabled: bool,
}

impl Default for AgentSourceConfig {
    fn default() -> Self {
        AgentSourceConfig { enabled: true }
    }
}

/// Built-in detectors.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct DetectorsSection {
    /// Report: a notice for every record it receives, and overall statistics (seed 004).
    pub report: ReportConfig,
    /// sshd: logins, failed logins per address (`SSHLoginTriesExceeded`), daily statistics.
    pub sshd: SshdConfig,
    /// IP sweeps: many addresses of one subnet failing or blocked within a window.
    pub ip_sweep: IpSweepConfig,
    /// Port scans: distinct destination ports blocked for one source within a window.
    pub port_scan: PortScanConfig,
    /// Resource exhaustion: memory, swap, disk or a process's open files above a threshold for
    /// a duration.
    pub resource_exhaustion: ResourceExhaustionConfig,
    /// Recurring errors: one error signature logged again and again within a window.
    pub recurring_errors: RecurringErrorsConfig,
}

/// Built-in listeners: each kind is a table of named instances, e.g.
/// `[listeners.json_lines.alerts]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ListenersSection {
    /// Write events to the agent's log.
    pub log: BTreeMap<String, LogListenerConfig>,
    /// Write events as JSON lines to standard output (`path = "-"`) or a file.
    pub json_lines: BTreeMap<String, JsonLinesConfig>,
    /// Append audit records (one file per record type), findings and bans to CSV files.
    pub csv: BTreeMap<String, CsvConfig>,
    /// POST events as JSON or Slack messages to a URL, with retries.
    pub webhook: BTreeMap<String, WebhookConfig>,
    /// Run a program per event with templated arguments (never through a shell).
    pub exec: BTreeMap<String, ExecConfig>,
}

impl Default for ListenersSection {
    fn default() -> Self {
        ListenersSection {
            log: [("default".to_owned(), LogListenerConfig::default())].into_iter().collect(),
            // A disabled instance, so the generated example shows every key; `vigil run --print`
            // does the same as enabling it.
            json_lines: [(
                "stdout".to_owned(),
                JsonLinesConfig { enabled: false, ..JsonLinesConfig::default() },
            )]
            .into_iter()
            .collect(),
            // Disabled instances, so the generated example shows every key.
            csv: [("audit".to_owned(), CsvConfig { enabled: false, ..CsvConfig::default() })]
                .into_iter()
                .collect(),
            webhook: [("slack".to_owned(), example_webhook())].into_iter().collect(),
            exec: [("notify".to_owned(), example_exec())].into_iter().collect(),
        }
    }
}

/// The disabled webhook instance of the generated example configuration.
fn example_webhook() -> WebhookConfig {
    WebhookConfig {
        enabled: false,
        url: "https://hooks.slack.com/services/T000/B000/XXXX".to_owned(),
        format: WebhookFormat::Slack,
        message: Template::new("[{{ severity }}] {{ summary }} on {{ host }}").ok(),
        ..WebhookConfig::default()
    }
}

/// The disabled exec instance of the generated example configuration.
fn example_exec() -> ExecConfig {
    ExecConfig {
        enabled: false,
        program: "/usr/local/bin/notify-oncall".into(),
        args: ["--host", "{{ host }}", "--ip", "{{ event.payload.data.ip }}", "{{ summary }}"]
            .into_iter()
            .filter_map(|it| Template::new(it).ok())
            .collect(),
        ..ExecConfig::default()
    }
}

/// Storage destinations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct StoresSection {
    /// The embedded SQLite database (on by default, nothing to install).
    pub sqlite: SqliteConfig,
    /// JSON files at templated paths, as named instances (`[stores.json_files.archive]`).
    pub json_files: BTreeMap<String, JsonFilesConfig>,
}

impl Default for StoresSection {
    fn default() -> Self {
        StoresSection {
            sqlite: SqliteConfig::default(),
            // A disabled instance, so the generated example shows every key.
            json_files: [(
                "archive".to_owned(),
                JsonFilesConfig { enabled: false, ..JsonFilesConfig::default() },
            )]
            .into_iter()
            .collect(),
        }
    }
}
