//! `[triggers.<name>]`: conditions on events that request a deeper analysis.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What a trigger watches for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConditionKind {
    /// A process event whose name or executable's file name matches `pattern` (a regex).
    #[default]
    ProcessName,
    /// A process event whose executable was deleted while it runs.
    ExecutableMissing,
    /// An event whose IP threat score (the IP tracer's `threat_score`) is above `bound`.
    IpScoreAbove,
    /// An event whose error severity (the error tracer's `error_severity`) is above `bound`.
    ErrorSeverityAbove,
}

/// The analysis a trigger requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AnalysisKind {
    /// SHA-256 of the process's executable (read through `/proc/PID/exe`, so a deleted
    /// executable is still hashed).
    #[default]
    HashExecutable,
    /// The process with its ancestors up to init and its children.
    ProcessTree,
    /// The address's IP tracer report and its sockets on this host.
    TraceIp,
}

impl AnalysisKind {
    /// The analysis's name.
    pub fn as_str(self) -> &'static str {
        match self {
            AnalysisKind::HashExecutable => "hash_executable",
            AnalysisKind::ProcessTree => "process_tree",
            AnalysisKind::TraceIp => "trace_ip",
        }
    }
}

/// How much an analysis matters when analyses are scarce: under the global rate limit, `low`
/// runs only while more than half the budget is left, `normal` more than a quarter, `high` more
/// than a tenth, `critical` always.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    /// Nice to have.
    Low,
    /// The default.
    #[default]
    Normal,
    /// Important.
    High,
    /// Always, while any budget is left.
    Critical,
}

impl Priority {
    /// The priority's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Normal => "normal",
            Priority::High => "high",
            Priority::Critical => "critical",
        }
    }

    /// The share of the global budget this priority leaves to higher ones.
    pub(super) fn reserve(self) -> f64 {
        match self {
            Priority::Low => 0.5,
            Priority::Normal => 0.25,
            Priority::High => 0.1,
            Priority::Critical => 0.0,
        }
    }
}

/// One trigger: a condition, the analysis it requests, its priority and its limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct TriggerConfig {
    /// Evaluate this trigger.
    pub enabled: bool,
    /// The condition: `process_name`, `executable_missing`, `ip_score_above` or
    /// `error_severity_above`.
    pub condition: ConditionKind,
    /// The regex of `process_name` (case-insensitive), e.g. `xmrig|minerd|kinsing`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// The bound of `ip_score_above` and `error_severity_above` (0–100).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bound: Option<u8>,
    /// The analysis requested: `hash_executable`, `process_tree` or `trace_ip`.
    pub analysis: AnalysisKind,
    /// `low`, `normal`, `high` or `critical`.
    pub priority: Priority,
    /// Most analyses this trigger requests per minute; more are skipped and counted.
    pub max_per_minute: u32,
    /// Most of this trigger's analyses running at once; more are skipped and counted.
    pub max_concurrent: u32,
}

impl Default for TriggerConfig {
    fn default() -> Self {
        TriggerConfig {
            enabled: true,
            condition: ConditionKind::ProcessName,
            pattern: None,
            bound: None,
            analysis: AnalysisKind::HashExecutable,
            priority: Priority::Normal,
            max_per_minute: 30,
            max_concurrent: 2,
        }
    }
}

/// `[tracers.triggers]`: limits over all triggers together (each `[triggers.<name>]` has its
/// own too).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct GlobalLimits {
    /// Most analyses per minute, all triggers together; lower priorities leave part of it to
    /// higher ones (`low` half, `normal` a quarter, `high` a tenth).
    pub max_per_minute: u32,
    /// Most analyses running at once, all triggers together.
    pub max_concurrent: u32,
}

impl Default for GlobalLimits {
    fn default() -> Self {
        GlobalLimits { max_per_minute: 120, max_concurrent: 4 }
    }
}
