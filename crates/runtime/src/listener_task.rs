//! The task that drives one listener: hands it batches from its subscription, flushes it on a
//! timer and at the end, and isolates its failures.

use std::{panic::AssertUnwindSafe, sync::Arc, time::Duration};

use futures_util::FutureExt;
use vigil_core::Listener;

use crate::{
    Subscription,
    health::{ComponentHealth, ComponentState},
    supervisor::{Backoff, panic_message, pause_after_panic},
};

pub(crate) struct ListenerTask {
    pub(crate) listener: Box<dyn Listener>,
    pub(crate) subscription: Subscription,
    pub(crate) health: Arc<ComponentHealth>,
    pub(crate) backoff: Backoff,
    pub(crate) batch_size: usize,
    pub(crate) flush_interval: Duration,
}

impl ListenerTask {
    /// Runs until the subscription is closed and drained, then flushes.
    pub(crate) async fn run(mut self) {
        let name = self.health.name().to_owned();
        self.health.set_state(ComponentState::Running);
        let mut buf = Vec::with_capacity(self.batch_size);
        let mut flush = tokio::time::interval(self.flush_interval);
        flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut dirty = false;
        loop {
            tokio::select! {
                more = self.subscription.recv_batch(&mut buf, self.batch_size) => {
                    if !more {
                        break;
                    }
                    let result = AssertUnwindSafe(self.listener.handle(&buf)).catch_unwind().await;
                    self.health.add_events(buf.len() as u64);
                    buf.clear();
                    dirty = true;
                    self.check(&name, "handle", result).await;
                }
                _ = flush.tick(), if dirty => {
                    let result = AssertUnwindSafe(self.listener.flush()).catch_unwind().await;
                    // A failed flush (a destination that is down) is tried again next tick.
                    dirty = !matches!(result, Ok(Ok(())));
                    self.check(&name, "flush", result).await;
                }
            }
        }
        let result = AssertUnwindSafe(self.listener.flush()).catch_unwind().await;
        self.check(&name, "flush", result).await;
        self.health.set_state(ComponentState::Stopped);
    }

    async fn check(
        &mut self,
        name: &str,
        what: &str,
        result: std::thread::Result<Result<(), vigil_core::ComponentError>>,
    ) {
        match result {
            Ok(Ok(())) => {}
            Ok(Err(err)) => {
                tracing::warn!(listener = %name, call = what, error = %err, "Listener failed");
                self.health.record_error(err.to_string());
            }
            Err(panic) => {
                pause_after_panic(&self.health, &mut self.backoff, panic_message(&*panic)).await;
            }
        }
    }
}
