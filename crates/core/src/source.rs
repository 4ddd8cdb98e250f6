//! The [`EventSource`] trait: anything that collects events (seed 003's universal source).

use std::sync::Arc;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;
use vigil_event::{Event, Payload};

use crate::{ComponentError, EventSender, SendError, SourceCapabilities, Statistics};

/// A collector of events. The runtime calls [`validate`](EventSource::validate) once at start,
/// then [`start`](EventSource::start) in a supervised task; if `start` fails or panics it is
/// called again after a backoff. On shutdown the context's token is cancelled, `start` should
/// return promptly, and [`stop`](EventSource::stop) is called.
///
/// Implementations MUST send only through the context's bounded sender, MUST watch the shutdown
/// token in every wait, and MUST NOT panic on bad input (turn it into a missing value or an error).
#[async_trait]
pub trait EventSource: Send + Sync + 'static {
    /// A stable snake_case name; it becomes the `source` of every event the source makes.
    fn name(&self) -> &str;

    /// What the source observes.
    fn capabilities(&self) -> SourceCapabilities;

    /// Checks that the source can read what it needs (files, permissions). An error here is
    /// reported clearly at start instead of as a crash loop.
    async fn validate(&self) -> Result<(), ComponentError> {
        Ok(())
    }

    /// Collects until `ctx.shutdown` is cancelled, sending into `ctx.out`.
    async fn start(&self, ctx: SourceContext) -> Result<(), ComponentError>;

    /// Releases what the source holds, after `start` returned for the last time.
    async fn stop(&self) -> Result<(), ComponentError> {
        Ok(())
    }

    /// The source's own counters now (lines read, rotations, …), shown in health and
    /// `agent_status` events. Cheap and callable at any time from any thread.
    fn statistics(&self) -> Option<Statistics> {
        None
    }
}

/// What a running source gets from the runtime.
#[derive(Debug, Clone)]
pub struct SourceContext {
    /// The source's name, as registered.
    pub name: Arc<str>,
    /// The host name stamped on every event.
    pub host: Arc<str>,
    /// The bounded sender to publish into.
    pub out: EventSender,
    /// Cancelled when the source must stop.
    pub shutdown: CancellationToken,
}

impl SourceContext {
    /// A context over a bounded channel of `capacity` events, with its receiver: for testing a
    /// source on its own.
    pub fn for_test(
        name: &str,
        capacity: usize,
    ) -> (SourceContext, tokio::sync::mpsc::Receiver<Arc<Event>>) {
        let (out, rx) = EventSender::channel(capacity);
        let ctx = SourceContext {
            name: name.into(),
            host: "test-host".into(),
            out,
            shutdown: CancellationToken::new(),
        };
        (ctx, rx)
    }

    /// A new event from this source, stamped now.
    pub fn event(&self, payload: Payload) -> Event {
        Event::new(self.host.clone(), self.name.clone(), payload)
    }

    /// Makes an event from `payload` and sends it.
    pub async fn send(&self, payload: Payload) -> Result<(), SendError> {
        self.out.send(self.event(payload)).await
    }
}
