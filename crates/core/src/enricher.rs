//! The enrichment contract: tracers that add context to an event before it is shared.
//!
//! Vigil's pipeline is collection → enrichment → detection → alerting. An [`Enricher`] (a
//! "tracer") runs on the publish path of every source, after the source made the event and
//! before the bus shares it, so it may change the event in place: add fields to its
//! [`Enrichment`](vigil_event::Enrichment) block and append a record to its trace. It may also
//! ask for further events to be published after the enriched one (a ban request, say).
//!
//! Enrichers run on the sources' tasks and must be cheap: [`Enricher::wants`] is a prefilter
//! called for every event (a kind or field test), and [`Enricher::enrich`] runs only when it
//! returned true. State an enricher keeps MUST be bounded.

use vigil_event::Event;

/// A tracer: adds context to events on their way to the detectors.
pub trait Enricher: Send + Sync + 'static {
    /// The tracer's name, written in the trace block (`ip`, `event`, `error`, …).
    fn name(&self) -> &str;

    /// Whether [`enrich`](Enricher::enrich) has anything to do with `event`. Called for every
    /// published event, so it must be a cheap test of the kind or a field.
    fn wants(&self, event: &Event) -> bool;

    /// Adds context to `event`; events pushed to `extra` are published right after it.
    fn enrich(&self, event: &mut Event, extra: &mut Vec<Event>);

    /// Adds context to every event of `events` this tracer [`wants`](Enricher::wants), in
    /// order; each extra event is pushed to `extra` with the index of the event it follows.
    ///
    /// The enrichment stage calls this for a source's batch (the tailer sends up to 512 events
    /// at a time), so a tracer can take its lock and read the clock once per batch instead of
    /// once per event. The default calls [`enrich`](Enricher::enrich) for each event.
    fn enrich_batch(&self, events: &mut [&mut Event], extra: &mut Vec<(usize, Event)>) {
        let mut more = Vec::new();
        for (at, event) in events.iter_mut().enumerate() {
            if self.wants(event) {
                self.enrich(event, &mut more);
                extra.extend(more.drain(..).map(|it| (at, it)));
            }
        }
    }
}

/// Applies each enricher of `chain` that wants `event`, in order; returns the extra events.
pub fn enrich_with(chain: &[std::sync::Arc<dyn Enricher>], event: &mut Event) -> Vec<Event> {
    let mut extra = Vec::new();
    for enricher in chain {
        if enricher.wants(event) {
            enricher.enrich(event, &mut extra);
        }
    }
    extra
}

/// Applies each enricher of `chain` to `events` with [`Enricher::enrich_batch`], in order;
/// returns the extra events, each with the index of the event it must follow (sorted by that
/// index, in the chain's order for one event, as [`enrich_with`] would have made them).
pub fn enrich_batch_with(
    chain: &[std::sync::Arc<dyn Enricher>],
    events: &mut [&mut Event],
) -> Vec<(usize, Event)> {
    let mut extra = Vec::new();
    for enricher in chain {
        enricher.enrich_batch(events, &mut extra);
    }
    // Stable: the extra events of one event stay in the chain's order.
    extra.sort_by_key(|(at, _)| *at);
    extra
}
