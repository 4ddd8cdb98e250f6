//! Supervised tasks: every component runs isolated, and a failure is reported and retried.
//!
//! A source's `start` runs under `catch_unwind`; if it returns an error or panics, its health
//! says so, and it is started again after an exponential backoff (reset once a run has lasted
//! longer than the longest delay). Detectors and listeners are isolated per call: a panic while
//! handling one event or batch is caught, counted as a restart, and the component resumes after
//! its backoff with its queue intact. One bad component never stops the others.

use std::{any::Any, panic::AssertUnwindSafe, sync::Arc, time::Duration};

use futures_util::FutureExt;
use tokio::time::Instant;
use vigil_core::{EventSource, SourceContext};

use crate::health::{ComponentHealth, ComponentState};

/// Exponential backoff between restarts.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub(crate) fn new(initial: Duration, max: Duration) -> Backoff {
        Backoff { initial, max, next: initial }
    }

    /// The delay to wait now; the following one is twice as long, up to the maximum.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(self.max);
        delay
    }

    pub(crate) fn reset(&mut self) {
        self.next = self.initial;
    }

    pub(crate) fn max(&self) -> Duration {
        self.max
    }
}

/// The message of a caught panic.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        format!("panicked: {s}")
    } else if let Some(s) = payload.downcast_ref::<String>() {
        format!("panicked: {s}")
    } else {
        "panicked".to_owned()
    }
}

/// Records a caught panic of a detector or listener and waits out its backoff before the
/// component resumes (with its queue intact).
pub(crate) async fn pause_after_panic(
    health: &ComponentHealth,
    backoff: &mut Backoff,
    message: String,
) {
    let delay = backoff.next_delay();
    tracing::error!(
        component = %health.name(),
        role = %health.role(),
        error = %message,
        retry_in_ms = delay.as_millis() as u64,
        "Component panicked; resuming after backoff"
    );
    health.record_restart(message);
    tokio::time::sleep(delay).await;
    health.set_state(ComponentState::Running);
}

/// Runs a source until shutdown, restarting it with backoff when it fails or panics.
pub(crate) async fn supervise_source(
    source: Arc<dyn EventSource>,
    ctx: SourceContext,
    health: Arc<ComponentHealth>,
    mut backoff: Backoff,
) {
    let name = ctx.name.clone();
    loop {
        health.set_state(ComponentState::Running);
        let started = Instant::now();
        let result = AssertUnwindSafe(source.start(ctx.clone())).catch_unwind().await;
        let failure = match result {
            Ok(Ok(())) => None,
            Ok(Err(err)) => Some(err.to_string()),
            Err(panic) => Some(panic_message(&*panic)),
        };
        if ctx.shutdown.is_cancelled() {
            if let Some(message) = failure {
                tracing::warn!(source = %name, error = %message, "Source failed while stopping");
                health.record_error(message);
            }
            break;
        }
        let Some(message) = failure else {
            tracing::info!(source = %name, "Source finished");
            break;
        };
        if started.elapsed() > backoff.max() {
            backoff.reset();
        }
        let delay = backoff.next_delay();
        tracing::warn!(
            source = %name,
            error = %message,
            retry_in_ms = delay.as_millis() as u64,
            "Source failed; restarting after backoff"
        );
        health.record_restart(message);
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = ctx.shutdown.cancelled() => break,
        }
    }
    if let Err(err) = source.stop().await {
        tracing::warn!(source = %name, error = %err, "Source failed to stop cleanly");
        health.record_error(err.to_string());
    }
    health.set_state(ComponentState::Stopped);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_maximum_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(500));
        let got: Vec<u128> = (0..5).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(got, [100, 200, 400, 500, 500]);
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_millis(100));
    }

    #[test]
    fn panic_messages_are_extracted() {
        let caught = std::panic::catch_unwind(|| panic!("boom {}", 7)).unwrap_err();
        assert_eq!(panic_message(&*caught), "panicked: boom 7");
    }
}
