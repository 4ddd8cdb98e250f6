//! The bounded queue behind every subscription.
//!
//! One fixed-size ring per subscriber (`crossbeam_queue::ArrayQueue`), allocated once, so memory is
//! bounded by construction: capacity × one pointer, whatever the load. When the ring is full the
//! configured [`DropPolicy`] decides: `Block` makes the producer wait for room (backpressure to
//! the source), `DropOldest` overwrites the oldest event, counts it and logs at exponentially
//! spaced totals (1, 2, 4, 8, … drops) so a flood cannot flood the log too.
//!
//! Wake-ups avoid the common-case cost: a producer only touches the consumer's `Notify` when the
//! consumer has said it is about to sleep. The two sides use the classic store → SeqCst fence →
//! load handshake on (`consumer_waiting`, ring) and (`producers_waiting`, ring), so no wake-up
//! is lost: either the producer sees the flag, or the consumer sees the item.

use std::sync::{
    Arc,
    atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering, fence},
};

use crossbeam_queue::ArrayQueue;
use tokio::sync::Notify;
use vigil_event::Event;

/// What a full queue does with one more event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DropPolicy {
    /// The producer waits for room: nothing is dropped, sources slow down.
    #[default]
    Block,
    /// The oldest queued event is dropped (and counted) to make room: producers never wait.
    DropOldest,
}

/// A bounded single-consumer, multi-producer queue of shared events.
pub(crate) struct Queue {
    name: Arc<str>,
    items: ArrayQueue<Arc<Event>>,
    policy: DropPolicy,
    closed: AtomicBool,
    consumer_waiting: AtomicBool,
    producers_waiting: AtomicUsize,
    data_ready: Notify,
    space_ready: Notify,
    delivered: AtomicU64,
    dropped: AtomicU64,
}

