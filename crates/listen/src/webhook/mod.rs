//! Webhook: each event POSTed as JSON to a URL — the event itself, a rendered JSON body, or a
//! Slack incoming-webhook message — from a bounded queue, with retries and backoff.
//!
//! The folder follows the component layout: `config.rs` (what an operator writes),
//! `listener.rs` (the run logic) and `tests.rs`.

mod config;
mod listener;
#[cfg(test)]
mod tests;

pub use config::{WebhookConfig, WebhookFormat};
pub use listener::{WebhookListener, WebhookStats};
