//! The contracts every Vigil component implements, and nothing else.
//!
//! Vigil's pipeline is collection → enrichment → detection → alerting:
//!
//! - an [`EventSource`] collects (a log tailer, the process collector, an API puller) and sends
//!   [`Event`]s into a bounded [`EventSender`] until its shutdown token fires;
//! - a [`Detector`] (seed 004's "module") consumes events, keeps statistics, correlates over time
//!   and dispatches findings and audit records through its [`DetectorContext`];
//! - a [`Listener`] receives the dispatched events that match the [`Filter`] it was registered
//!   with and acts on them (print, write a file, call a webhook).
//!
//! The runtime (`vigil-runtime`) wires these together; components depend on this crate only, so
//! a framework user can write one without knowing how it is scheduled. The crate is small on
//! purpose: a change here is a change for every component.
//!
//! ```
//! use vigil_core::{async_trait, EventSource, SourceCapabilities, SourceContext, ComponentError};
//! use vigil_core::event::{LogEvent, Payload};
//!
//! struct Hello;
//!
//! #[async_trait]
//! impl EventSource for Hello {
//!     fn name(&self) -> &str { "hello" }
//!     fn capabilities(&self) -> SourceCapabilities { SourceCapabilities::LOG }
//!     async fn start(&self, ctx: SourceContext) -> Result<(), ComponentError> {
//!         ctx.send(Payload::Log(LogEvent::new("hello", "hello, world"))).await?;
//!         ctx.shutdown.cancelled().await;
//!         Ok(())
//!     }
//! }
//! ```

#![deny(missing_docs)]

mod capabilities;
mod detector;
pub mod duration;
mod enricher;
mod error;
mod filter;
mod listener;
mod sender;
mod source;
mod state;

pub use async_trait::async_trait;
pub use tokio_util::sync::CancellationToken;
pub use vigil_event as event;
pub use vigil_event::Event;

pub use capabilities::SourceCapabilities;
pub use detector::{Detector, DetectorContext, Statistics};
pub use enricher::{Enricher, enrich_batch_with, enrich_with};
pub use error::ComponentError;
pub use filter::Filter;
pub use listener::Listener;
pub use sender::{EventSender, PendingDelivery, Publish, SendError};
pub use source::{EventSource, SourceContext};
pub use state::{MemoryStateStore, StateStore};
