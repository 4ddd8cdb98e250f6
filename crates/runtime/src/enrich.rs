//! The enrichment stage: applies the registered tracers to each source event before the bus
//! shares it (ARCHITECTURE.md: enrichment sits between collection and detection).
//!
//! The stage wraps a source's publisher. An event is changed in place while it is still owned by
//! the source (`Arc::make_mut` copies only if someone else already holds it), so enrichment costs
//! nothing but the tracers' own work; an event that no tracer `wants` is passed through untouched.
//! Extra events a tracer asks for (a ban request) are published right after the enriched one.

use std::sync::Arc;

use vigil_core::{Enricher, PendingDelivery, Publish, SendError, enrich_batch_with, enrich_with};
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
        let mut events = events;
        // The whole batch goes through each tracer at once (one lock and one clock reading per
        // tracer and batch); only events some tracer wants are made mutable.
        let mut wanted = Vec::new();
        let mut refs: Vec<&mut Event> = Vec::with_capacity(events.len());
        for (at, event) in events.iter_mut().enumerate() {
            if self.chain.iter().any(|it| it.wants(event)) {
                wanted.push(at);
                refs.push(Arc::make_mut(event));
            }
        }
        if refs.is_empty() {
            return self.inner.clone().publish_batch(events);
        }
        let extra = enrich_batch_with(&self.chain, &mut refs);
        drop(refs);
        if extra.is_empty() {
            return self.inner.clone().publish_batch(events);
        }
        let mut extra = extra.into_iter().map(|(at, it)| (wanted[at], it)).peekable();
        let mut all = Vec::with_capacity(events.len() + extra.len());
        for (at, event) in events.into_iter().enumerate() {
            all.push(event);
            while let Some((_, it)) = extra.next_if(|(after, _)| *after == at) {
                all.push(Arc::new(it));
            }
        }
        self.inner.clone().publish_batch(all)
    }
}

#[cfg(test)]
mod tests {
    use vigil_core::{Enricher, Filter};
    use vigil_event::{AgentStatus, LogEvent, Payload};

    use super::*;
    use crate::{Bus, DropPolicy};

    /// Counts the words of log messages and reports long ones as an extra event.
    struct WordCount;

    impl Enricher for WordCount {
        fn name(&self) -> &str {
            "words"
        }

        fn wants(&self, event: &Event) -> bool {
            matches!(event.payload, Payload::Log(_))
        }

        fn enrich(&self, event: &mut Event, extra: &mut Vec<Event>) {
            let Payload::Log(log) = &event.payload else { return };
            let words = log.message.split_whitespace().count();
            event.enrichment.fields.insert("words".into(), words.into());
            event.enrichment.record("words", serde_json::Value::from(words));
            if words > 3 {
                extra.push(Event::new("h", "words", Payload::Log(LogEvent::new("words", "long"))));
            }
        }
    }

    #[tokio::test]
    async fn enriches_before_sharing_and_publishes_extra_events_after() {
        let bus = Bus::new(16, DropPolicy::Block);
        let mut all = bus.subscribe("all", Filter::any());
        let chain: Vec<Arc<dyn Enricher>> = vec![Arc::new(WordCount)];
        let sender = bus.enriched_sender(&chain);
        sender.send(Event::new("h", "s", Payload::Log(LogEvent::new("app", "a b")))).await.unwrap();
        let status = Payload::AgentStatus(AgentStatus::default());
        sender.send(Event::new("h", "agent", status)).await.unwrap();
        let long = LogEvent::new("app", "one two three four");
        sender.send_batch(vec![Event::new("h", "s", Payload::Log(long))]).await.unwrap();

        let first = all.recv().await.unwrap();
        assert_eq!(first.enrichment.fields["words"], 2);
        assert_eq!(
            first.enrichment.trace.as_ref().unwrap().tracers_used().collect::<Vec<_>>(),
            ["words"]
        );
        let second = all.recv().await.unwrap();
        assert!(second.enrichment.is_empty(), "no enricher wants a status event");
        let third = all.recv().await.unwrap();
        assert_eq!(third.enrichment.fields["words"], 4);
        let extra = all.recv().await.unwrap();
        assert_eq!(extra.source.as_ref(), "words", "the extra event follows the enriched one");
        assert_eq!(bus.published(), 4);
        // Without enrichers the sender is the plain one.
        bus.enriched_sender(&[])
            .send(Event::new("h", "s", Payload::Log(LogEvent::new("a", "b"))))
            .await
            .unwrap();
        assert!(all.recv().await.unwrap().enrichment.is_empty());
    }

    #[tokio::test]
    async fn a_batch_is_enriched_at_once_and_extra_events_follow_their_event() {
        let bus = Bus::new(16, DropPolicy::Block);
        let mut all = bus.subscribe("all", Filter::any());
        let chain: Vec<Arc<dyn Enricher>> = vec![Arc::new(WordCount), Arc::new(WordCount)];
        let sender = bus.enriched_sender(&chain);
        let log = |text: &str| Event::new("h", "s", Payload::Log(LogEvent::new("app", text)));
        let status = Event::new("h", "agent", Payload::AgentStatus(AgentStatus::default()));
        let batch = vec![log("one two three four"), status, log("a b"), log("w x y z")];
        sender.send_batch(batch).await.unwrap();

        let mut seen = Vec::new();
        for _ in 0..8 {
            let event = all.recv().await.unwrap();
            let words = event.enrichment.trace.as_ref().map_or(0, |it| it.tracers.len());
            let text = match &event.payload {
                Payload::Log(log) => log.message.clone(),
                _ => "status".to_owned(),
            };
            seen.push((event.source.to_string(), text, words));
        }
        let row = |source: &str, text: &str, records| (source.to_owned(), text.to_owned(), records);
        assert_eq!(
            seen,
            [
                row("s", "one two three four", 2),
                row("words", "long", 0),
                row("words", "long", 0),
                row("agent", "status", 0),
                row("s", "a b", 2),
                row("s", "w x y z", 2),
                row("words", "long", 0),
                row("words", "long", 0),
            ]
        );
        assert_eq!(bus.published(), 8);
    }
}
