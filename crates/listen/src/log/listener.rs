//! The log listener: each event as one human line in the agent's log, through `tracing`.
//!
//! This is seed 004's "LogbackListener": coupled with the Report detector it shows a summary of
//! every record in the agent's log; with its default filter it shows findings and other events
//! of severity `notice` and above. Each event becomes one record with target
//! [`LogListener::TARGET`], at a level that follows the event's severity, with a message such as
//! `Finding SSHLoginTriesExceeded from sshd: 6 failed logins from 203.0.113.9` and the fields
//! `kind`, `source`, `host`, `severity`, `event_id` and, for findings, `name`.
//!
//! With a `message` template the line is the rendered template instead (the fields stay).
//! Line breaks in event text become spaces and other control characters are escaped, so an
//! attacker who controls a log line cannot forge records in the agent's log.

use std::{fmt::Write as _, sync::Arc};

use async_trait::async_trait;
use vigil_core::{ComponentError, Filter, Listener};
use vigil_event::{Event, EventKind, Payload, Severity, one_line};

use super::LogListenerConfig;
use crate::Template;

/// The longest message logged, in characters; longer ones are cut and end with `…`.
const MAX_MESSAGE_CHARS: usize = 1000;

/// Writes each event it handles to the agent's log as one line.
#[derive(Debug, Clone)]
pub struct LogListener {
    filter: Filter,
    message: Option<Template>,
}

impl LogListener {
    /// The listener's name.
    pub const NAME: &'static str = "log";

    /// The `tracing` target of the records the listener emits, for log filters
    /// (`RUST_LOG=vigil::events=info`).
    pub const TARGET: &'static str = "vigil::events";

    /// A listener configured by `config` (its `enabled` flag is not consulted; see
    /// [`LogListenerConfig::build`]).
    pub fn new(config: &LogListenerConfig) -> LogListener {
        LogListener { filter: config.filter.clone(), message: config.message.clone() }
    }

    /// The filter the runtime registers the listener with.
    pub fn filter(&self) -> &Filter {
        &self.filter
    }
}

#[async_trait]
impl Listener for LogListener {
    fn name(&self) -> &str {
        LogListener::NAME
    }

    async fn handle(&mut self, events: &[Arc<Event>]) -> Result<(), ComponentError> {
        for event in events {
            let line = match &self.message {
                Some(template) => {
                    one_line(&template.render_or_summary(event, Self::NAME), MAX_MESSAGE_CHARS)
                }
                None => describe(event),
            };
            emit(event, &line);
        }
        Ok(())
    }
}

/// Emits one `tracing` record for `event` with the message `line`. `tracing` needs the level of
/// a record to be known where the record is written, hence one arm per level.
fn emit(event: &Event, line: &str) {
    macro_rules! at_level {
        ($macro:ident) => {
            tracing::$macro!(
                target: LogListener::TARGET,
                kind = event.kind().as_str(),
                source = &*event.source,
                host = &*event.host,
                severity = event.severity.as_str(),
                event_id = %event.id,
                name = finding_name(event),
                "{}",
                line,
            )
        };
    }
    match event.severity {
        Severity::Debug => at_level!(debug),
        Severity::Info | Severity::Notice => at_level!(info),
        Severity::Warning => at_level!(warn),
        Severity::Error | Severity::Critical => at_level!(error),
    }
}

fn finding_name(event: &Event) -> Option<&str> {
    match &event.payload {
        Payload::Finding(finding) => Some(&finding.name),
        _ => None,
    }
}

/// One line about `event`: what it is, where it comes from and what it says.
fn describe(event: &Event) -> String {
    let source = &*event.source;
    let text = match &event.payload {
        Payload::Finding(f) => {
            let system = if f.system.is_empty() { source } else { &f.system };
            format!("Finding {} from {system}: {}", f.name, f.summary)
        }
        Payload::Log(log) => {
            let from = if log.source.is_empty() { source } else { &log.source };
            let mut text = format!("Log from {from}: {}", log.message);
            if let Some(action) = &log.action {
                let _ = write!(text, " [{action}]");
            }
            text
        }
        other => format!("{} from {source}: {}", kind_label(other.kind()), other.summary()),
    };
    one_line(&text, MAX_MESSAGE_CHARS)
}

/// How a kind reads at the start of a log line.
fn kind_label(kind: EventKind) -> &'static str {
    match kind {
        EventKind::SystemMetric => "System metrics",
        EventKind::NetworkMetric => "Network metrics",
        EventKind::Process => "Process",
        EventKind::Connection => "Connection",
        EventKind::Log => "Log",
        EventKind::Finding => "Finding",
        EventKind::Audit => "Audit",
        EventKind::ApiRecord => "API record",
        EventKind::AgentStatus => "Agent status",
        EventKind::Ban => "Ban",
        _ => "Event",
    }
}
