//! The jails as one detector on the bus: log events in, `Ban` requests out.

use vigil_core::{ComponentError, Detector, DetectorContext, Filter, Statistics};
use vigil_event::{Event, EventKind, Payload, Severity, Value};

use super::JailSet;
use crate::Observation;

/// Runs every configured jail over the log events it receives and dispatches a
/// [`Ban`](vigil_event::Ban) payload in stage `requested` whenever a jail's threshold is crossed.
/// The ban manager decides and applies bans; this detector only asks.
#[derive(Debug)]
pub struct JailsDetector {
    jails: JailSet,
    out: Vec<vigil_event::Ban>,
}

impl JailsDetector {
    /// The detector's name, the source of its ban requests and its state key.
    pub const NAME: &'static str = "jails";

    /// A detector over `jails`.
    pub fn new(jails: JailSet) -> JailsDetector {
        JailsDetector { jails, out: Vec::new() }
    }

    /// The filter to register it with: log events.
    pub fn filter() -> Filter {
        Filter::any().kinds([EventKind::Log])
    }

    /// The jails.
    pub fn jails(&self) -> &JailSet {
        &self.jails
    }
}

impl Detector for JailsDetector {
    fn name(&self) -> &str {
        JailsDetector::NAME
    }

    fn handle(&mut self, event: &Event, ctx: &mut DetectorContext) -> Result<(), ComponentError> {
        let Payload::Log(log) = &event.payload else { return Ok(()) };
        let obs = Observation::from_log(log, event.timestamp);
        self.jails.observe(&obs, &mut self.out);
        for ban in self.out.drain(..) {
            let payload = Payload::Ban(ban);
            let request = Event::new(event.host.clone(), JailsDetector::NAME, payload)
                .with_severity(Severity::Warning);
            ctx.dispatch(request);
        }
        Ok(())
    }

    fn statistics(&self) -> Statistics {
        let mut stats = Statistics::new();
        stats.insert("jails".into(), self.jails.statistics());
        stats
    }

    fn save_state(&self) -> Option<Value> {
        Some(self.jails.save())
    }

    fn restore_state(&mut self, state: Value) -> Result<(), ComponentError> {
        self.jails.restore(&state).map_err(ComponentError::msg)
    }
}
