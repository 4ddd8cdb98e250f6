//! The event bus: publish/subscribe with filters given at subscription time.
//!
//! Every subscriber has a [`Filter`] and its own bounded [`Queue`]. Publishing evaluates each
//! filter once and pushes a shared `Arc<Event>` into the queues that match — no copy of the
//! event, no lock on the hot path: the subscriber list is read through an `ArcSwap` snapshot and
//! the queues are lock-free rings. Subscribing or unsubscribing swaps in a new list.
//!
//! Backpressure follows each queue's [`DropPolicy`]: under `Block` a publish that finds a full
//! queue returns a pending delivery that the sender awaits; under `DropOldest` it never waits.

use std::sync::{
    Arc,
    atomic::{AtomicBool, AtomicU64, Ordering},
};

use arc_swap::ArcSwap;
use vigil_core::{EventSender, Filter, PendingDelivery, Publish, SendError};
use vigil_event::Event;

use crate::{
    health::ComponentHealth,
    queue::{DropPolicy, Queue},
};

/// A publish/subscribe bus with bounded, filtered subscriptions. Cheap to clone.
#[derive(Clone)]
pub struct Bus {
    inner: Arc<BusInner>,
}

struct BusInner {
    subscribers: ArcSwap<Vec<Arc<Subscriber>>>,
    next_id: AtomicU64,
    published: AtomicU64,
    closed: AtomicBool,
    capacity: usize,
    policy: DropPolicy,
}

struct Subscriber {
    id: u64,
    filter: Filter,
    queue: Queue,
}

/// Statistics of one subscription's queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueStats {
    /// Subscription name.
    pub name: String,
    /// Events queued now.
    pub len: usize,
    /// Queue capacity.
    pub capacity: usize,
    /// Events handed to the subscriber since it was created.
    pub delivered: u64,
    /// Events dropped since it was created.
    pub dropped: u64,
}

impl Bus {
    /// A bus whose subscriptions default to `capacity` events and `policy`.
    pub fn new(capacity: usize, policy: DropPolicy) -> Bus {
        Bus {
            inner: Arc::new(BusInner {
                subscribers: ArcSwap::from_pointee(Vec::new()),
                next_id: AtomicU64::new(0),
                published: AtomicU64::new(0),
                closed: AtomicBool::new(false),
                capacity,
                policy,
            }),
        }
    }

    /// Subscribes to the events that match `filter`, with the bus's default capacity and policy.
    pub fn subscribe(&self, name: &str, filter: Filter) -> Subscription {
        self.subscribe_with(name, filter, self.inner.capacity, self.inner.policy)
    }

    /// Subscribes with an explicit queue capacity and drop policy.
    pub fn subscribe_with(
        &self,
        name: &str,
        filter: Filter,
        capacity: usize,
        policy: DropPolicy,
    ) -> Subscription {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let subscriber =
            Arc::new(Subscriber { id, filter, queue: Queue::new(name.into(), capacity, policy) });
        if self.inner.closed.load(Ordering::Acquire) {
            subscriber.queue.close();
        }
        self.inner.subscribers.rcu(|list| {
            let mut list = Vec::clone(list);
            list.push(subscriber.clone());
            list
        });
        Subscription { bus: self.clone(), subscriber }
    }

    /// A sender that publishes into this bus, for a source.
    pub fn sender(&self) -> EventSender {
        EventSender::new(self.inner.clone())
    }

    /// A sender that also counts what it sends in a component's health.
    pub(crate) fn sender_for(&self, health: Arc<ComponentHealth>) -> EventSender {
        EventSender::new(Arc::new(CountedPublisher { bus: self.inner.clone(), health }))
    }

    /// A sender that applies `chain` (the enrichment stage) to each event before publishing it;
    /// the plain [`sender`](Bus::sender) when `chain` is empty.
    pub fn enriched_sender(&self, chain: &[Arc<dyn vigil_core::Enricher>]) -> EventSender {
        if chain.is_empty() {
            return self.sender();
        }
        EventSender::new(Arc::new(crate::enrich::EnrichingPublisher {
            inner: self.inner.clone(),
            chain: chain.into(),
        }))
    }

    /// Like `sender_for`, with the enrichment stage `chain` in front.
    pub(crate) fn enriched_sender_for(
        &self,
        health: Arc<ComponentHealth>,
        chain: &[Arc<dyn vigil_core::Enricher>],
    ) -> EventSender {
        if chain.is_empty() {
            return self.sender_for(health);
        }
        EventSender::new(Arc::new(crate::enrich::EnrichingPublisher {
            inner: Arc::new(CountedPublisher { bus: self.inner.clone(), health }),
            chain: chain.into(),
        }))
    }

