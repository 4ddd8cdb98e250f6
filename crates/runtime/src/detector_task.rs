//! The task that drives one detector: feeds it its subscription, publishes what it dispatches,
//! ticks it, answers statistics requests and persists its state.

use std::{
    panic::{AssertUnwindSafe, catch_unwind},
    sync::Arc,
    time::Duration,
};

use tokio::sync::{mpsc, oneshot};
use vigil_core::{Detector, DetectorContext, StateStore, Statistics};

use crate::{
    Bus, Subscription,
    health::{ComponentHealth, ComponentState},
    supervisor::{Backoff, panic_message, pause_after_panic},
};

/// The state key a detector's state is saved under.
pub(crate) fn state_key(name: &str) -> String {
    format!("detector.{name}")
}

pub(crate) struct DetectorTask {
    pub(crate) detector: Box<dyn Detector>,
    pub(crate) subscription: Subscription,
    pub(crate) bus: Bus,
    pub(crate) ctx: DetectorContext,
    pub(crate) health: Arc<ComponentHealth>,
    pub(crate) backoff: Backoff,
    pub(crate) state: Arc<dyn StateStore>,
    pub(crate) save_interval: Duration,
    pub(crate) batch_size: usize,
    pub(crate) debug_logging: bool,
    pub(crate) requests: mpsc::Receiver<oneshot::Sender<Statistics>>,
}

impl DetectorTask {
    /// Runs until the subscription is closed and drained; returns the final statistics.
    pub(crate) async fn run(mut self) -> Statistics {
        let name = self.health.name().to_owned();
        self.health.set_state(ComponentState::Running);
        let mut buf = Vec::with_capacity(self.batch_size);
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut save = tokio::time::interval(self.save_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        save.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        save.reset();
        loop {
            tokio::select! {
                biased;
                Some(reply) = self.requests.recv() => {
                    let _ = reply.send(self.detector.statistics());
                }
                more = self.subscription.recv_batch(&mut buf, self.batch_size) => {
                    if !more {
                        break;
                    }
                    self.handle_batch(&mut buf).await;
                }
                _ = tick.tick() => {
                    let now = chrono::Utc::now();
                    let detector = &mut self.detector;
                    let ctx = &mut self.ctx;
                    if let Err(panic) = catch_unwind(AssertUnwindSafe(|| detector.tick(now, ctx))) {
                        pause_after_panic(&self.health, &mut self.backoff, panic_message(&*panic)).await;
                    }
                    self.publish_dispatched().await;
                }
                _ = save.tick() => self.save_state(&name),
            }
        }
        self.save_state(&name);
        self.health.set_state(ComponentState::Stopped);
        self.detector.statistics()
    }

    async fn handle_batch(&mut self, buf: &mut Vec<Arc<vigil_event::Event>>) {
        let name = self.health.name().to_owned();
        let n = buf.len() as u64;
        for event in buf.drain(..) {
            let detector = &mut self.detector;
            let ctx = &mut self.ctx;
            match catch_unwind(AssertUnwindSafe(|| detector.handle(&event, ctx))) {
                Ok(Ok(())) => {}
                Ok(Err(err)) => {
                    tracing::warn!(detector = %name, event = %event.id, error = %err, "Detector could not handle an event");
                    self.health.record_error(err.to_string());
                }
                Err(panic) => {
                    self.publish_dispatched().await;
                    pause_after_panic(&self.health, &mut self.backoff, panic_message(&*panic))
                        .await;
                }
            }
        }
        self.health.add_events(n);
        self.publish_dispatched().await;
    }

    async fn publish_dispatched(&mut self) {
        if self.ctx.is_empty() {
            return;
        }
        for event in self.ctx.take() {
            if self.debug_logging {
                tracing::debug!(source = %event.source, kind = %event.kind(), id = %event.id, "Dispatching event");
            }
            if self.bus.publish(event).await.is_err() {
                tracing::warn!(detector = %self.health.name(), "Bus closed; a dispatched event was lost");
            }
        }
    }

    fn save_state(&self, name: &str) {
        let Some(state) = self.detector.save_state() else { return };
        if let Err(err) = self.state.save(&state_key(name), &state) {
            tracing::warn!(detector = %name, error = %err, "Could not save detector state");
            self.health.record_error(err.to_string());
        }
    }
}
