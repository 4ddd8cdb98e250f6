//! Vigil as a framework: one dependency that brings the event model, the component contracts,
//! the runtime and the built-in components.
//!
//! Write an [`EventSource`] to collect, a [`Detector`] to correlate and a [`Listener`] to act,
//! register them with a [`Runtime`] and run it. `examples/custom_pipeline.rs` at the repository
//! root does all three in under 100 lines:
//!
//! ```text
//! cargo run -p vigil --example custom_pipeline
//! ```
//!
//! The pieces are separate crates (`vigil-event`, `vigil-core`, `vigil-runtime`, …) so that a
//! component can depend on `vigil-core` alone; this facade re-exports them for applications.

#![deny(missing_docs)]

pub use vigil_core::{
    CancellationToken, ComponentError, Detector, DetectorContext, EventSender, EventSource, Filter,
    Listener, SourceCapabilities, SourceContext, StateStore, Statistics, async_trait,
};
pub use vigil_event as event;
pub use vigil_runtime::{
    Bus, DropPolicy, FileStateStore, RunReport, Runtime, RuntimeBuilder, RuntimeConfig,
    RuntimeHandle, Subscription,
};

/// Built-in detectors.
pub mod detectors {
    pub use vigil_detect::*;
}

/// Built-in listeners.
pub mod listeners {
    pub use vigil_listen::*;
}

/// The ban manager and its firewall actions.
pub mod respond {
    pub use vigil_respond::*;
}

/// Enrichment tracers (IP, event, error, network, process) and triggers; register them with
/// [`RuntimeBuilder::register_enricher`].
pub mod tracers {
    pub use vigil_core::{Enricher, enrich_with};
    pub use vigil_enrich::*;
}

/// Storage destinations: the SQLite store (also the back-fill API), JSON files, and the store
/// listener that acknowledges lines after commit.
pub mod stores {
    pub use vigil_store::*;
}
