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
