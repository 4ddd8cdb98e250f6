//! The [`Listener`] trait: the end of the pipeline, acting on dispatched events.

use std::sync::Arc;

use async_trait::async_trait;
use vigil_event::Event;

use crate::ComponentError;

/// Receives the dispatched events that match the filter it was registered with, in batches.
///
/// The runtime calls `handle` with up to a batch of events as they arrive, and `flush` after the
/// last batch at shutdown (and on a timer), so a listener that buffers writes (a file, a
/// database) loses nothing. An error is logged and counted; the listener keeps receiving.
#[async_trait]
pub trait Listener: Send + 'static {
    /// A stable snake_case name.
    fn name(&self) -> &str;

    /// Acts on a batch of events.
    async fn handle(&mut self, events: &[Arc<Event>]) -> Result<(), ComponentError>;

    /// Makes everything handled so far durable or visible.
    async fn flush(&mut self) -> Result<(), ComponentError> {
        Ok(())
    }
}
