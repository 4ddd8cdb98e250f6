//! The bounded sender a source publishes into.
//!
//! [`EventSender`] is a cheap, cloneable handle over whatever delivers events — in the agent, the
//! runtime's bus, whose queues are all bounded. Its fast path is one virtual call and no
//! allocation beyond the event's `Arc`; only when a queue is full and the configured policy is
//! to wait does a send allocate the future that waits for room.

use std::{fmt, future::Future, pin::Pin, sync::Arc};

use tokio::sync::mpsc;
use vigil_event::Event;

/// A future that completes a delayed delivery.
pub type PendingDelivery = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// The event could not be sent: the receiving side has shut down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("event channel closed")]
pub struct SendError;

/// Something that delivers events: the runtime's bus, or a plain channel in tests.
pub trait Publish: Send + Sync + 'static {
    /// Delivers one event. `Ok(None)` means delivered (or dropped by a drop-oldest policy, which
    /// counts it); `Ok(Some(pending))` means a queue is full and the policy is to wait: awaiting
    /// `pending` completes the delivery.
    fn publish(&self, event: Arc<Event>) -> Result<Option<PendingDelivery>, SendError>;

    /// Delivers several events in order. Implementations SHOULD amortise per-publish costs
    /// (wake-ups, fences) over the batch; the default publishes one by one. Events after a
    /// blocked one are delivered by the returned future, after it, so order is kept; if the
    /// pipeline closes meanwhile they are dropped (the agent is shutting down).
    fn publish_batch(
        self: Arc<Self>,
        events: Vec<Arc<Event>>,
    ) -> Result<Option<PendingDelivery>, SendError> {
        let mut iter = events.into_iter();
        while let Some(event) = iter.next() {
            if let Some(wait) = self.publish(event)? {
                let rest: Vec<Arc<Event>> = iter.collect();
                return Ok(Some(Box::pin(async move {
                    wait.await;
                    for event in rest {
                        if let Ok(Some(wait)) = self.publish(event) {
                            wait.await;
                        }
                    }
                })));
            }
        }
        Ok(None)
    }
}

/// A cloneable handle that sends events into a bounded pipeline.
#[derive(Clone)]
pub struct EventSender {
    inner: Arc<dyn Publish>,
}

impl fmt::Debug for EventSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventSender").finish_non_exhaustive()
    }
}

impl EventSender {
    /// A sender over any [`Publish`] implementation.
    pub fn new(inner: Arc<dyn Publish>) -> EventSender {
        EventSender { inner }
    }

    /// A sender backed by a bounded tokio channel of `capacity` events, with its receiver: for
    /// testing a source on its own.
    pub fn channel(capacity: usize) -> (EventSender, mpsc::Receiver<Arc<Event>>) {
        let (tx, rx) = mpsc::channel(capacity);
        (EventSender::new(Arc::new(ChannelPublisher(tx))), rx)
    }

    /// Sends one event, waiting for room when the pipeline's policy says to.
    pub async fn send(&self, event: Event) -> Result<(), SendError> {
        self.send_shared(Arc::new(event)).await
    }

    /// Sends several events in order; cheaper per event than [`send`](EventSender::send).
    pub async fn send_batch(&self, events: Vec<Event>) -> Result<(), SendError> {
        let events = events.into_iter().map(Arc::new).collect();
        if let Some(pending) = self.inner.clone().publish_batch(events)? {
            pending.await;
        }
        Ok(())
    }

    /// Sends an event that is already shared.
    pub async fn send_shared(&self, event: Arc<Event>) -> Result<(), SendError> {
        if let Some(pending) = self.inner.publish(event)? {
            pending.await;
        }
        Ok(())
    }
}

struct ChannelPublisher(mpsc::Sender<Arc<Event>>);

impl Publish for ChannelPublisher {
    fn publish(&self, event: Arc<Event>) -> Result<Option<PendingDelivery>, SendError> {
        match self.0.try_send(event) {
            Ok(()) => Ok(None),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(SendError),
            Err(mpsc::error::TrySendError::Full(event)) => {
                let tx = self.0.clone();
                Ok(Some(Box::pin(async move {
                    // A closed receiver during the wait means shutdown; the event has nowhere to go.
                    let _ = tx.send(event).await;
                })))
            }
        }
    }
}