impl Queue {
    pub(crate) fn new(name: Arc<str>, capacity: usize, policy: DropPolicy) -> Queue {
        Queue {
            name,
            items: ArrayQueue::new(capacity.max(1)),
            policy,
            closed: AtomicBool::new(false),
            consumer_waiting: AtomicBool::new(false),
            producers_waiting: AtomicUsize::new(0),
            data_ready: Notify::new(),
            space_ready: Notify::new(),
            delivered: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
        }
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    pub(crate) fn capacity(&self) -> usize {
        self.items.capacity()
    }

    /// Events handed to the consumer so far.
    pub(crate) fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed)
    }

    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Pushes without waiting. Under `Block`, a full queue hands the event back.
    #[inline]
    pub(crate) fn try_push(&self, event: Arc<Event>) -> Result<(), Arc<Event>> {
        self.try_push_quiet(event)?;
        self.wake_consumer();
        Ok(())
    }

    /// Pushes without waiting and without waking the consumer: the caller pushes a batch and
    /// then calls [`wake_consumer`](Queue::wake_consumer) once.
    #[inline]
    pub(crate) fn try_push_quiet(&self, event: Arc<Event>) -> Result<(), Arc<Event>> {
        if self.closed.load(Ordering::Relaxed) {
            self.count_drop("closed");
            return Ok(());
        }
        match self.policy {
            DropPolicy::Block => self.items.push(event)?,
            DropPolicy::DropOldest => {
                if self.items.force_push(event).is_some() {
                    self.count_drop("full");
                }
            }
        }
        Ok(())
    }

    /// Pushes, waiting for room under `Block`. Returns when pushed or when the queue closed.
    pub(crate) async fn push(&self, event: Arc<Event>) {
        let mut event = match self.try_push(event) {
            Ok(()) => return,
            Err(back) => back,
        };
        loop {
            let notified = self.space_ready.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            self.producers_waiting.fetch_add(1, Ordering::SeqCst);
            fence(Ordering::SeqCst);
            let retry = self.try_push(event);
            match retry {
                Ok(()) => {
                    self.producers_waiting.fetch_sub(1, Ordering::SeqCst);
                    return;
                }
                Err(back) => {
                    event = back;
                    notified.await;
                    self.producers_waiting.fetch_sub(1, Ordering::SeqCst);
                }
            }
        }
    }

    /// Moves up to `max` events into `buf`, waiting until at least one is there. Returns `false`
    /// once the queue is closed and empty. Cancel-safe: events already moved stay in `buf`.
    pub(crate) async fn recv_batch(&self, buf: &mut Vec<Arc<Event>>, max: usize) -> bool {
        loop {
            let start = buf.len();
            while buf.len() - start < max {
                match self.items.pop() {
                    Some(it) => buf.push(it),
                    None => break,
                }
            }
            if buf.len() > start {
                self.delivered.fetch_add((buf.len() - start) as u64, Ordering::Relaxed);
                self.wake_producers();
                return true;
            }
            if self.is_closed() && self.items.is_empty() {
                return false;
            }
            let notified = self.data_ready.notified();
            self.consumer_waiting.store(true, Ordering::Relaxed);
            fence(Ordering::SeqCst);
            if !self.items.is_empty() || self.is_closed() {
                self.consumer_waiting.store(false, Ordering::Relaxed);
                continue;
            }
            notified.await;
        }
    }

    /// Takes one event without waiting.
    pub(crate) fn try_pop(&self) -> Option<Arc<Event>> {
        let it = self.items.pop();
        if it.is_some() {
            self.delivered.fetch_add(1, Ordering::Relaxed);
            self.wake_producers();
        }
        it
    }

    /// Stops accepting events; the consumer still receives what is queued.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.data_ready.notify_one();
        self.space_ready.notify_waiters();
    }

    /// Wakes the consumer if it is waiting.
    #[inline]
    pub(crate) fn wake_consumer(&self) {
        fence(Ordering::SeqCst);
        self.wake_consumer_fenced();
    }

    /// [`wake_consumer`](Queue::wake_consumer) for a caller that has already issued the SeqCst
    /// fence after its pushes (one fence can serve several queues).
    #[inline]
    pub(crate) fn wake_consumer_fenced(&self) {
        if self.consumer_waiting.load(Ordering::Relaxed)
            && self.consumer_waiting.swap(false, Ordering::AcqRel)
        {
            self.data_ready.notify_one();
        }
    }

    #[inline]
    fn wake_producers(&self) {
        fence(Ordering::SeqCst);
        if self.producers_waiting.load(Ordering::Relaxed) > 0 {
            self.space_ready.notify_waiters();
        }
    }

    fn count_drop(&self, why: &'static str) {
        let total = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
        if total.is_power_of_two() {
            tracing::warn!(
                queue = %self.name,
                reason = why,
                dropped_total = total,
                capacity = self.items.capacity(),
                "Queue dropped events"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use vigil_event::{LogEvent, Payload};

    use super::*;

    fn ev(n: usize) -> Arc<Event> {
        Arc::new(Event::new("h", "s", Payload::Log(LogEvent::new("t", n.to_string()))))
    }

    fn message(event: &Event) -> String {
        match &event.payload {
            Payload::Log(it) => it.message.clone(),
            _ => unreachable!(),
        }
    }

    #[tokio::test]
    async fn drop_oldest_keeps_the_newest_and_counts_the_rest() {
        let q = Queue::new("q".into(), 4, DropPolicy::DropOldest);
        for n in 0..10 {
            q.try_push(ev(n)).unwrap();
        }
        assert_eq!((q.len(), q.dropped(), q.delivered()), (4, 6, 0));
        let mut buf = Vec::new();
        assert!(q.recv_batch(&mut buf, 100).await);
        let got: Vec<String> = buf.iter().map(|it| message(it)).collect();
        assert_eq!(got, ["6", "7", "8", "9"]);
        assert_eq!(q.delivered(), 4);
    }

    #[tokio::test]
    async fn block_hands_back_when_full_and_push_waits_for_room() {
        let q = Arc::new(Queue::new("q".into(), 2, DropPolicy::Block));
        q.try_push(ev(0)).unwrap();
        q.try_push(ev(1)).unwrap();
        assert!(q.try_push(ev(2)).is_err());
        let producer = tokio::spawn({
            let q = q.clone();
            async move { q.push(ev(2)).await }
        });
        tokio::task::yield_now().await;
        assert!(!producer.is_finished(), "a full queue must make the producer wait");
        assert_eq!(message(&q.try_pop().unwrap()), "0");
        producer.await.unwrap();
        assert_eq!(q.len(), 2);
        assert_eq!(q.dropped(), 0);
    }

    #[tokio::test]
    async fn close_drains_then_ends() {
        let q = Queue::new("q".into(), 8, DropPolicy::Block);
        q.try_push(ev(0)).unwrap();
        q.close();
        q.try_push(ev(1)).unwrap();
        assert_eq!(q.dropped(), 1, "a push after close is counted as dropped");
        let mut buf = Vec::new();
        assert!(q.recv_batch(&mut buf, 8).await);
        buf.clear();
        assert!(!q.recv_batch(&mut buf, 8).await);
    }

    #[test]
    fn no_wakeup_is_lost_between_threads() {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
        rt.block_on(async {
            let q = Arc::new(Queue::new("q".into(), 16, DropPolicy::Block));
            let n = 200_000;
            let consumer = tokio::spawn({
                let q = q.clone();
                async move {
                    let mut buf = Vec::new();
                    let mut seen = 0;
                    while q.recv_batch(&mut buf, 64).await {
                        seen += buf.len();
                        buf.clear();
                    }
                    seen
                }
            });
            let event = ev(0);
            for _ in 0..n {
                q.push(event.clone()).await;
            }
            q.close();
            assert_eq!(consumer.await.unwrap(), n);
        });
    }
}
