//! The `agent` source: publishes the agent's own health as an `agent_status` event at start and
//! then every health-check interval, so `vigil run --print` shows the agent working at once and
//! stores keep a history of the agent's health (like Vector's `internal_metrics` source).

use std::{sync::Arc, time::Duration};

use vigil_core::{
    ComponentError, EventSource, SourceCapabilities, SourceContext, async_trait, event::Payload,
};

use crate::{Bus, Health};

/// Publishes [`AgentStatus`](vigil_event::AgentStatus) events.
pub(crate) struct StatusSource {
    pub(crate) health: Arc<Health>,
    pub(crate) bus: Bus,
    pub(crate) interval: Duration,
}

/// The name of the status source.
pub const STATUS_SOURCE: &str = "agent";

#[async_trait]
impl EventSource for StatusSource {
    fn name(&self) -> &str {
        STATUS_SOURCE
    }

    fn capabilities(&self) -> SourceCapabilities {
        SourceCapabilities::PERFORMANCE
    }

    async fn start(&self, ctx: SourceContext) -> Result<(), ComponentError> {
        let mut ticker = tokio::time::interval(self.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                () = ctx.shutdown.cancelled() => return Ok(()),
            }
            let status = self.health.status(&self.bus);
            ctx.send(Payload::AgentStatus(status)).await?;
        }
    }
}
