//! Vigil's built-in listeners: where dispatched events end up.
//!
//! A listener is the end of the pipeline (seed 004's "event listeners"). It implements
//! [`vigil_core::Listener`]: the runtime registers it with a [`Filter`](vigil_core::Filter) —
//! each listener's `filter()`, taken from its configuration — and hands it the matching events in
//! batches through `handle`, then calls `flush` on a timer and at shutdown. A listener's error is
//! logged and counted by the runtime; the listener keeps receiving.
//!
//! Each listener lives in its own folder with a serde configuration (`<Name>Config`, whose `build`
//! returns the listener, or `None` when it is disabled) and the listener type:
//!
//! - [`JsonLinesListener`] writes every event as one line of JSON to standard output or a file;
//! - [`LogListener`] writes each event to the agent's own log as one human line, at a level that
//!   follows the event's severity.
//! - [`CsvListener`] appends audit records to one CSV file per record type (header row, declared
//!   columns), and findings and bans to `findings.csv` and `bans.csv`;
//! - [`WebhookListener`] POSTs events as JSON or Slack messages from a bounded queue, with
//!   retries and exponential backoff;
//! - [`ExecListener`] runs a program per event with templated arguments, never through a shell.
//!
//! Messages are [`Template`]s (minijinja), compiled when the configuration is loaded and
//! rendered with the context documented in [`template`] and `docs/specs/template.md`.
//!
//! ```
//! use std::sync::Arc;
//!
//! use vigil_core::Listener;
//! use vigil_core::event::{Event, LogEvent, Payload};
//! use vigil_listen::JsonLinesListener;
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let mut listener = JsonLinesListener::from_writer(Vec::new());
//! let event = Event::new("web-1", "auth_log", Payload::Log(LogEvent::new("sshd", "hello")));
//! listener.handle(&[Arc::new(event)]).await?;
//! listener.flush().await?;
//! # Ok::<(), vigil_core::ComponentError>(())
//! # }).unwrap();
//! ```

#![deny(missing_docs)]

mod csv;
mod error;
mod exec;
mod json_lines;
mod log;
pub mod template;
mod webhook;

pub use csv::{BAN_COLUMNS, CsvConfig, CsvListener, FINDING_COLUMNS};
pub use error::ListenError;
pub use exec::{ExecConfig, ExecListener, ExecStats};
pub use json_lines::{JsonLinesConfig, JsonLinesListener};
pub use log::{LogListener, LogListenerConfig};
pub use template::Template;
pub use webhook::{WebhookConfig, WebhookFormat, WebhookListener, WebhookStats};