    /// Publishes one event to every matching subscriber, waiting for room where a queue is full
    /// and its policy is `Block`.
    pub async fn publish(&self, event: Event) -> Result<(), SendError> {
        self.publish_shared(Arc::new(event)).await
    }

    /// Publishes a shared event.
    pub async fn publish_shared(&self, event: Arc<Event>) -> Result<(), SendError> {
        if let Some(pending) = self.inner.publish(event)? {
            pending.await;
        }
        Ok(())
    }

    /// Publishes several events in order, amortising wake-ups over the batch.
    pub async fn publish_batch(&self, events: Vec<Arc<Event>>) -> Result<(), SendError> {
        if let Some(pending) = self.inner.clone().publish_batch(events)? {
            pending.await;
        }
        Ok(())
    }

    /// Publishes without waiting: returns the pending delivery, if a queue was full.
    pub fn try_publish(&self, event: Arc<Event>) -> Result<Option<PendingDelivery>, SendError> {
        self.inner.publish(event)
    }

    /// Events published since the bus was made.
    pub fn published(&self) -> u64 {
        self.inner.published.load(Ordering::Relaxed)
    }

    /// Events dropped by all current subscriptions.
    pub fn dropped(&self) -> u64 {
        self.inner.subscribers.load().iter().map(|it| it.queue.dropped()).sum()
    }

    /// Statistics of every current subscription.
    pub fn queue_stats(&self) -> Vec<QueueStats> {
        self.inner
            .subscribers
            .load()
            .iter()
            .map(|it| QueueStats {
                name: it.queue.name().to_owned(),
                len: it.queue.len(),
                capacity: it.queue.capacity(),
                delivered: it.queue.delivered(),
                dropped: it.queue.dropped(),
            })
            .collect()
    }

    /// Refuses further publishes and closes every subscription (each still drains).
    pub fn close(&self) {
        self.inner.closed.store(true, Ordering::Release);
        for it in self.inner.subscribers.load().iter() {
            it.queue.close();
        }
    }
}

impl Publish for BusInner {
    #[inline]
    fn publish(&self, event: Arc<Event>) -> Result<Option<PendingDelivery>, SendError> {
        if self.closed.load(Ordering::Relaxed) {
            return Err(SendError);
        }
        self.published.fetch_add(1, Ordering::Relaxed);
        let subscribers = self.subscribers.load();
        let mut blocked: Vec<Arc<Subscriber>> = Vec::new();
        // Push quietly, then one fence for all the queues pushed to (the first 64 are tracked
        // in a bit set; past that, every queue is checked), then wake whoever sleeps.
        let mut pushed = 0u64;
        for (idx, sub) in subscribers.iter().enumerate() {
            if !sub.filter.matches(&event) {
                continue;
            }
            match sub.queue.try_push_quiet(event.clone()) {
                Ok(()) => pushed |= 1u64.checked_shl(idx as u32).unwrap_or(u64::MAX),
                Err(_) => blocked.push(sub.clone()),
            }
        }
        if pushed != 0 {
            std::sync::atomic::fence(Ordering::SeqCst);
            for (idx, sub) in subscribers.iter().enumerate() {
                if idx >= 64 || pushed & (1 << idx) != 0 {
                    sub.queue.wake_consumer_fenced();
                }
            }
        }
        if blocked.is_empty() {
            return Ok(None);
        }
        Ok(Some(Box::pin(async move {
            for sub in blocked {
                sub.queue.push(event.clone()).await;
            }
        })))
    }

    fn publish_batch(
        self: Arc<Self>,
        events: Vec<Arc<Event>>,
    ) -> Result<Option<PendingDelivery>, SendError> {
        if self.closed.load(Ordering::Relaxed) {
            return Err(SendError);
        }
        self.published.fetch_add(events.len() as u64, Ordering::Relaxed);
        let subscribers = self.subscribers.load();
        // Subscriber by subscriber: one wake-up per queue per batch. Once a queue is full, the
        // rest of its events wait behind the blocked one, so each queue keeps publish order.
        let mut blocked: Vec<(Arc<Subscriber>, Vec<Arc<Event>>)> = Vec::new();
        for sub in subscribers.iter() {
            let mut waiting: Vec<Arc<Event>> = Vec::new();
            for event in &events {
                if !sub.filter.matches(event) {
                    continue;
                }
                if !waiting.is_empty() {
                    waiting.push(event.clone());
                } else if let Err(back) = sub.queue.try_push_quiet(event.clone()) {
                    waiting.push(back);
                }
            }
            sub.queue.wake_consumer();
            if !waiting.is_empty() {
                blocked.push((sub.clone(), waiting));
            }
        }
        if blocked.is_empty() {
            return Ok(None);
        }
        Ok(Some(Box::pin(async move {
            for (sub, waiting) in blocked {
                for event in waiting {
                    sub.queue.push(event).await;
                }
            }
        })))
    }
}

