//! The enrichment stage: applies the registered tracers to each source event before the bus
//! shares it (ARCHITECTURE.md: enrichment sits between collection and detection).
//!
//! The stage wraps a source's publisher. An event is changed in place while it is still owned by
//! the source (`Arc::make_mut` copies only if someone else already holds it), so enrichment costs
//! nothing but the tracers' own work; an event that no tracer `wants` is passed through untouched.
//! Extra events a tracer asks for (a ban request) are published right after the enriched one.

use std::sync::Arc;

use vigil_core::{Enricher, PendingDelivery, Publish, SendError, enrich_with};
use vigil_event::Event;

/// A publisher that enriches each event, then hands it (and any extra events) to `inner`.
pub(crate) struct EnrichingPublisher {
    pub(crate) inner: Arc<dyn Publish>,
    pub(crate) chain: Arc<[Arc<dyn Enricher>]>,
}

impl EnrichingPublisher {
    /// Enriches `event`; returns the extra events to publish after it.
    fn apply(&self, event: &mut Arc<Event>) -> Vec<Event> {
        if !self.chain.iter().any(|it| it.wants(event)) {
            return Vec::new();
        }
        enrich_with(&self.chain, Arc::make_mut(event))
    }
}

impl Publish for EnrichingPublisher {
    fn publish(&self, mut event: Arc<Event>) -> Result<Option<PendingDelivery>, SendError> {
        let extra = self.apply(&mut event);
        if extra.is_empty() {
            return self.inner.publish(event);
        }
        let mut all = Vec::with_capacity(1 + extra.len());
        all.push(event);
        all.extend(extra.into_iter().map(Arc::new));
        self.inner.clone().publish_batch(all)
    }

    fn publish_batch(
        self: Arc<Self>,
        events: Vec<Arc<Event>>,
    ) -> Result<Option<PendingDelivery>, SendError> {
        let mut all = Vec::with_capacity(events.len());
        for mut event in events {
            let extra = self.apply(&mut event);
            all.push(event);
            all.extend(extra.into_iter().map(Arc::new));
        }
        self.inner.clone().publish_batch(all)
    }
}
