//! What the line-reading correlation detectors share: the [`LineDetector`] trait that lets
//! `vigil replay` feed them borrowed lines, and the finding built from a crossed window.

use vigil_event::{Evidence, Finding, FindingLevel};

use crate::{Observation, observation::utc, window::Item};

/// A detector that reads log lines. `vigil replay` calls [`observe`](LineDetector::observe)
/// with borrowed lines; on the bus the same logic runs through
/// [`Detector::handle`](vigil_core::Detector::handle).
pub trait LineDetector: vigil_core::Detector {
    /// Reads one line; findings are pushed to `out`.
    fn observe(&mut self, obs: &Observation<'_>, out: &mut Vec<Finding>);
}

/// A finding for the items of a crossed window, with its evidence.
pub(crate) fn window_finding<V>(
    level: FindingLevel,
    name: &str,
    system: &str,
    summary: String,
    rule: String,
    window_ms: i64,
    items: Vec<Item<V>>,
) -> Finding {
    let evidence = Evidence {
        rule,
        count: items.len() as u64,
        window_seconds: (window_ms / 1000) as u64,
        first_seen: items.first().map(|it| utc(it.at_ms)),
        last_seen: items.last().map(|it| utc(it.at_ms)),
        lines: items.into_iter().map(|it| it.line).collect(),
        ..Evidence::default()
    };
    let mut finding = Finding::new(level, name, system, summary);
    if let Some(at) = evidence.last_seen {
        finding = finding.with_data("at", at.to_rfc3339());
    }
    finding.with_evidence(evidence)
}

/// `Detector::handle` of a line detector: a log event is observed as its line, anything else is
/// ignored; findings are dispatched through `ctx`.
pub(crate) fn handle_log<D: LineDetector>(
    detector: &mut D,
    event: &vigil_event::Event,
    ctx: &mut vigil_core::DetectorContext,
) {
    if let vigil_event::Payload::Log(log) = &event.payload {
        let mut out = Vec::new();
        detector.observe(&Observation::from_log(log, event.timestamp), &mut out);
        out.into_iter().for_each(|it| ctx.finding(it));
    }
}

/// Reads the `key` part of a detector's saved `state` (version 1), naming the detector in
/// the error when the state is of another version or shape.
pub(crate) fn saved_part<T: serde::de::DeserializeOwned>(
    detector: &str,
    state: &vigil_event::Value,
    key: &str,
) -> Result<T, vigil_core::ComponentError> {
    if state.get("version").and_then(vigil_event::Value::as_u64) != Some(1) {
        return Err(vigil_core::ComponentError::msg(format!(
            "invalid {detector} state: expected version 1"
        )));
    }
    serde_json::from_value(state[key].clone())
        .map_err(|err| vigil_core::ComponentError::msg(format!("invalid {detector} state: {err}")))
}
