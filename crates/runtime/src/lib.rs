//! The Vigil runtime: registers components, connects them through a bounded event bus, runs
//! them supervised and shuts them down gracefully.
//!
//! ```text
//!  sources ──publish──▶ Bus ──filter──▶ detector queues ──▶ detectors ──dispatch──▶ Bus
//!                        │                                                         │
//!                        └──────filter──▶ listener queues ──▶ listeners ◀──────────┘
//! ```
//!
//! - **Bounded everywhere.** Every subscription has a fixed-size queue; a full queue either
//!   makes the producer wait or drops its oldest event, counted and logged ([`DropPolicy`]).
//! - **Isolated.** Each component runs in its own task under `catch_unwind`; a failure or panic
//!   is reported in [`Health`] and the component restarts after an exponential backoff.
//! - **Graceful.** Shutdown stops the sources, lets detectors drain, then listeners drain and
//!   flush, all within one deadline.
//!
//! ```
//! use std::sync::Arc;
//! use vigil_core::{Filter, event::{Event, EventKind, LogEvent, Payload}};
//! use vigil_runtime::{Runtime, RuntimeConfig};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let runtime = Runtime::builder(RuntimeConfig::new().with_event_buffer_size(1024)).build();
//! let mut logs = runtime.subscribe("example", Filter::any().kinds([EventKind::Log]));
//! let bus = runtime.bus().clone();
//! bus.publish(Event::new("h", "demo", Payload::Log(LogEvent::new("demo", "hello")))).await.unwrap();
//! assert_eq!(logs.recv().await.unwrap().source.as_ref(), "demo");
//! # }
//! ```

#![deny(missing_docs)]

mod bus;
mod config;
mod detector_task;
mod enrich;
mod health;
mod listener_task;
mod queue;
mod runtime;
mod state;
mod status;
mod supervisor;

pub use bus::{Bus, QueueStats, Subscription, SubscriptionCloser};
pub use config::RuntimeConfig;
pub use health::{ComponentHealth, ComponentRole, ComponentState, Health};
pub use queue::DropPolicy;
pub use runtime::{
    ListenerOptions, RunReport, Runtime, RuntimeBuilder, RuntimeError, RuntimeHandle, default_host,
};
pub use state::FileStateStore;
pub use status::STATUS_SOURCE;
