//! Acknowledgement: the downstream says which lines are durable, and only then does a file's
//! checkpoint move past them.
//!
//! The tailer registers every line it sends (per stream, in order). A downstream component
//! acknowledges lines by their [`LineOrigin`] through an [`AckHandle`], in any order; a stream's
//! committed offset advances to the end of the longest acknowledged prefix of what was sent.
//! Acknowledgements of lines that were never sent, or are already behind the committed offset,
//! are ignored, so the bookkeeping is bounded by the number of lines in flight, which the tailer
//! caps.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex, MutexGuard},
};

use tokio::sync::Notify;
use vigil_core::Event;
use vigil_event::{LineOrigin, Payload};

/// When a file's checkpoint may advance past a line.
#[derive(Debug, Clone, Default)]
pub enum AckMode {
    /// As soon as the bus accepted the batch holding it: right when nothing downstream is
    /// durable on its own.
    #[default]
    OnPublish,
    /// When a downstream component acknowledged it through this handle (a store, once its
    /// transaction committed).
    External(AckHandle),
}

/// A cloneable handle through which a downstream component acknowledges lines once they are
/// durable. Cheap to clone; safe to use from any thread.
#[derive(Debug, Clone, Default)]
pub struct AckHandle {
    pub(crate) shared: Arc<AckShared>,
}

impl AckHandle {
    /// A new handle, to give to one tail source and to the component that acknowledges.
    pub fn new() -> AckHandle {
        AckHandle::default()
    }

    /// Acknowledges one line. Returns whether it was in flight (a repeated, unknown or stale
    /// acknowledgement is ignored).
    pub fn ack(&self, origin: &LineOrigin) -> bool {
        self.shared.ack(&origin.stream, origin.offset, origin.end)
    }

    /// Acknowledges the line an event was made from, if it was a tailed log line.
    pub fn ack_event(&self, event: &Event) -> bool {
        match &event.payload {
            Payload::Log(log) => log.origin.as_ref().is_some_and(|it| self.ack(it)),
            _ => false,
        }
    }
}

#[derive(Debug, Default)]
struct StreamAcks {
    /// End of the longest acknowledged prefix.
    committed: u64,
    /// End of the last line sent.
    sent_end: u64,
    /// Lines sent and not yet behind `committed`.
    in_flight: usize,
    /// Acknowledged lines beyond a gap: offset → end.
    acked: BTreeMap<u64, u64>,
}

/// The bookkeeping shared by a tailer and its [`AckHandle`]s.
#[derive(Debug, Default)]
pub(crate) struct AckShared {
    streams: Mutex<HashMap<Arc<str>, StreamAcks>>,
    notify: Notify,
}

impl AckShared {
    fn lock(&self) -> MutexGuard<'_, HashMap<Arc<str>, StreamAcks>> {
        self.streams.lock().unwrap_or_else(|it| it.into_inner())
    }

    /// Starts tracking a stream whose checkpoint is at `committed` (forgetting what was in
    /// flight for it before).
    pub(crate) fn register(&self, stream: &Arc<str>, committed: u64) {
        self.lock().insert(
            stream.clone(),
            StreamAcks { committed, sent_end: committed, ..StreamAcks::default() },
        );
    }

    /// Stops tracking a stream.
    pub(crate) fn unregister(&self, stream: &str) {
        self.lock().remove(stream);
    }

    /// Forgets every stream (a new run of the source starts from its checkpoint).
    pub(crate) fn clear(&self) {
        self.lock().clear();
    }

    /// Records that the line `offset..end` of `stream` was sent.
    pub(crate) fn sent(&self, stream: &str, offset: u64, end: u64) {
        if let Some(it) = self.lock().get_mut(stream)
            && offset >= it.sent_end
        {
            it.sent_end = end;
            it.in_flight += 1;
        }
    }

    pub(crate) fn ack(&self, stream: &str, offset: u64, end: u64) -> bool {
        let mut streams = self.lock();
        let Some(it) = streams.get_mut(stream) else { return false };
        if offset < it.committed || end > it.sent_end || end <= offset {
            return false;
        }
        if it.acked.insert(offset, end).is_some() {
            return false;
        }
        while let Some(end) = it.acked.remove(&it.committed) {
            it.committed = end;
            it.in_flight = it.in_flight.saturating_sub(1);
        }
        drop(streams);
        self.notify.notify_one();
        true
    }

    /// The committed offset of a stream and its lines in flight.
    pub(crate) fn committed(&self, stream: &str) -> Option<(u64, usize)> {
        self.lock().get(stream).map(|it| (it.committed, it.in_flight))
    }

    /// Lines in flight over all streams.
    pub(crate) fn in_flight(&self) -> usize {
        self.lock().values().map(|it| it.in_flight).sum()
    }

    /// Waits until an acknowledgement advances some stream.
    pub(crate) async fn advanced(&self) {
        self.notify.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_offset_follows_the_longest_acknowledged_prefix() {
        let handle = AckHandle::new();
        let shared = &handle.shared;
        let stream: Arc<str> = "file:1:2:ff".into();
        shared.register(&stream, 10);
        for (offset, end) in [(10, 20), (20, 25), (25, 40)] {
            shared.sent(&stream, offset, end);
        }
        let origin = |offset, end| LineOrigin { stream: stream.to_string(), offset, end };
        assert_eq!(shared.committed(&stream), Some((10, 3)));
        assert!(handle.ack(&origin(20, 25)), "out of order is kept");
        assert_eq!(shared.committed(&stream), Some((10, 3)), "a gap holds the prefix back");
        assert!(handle.ack(&origin(10, 20)));
        assert_eq!(shared.committed(&stream), Some((25, 1)));
        assert!(!handle.ack(&origin(10, 20)), "a repeat is ignored");
        assert!(!handle.ack(&origin(40, 50)), "a line never sent is ignored");
        assert!(!handle.ack(&LineOrigin { stream: "other".into(), offset: 0, end: 1 }));
        assert!(handle.ack(&origin(25, 40)));
        assert_eq!(shared.committed(&stream), Some((40, 0)));
        assert_eq!(shared.in_flight(), 0);
    }
}
