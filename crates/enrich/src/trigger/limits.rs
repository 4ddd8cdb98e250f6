//! Rate and concurrency limits of the analyses, on tokio's clock (so tests can pause time).

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicU32, Ordering},
};

use tokio::time::Instant;

/// A token bucket: `capacity` tokens, refilled at `capacity` per minute.
#[derive(Debug)]
pub(super) struct Bucket {
    capacity: f64,
    state: Mutex<(f64, Instant)>,
}

impl Bucket {
    pub(super) fn per_minute(capacity: u32) -> Bucket {
        let capacity = f64::from(capacity);
        Bucket { capacity, state: Mutex::new((capacity, Instant::now())) }
    }

    fn refill(&self, state: &mut (f64, Instant), now: Instant) {
        let elapsed = now.saturating_duration_since(state.1).as_secs_f64();
        state.0 = (state.0 + elapsed * self.capacity / 60.0).min(self.capacity);
        state.1 = now;
    }

    /// Takes a token if more than `reserve` (a share of the capacity) would be left before.
    pub(super) fn try_take(&self, reserve: f64, now: Instant) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|it| it.into_inner());
        self.refill(&mut state, now);
        let floor = (self.capacity * reserve).max(0.0);
        if state.0 >= 1.0 && state.0 - 1.0 >= floor - 1e-9 {
            state.0 -= 1.0;
            true
        } else {
            false
        }
    }

    /// Gives back a token taken for an analysis that did not run.
    pub(super) fn give_back(&self) {
        let mut state = self.state.lock().unwrap_or_else(|it| it.into_inner());
        state.0 = (state.0 + 1.0).min(self.capacity);
    }
}

/// Counts analyses in flight against a maximum.
#[derive(Debug)]
pub(super) struct Slots {
    max: u32,
    used: Arc<AtomicU32>,
}

/// An analysis slot; released when dropped.
#[derive(Debug)]
pub struct SlotGuard {
    used: Arc<AtomicU32>,
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        self.used.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Slots {
    pub(super) fn new(max: u32) -> Slots {
        Slots { max, used: Arc::new(AtomicU32::new(0)) }
    }

    pub(super) fn try_acquire(&self) -> Option<SlotGuard> {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < self.max).then_some(n + 1))
            .ok()
            .map(|_| SlotGuard { used: self.used.clone() })
    }
}