/// Publishes into the bus and counts each event in the sending component's health.
struct CountedPublisher {
    bus: Arc<BusInner>,
    health: Arc<ComponentHealth>,
}

impl Publish for CountedPublisher {
    fn publish(&self, event: Arc<Event>) -> Result<Option<PendingDelivery>, SendError> {
        self.health.add_events(1);
        self.bus.publish(event)
    }

    fn publish_batch(
        self: Arc<Self>,
        events: Vec<Arc<Event>>,
    ) -> Result<Option<PendingDelivery>, SendError> {
        self.health.add_events(events.len() as u64);
        self.bus.clone().publish_batch(events)
    }
}

/// A subscription: receives the matching events in publish order. Dropping it unsubscribes.
pub struct Subscription {
    bus: Bus,
    subscriber: Arc<Subscriber>,
}

/// A handle that closes a subscription from elsewhere (the runtime uses it at shutdown).
#[derive(Clone)]
pub struct SubscriptionCloser {
    subscriber: Arc<Subscriber>,
}

impl SubscriptionCloser {
    /// Stops the subscription accepting events; its receiver drains what is queued, then ends.
    pub fn close(&self) {
        self.subscriber.queue.close();
    }

    /// Events waiting in the queue.
    pub fn len(&self) -> usize {
        self.subscriber.queue.len()
    }

    /// Whether the queue is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Events dropped by the queue.
    pub fn dropped(&self) -> u64 {
        self.subscriber.queue.dropped()
    }
}

impl Subscription {
    /// The next event; `None` once the subscription is closed and drained.
    pub async fn recv(&mut self) -> Option<Arc<Event>> {
        let mut buf = Vec::with_capacity(1);
        if self.subscriber.queue.recv_batch(&mut buf, 1).await { buf.pop() } else { None }
    }

    /// Appends up to `max` events to `buf`, waiting for at least one. Returns `false` once the
    /// subscription is closed and drained. Cancel-safe.
    pub async fn recv_batch(&mut self, buf: &mut Vec<Arc<Event>>, max: usize) -> bool {
        self.subscriber.queue.recv_batch(buf, max).await
    }

    /// The next event if one is queued.
    pub fn try_recv(&mut self) -> Option<Arc<Event>> {
        self.subscriber.queue.try_pop()
    }

    /// Events waiting in the queue.
    pub fn len(&self) -> usize {
        self.subscriber.queue.len()
    }

    /// Whether the queue is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The queue's capacity: the most events this subscription can ever hold.
    pub fn capacity(&self) -> usize {
        self.subscriber.queue.capacity()
    }

    /// Events this subscription dropped.
    pub fn dropped(&self) -> u64 {
        self.subscriber.queue.dropped()
    }

    /// A handle that can close this subscription from another task.
    pub fn closer(&self) -> SubscriptionCloser {
        SubscriptionCloser { subscriber: self.subscriber.clone() }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.subscriber.queue.close();
        let id = self.subscriber.id;
        self.bus
            .inner
            .subscribers
            .rcu(|list| list.iter().filter(|it| it.id != id).cloned().collect::<Vec<_>>());
    }
}

#[cfg(test)]
mod tests {
    use vigil_event::{EventKind, Finding, FindingLevel, LogEvent, Payload, Severity};

    use super::*;

    fn log(source: &str, action: &str, severity: Severity) -> Event {
        let log = LogEvent { action: Some(action.into()), ..LogEvent::new("sshd", "m") };
        Event::new("h", source, Payload::Log(log)).with_severity(severity)
    }

    fn drain(sub: &mut Subscription) -> Vec<Arc<Event>> {
        std::iter::from_fn(|| sub.try_recv()).collect()
    }

