//! The event tracer (seed 001 `event_tracer`, SPEC §4): the service an event is about and its
//! related services, a severity score from level and action, causality chains (failed logins →
//! ban, authentication failures → their cause, connection failures → their trigger, memory or
//! disk exhaustion), and aggregates by source, level, action, IP, user and service.

#[cfg(test)]
mod tests;
mod tracer;

pub use tracer::{
    Aggregates, Counts, EVENT_TRACER, EventTracer, EventTracerConfig, related_services,
    related_text, service_name, severity_score,
};