    #[tokio::test]
    async fn filters_deliver_exactly_the_matching_events() {
        let bus = Bus::new(64, DropPolicy::Block);
        let mut all = bus.subscribe("all", Filter::any());
        let mut logs = bus.subscribe("logs", Filter::any().kinds([EventKind::Log]));
        let mut auth = bus.subscribe("auth", Filter::any().source("auth"));
        let mut warn = bus.subscribe("warn", Filter::any().min_severity(Severity::Warning));
        let mut failed =
            bus.subscribe("failed", Filter::any().field_eq("action", "failed_password"));

        let events = vec![
            log("auth", "failed_password", Severity::Warning),
            log("auth", "accepted_password", Severity::Info),
            log("web", "failed_password", Severity::Info),
            Event::new(
                "h",
                "sshd_detector",
                Payload::Finding(Finding::new(FindingLevel::Error, "X", "sshd", "s")),
            ),
        ];
        for event in &events {
            bus.publish(event.clone()).await.unwrap();
        }
        let ids = |got: Vec<Arc<Event>>| got.iter().map(|it| it.id).collect::<Vec<_>>();
        let expect = |idx: &[usize]| idx.iter().map(|&i| events[i].id).collect::<Vec<_>>();
        assert_eq!(ids(drain(&mut all)), expect(&[0, 1, 2, 3]));
        assert_eq!(ids(drain(&mut logs)), expect(&[0, 1, 2]));
        assert_eq!(ids(drain(&mut auth)), expect(&[0, 1]));
        assert_eq!(ids(drain(&mut warn)), expect(&[0, 3]));
        assert_eq!(ids(drain(&mut failed)), expect(&[0, 2]));
        assert_eq!(bus.published(), 4);
    }

    #[tokio::test]
    async fn dropping_a_subscription_unsubscribes_and_closing_refuses_publishes() {
        let bus = Bus::new(4, DropPolicy::Block);
        let sub = bus.subscribe("gone", Filter::any());
        assert_eq!(bus.queue_stats().len(), 1);
        drop(sub);
        assert!(bus.queue_stats().is_empty());
        let mut late = bus.subscribe("late", Filter::any());
        bus.close();
        assert!(bus.publish(log("a", "b", Severity::Info)).await.is_err());
        assert!(late.recv().await.is_none());
    }

    #[tokio::test]
    async fn a_fast_producer_stays_within_the_queue_bound() {
        let bus = Bus::new(128, DropPolicy::DropOldest);
        let mut slow = bus.subscribe("slow", Filter::any());
        let sender = bus.sender();
        for n in 0..100_000 {
            sender.send(log("s", &n.to_string(), Severity::Info)).await.unwrap();
            assert!(slow.len() <= slow.capacity());
        }
        assert_eq!(slow.len(), 128);
        assert_eq!(slow.dropped(), 100_000 - 128);
        let newest = drain(&mut slow).pop().unwrap();
        assert!(newest.field("action").unwrap().matches("99999"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn batches_keep_order_and_lose_nothing_when_queues_are_full() {
        let bus = Bus::new(8, DropPolicy::Block);
        let even = bus.subscribe("even", Filter::any().field_eq("action", "even"));
        let all = bus.subscribe("all", Filter::any());
        let reader = |mut sub: Subscription| {
            tokio::spawn(async move {
                let mut got = Vec::new();
                let mut buf = Vec::new();
                while sub.recv_batch(&mut buf, 3).await {
                    got.extend(buf.drain(..).map(|it| it.field("message").unwrap().to_string()));
                }
                got
            })
        };
        let (even_reader, all_reader) = (reader(even), reader(all));
        for chunk in (0..1000).collect::<Vec<u32>>().chunks(50) {
            let batch = chunk
                .iter()
                .map(|n| {
                    let action = if n % 2 == 0 { "even" } else { "odd" };
                    let log = LogEvent {
                        action: Some(action.into()),
                        ..LogEvent::new("t", n.to_string())
                    };
                    Arc::new(Event::new("h", "s", Payload::Log(log)))
                })
                .collect();
            bus.publish_batch(batch).await.unwrap();
        }
        bus.close();
        let expect_all: Vec<String> = (0..1000).map(|n| n.to_string()).collect();
        let expect_even: Vec<String> = (0..1000).step_by(2).map(|n| n.to_string()).collect();
        assert_eq!(all_reader.await.unwrap(), expect_all);
        assert_eq!(even_reader.await.unwrap(), expect_even);
        assert_eq!(bus.dropped(), 0);
    }
}
