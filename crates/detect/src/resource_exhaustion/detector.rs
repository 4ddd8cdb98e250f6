//! The resource-exhaustion detector: episodes of a resource above its threshold.
//!
//! Resources are keyed `memory`, `swap`, `disk:<mount>` and `fds:<pid>`; an episode starts at the
//! first sample above the threshold and ends at the first sample below it (or the process's
//! exit). When an episode has lasted `duration`, one `ResourceExhaustion` finding is dispatched
//! with its evidence: the rule, the samples counted, the first and last sample, the peak.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use vigil_core::{ComponentError, Detector, DetectorContext, Statistics};
use vigil_event::{Event, Evidence, Finding, FindingLevel, Payload, ProcessPhase, Value};

use super::ResourceExhaustionConfig;
use crate::{duration_text::millis, observation::utc};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Episode {
    since_ms: i64,
    last_ms: i64,
    samples: u64,
    peak: f64,
    fired: bool,
}

/// One measurement of a resource.
struct Sample<'a> {
    key: String,
    what: &'a str,
    value: f64,
    threshold: f64,
    unit: &'static str,
}

/// See the module docs.
#[derive(Debug, Clone)]
pub struct ResourceExhaustionDetector {
    config: ResourceExhaustionConfig,
    duration_ms: i64,
    episodes: HashMap<String, Episode>,
    exhausted: u64,
    evicted: u64,
}

fn percent_used(total: u64, available: u64) -> Option<f64> {
    (total > 0).then(|| total.saturating_sub(available) as f64 * 100.0 / total as f64)
}

impl ResourceExhaustionDetector {
    /// The detector's name.
    pub const NAME: &'static str = "resource_exhaustion";
    /// The finding's name.
    pub const FINDING_NAME: &'static str = "ResourceExhaustion";

    /// A detector configured by `config`.
    pub fn new(config: &ResourceExhaustionConfig) -> ResourceExhaustionDetector {
        ResourceExhaustionDetector {
            config: config.clone(),
            duration_ms: millis(config.duration),
            episodes: HashMap::new(),
            exhausted: 0,
            evicted: 0,
        }
    }

    fn sample(&mut self, s: Sample<'_>, at_ms: i64, event_id: &str, out: &mut Vec<Finding>) {
        if s.value < s.threshold {
            self.episodes.remove(&s.key);
            return;
        }
        if !self.episodes.contains_key(&s.key)
            && self.episodes.len() >= self.config.max_tracked.max(1)
            && let Some(oldest) =
                self.episodes.iter().min_by_key(|(_, e)| e.last_ms).map(|(k, _)| k.clone())
        {
            self.episodes.remove(&oldest);
            self.evicted += 1;
        }
        let episode = self.episodes.entry(s.key.clone()).or_insert(Episode {
            since_ms: at_ms,
            last_ms: at_ms,
            samples: 0,
            peak: s.value,
            fired: false,
        });
        episode.last_ms = episode.last_ms.max(at_ms);
        episode.samples += 1;
        episode.peak = episode.peak.max(s.value);
        if episode.fired || episode.last_ms - episode.since_ms < self.duration_ms {
            return;
        }
        episode.fired = true;
        self.exhausted += 1;
        let duration_s = self.duration_ms / 1000;
        let mut data = vigil_event::Map::new();
        data.insert("peak".into(), episode.peak.into());
        let evidence = Evidence {
            rule: format!(
                "resource_exhaustion: {} at or above {}{} for {duration_s}s",
                s.what, s.threshold, s.unit
            ),
            count: episode.samples,
            window_seconds: duration_s as u64,
            first_seen: Some(utc(episode.since_ms)),
            last_seen: Some(utc(episode.last_ms)),
            event_ids: vec![event_id.to_owned()],
            data,
            ..Evidence::default()
        };
        let summary = format!(
            "{} at {:.1}{} (threshold {}{}) for {}s",
            s.what,
            s.value,
            s.unit,
            s.threshold,
            s.unit,
            (episode.last_ms - episode.since_ms) / 1000
        );
        let finding = Finding::new(FindingLevel::Warning, Self::FINDING_NAME, "host", summary)
            .with_data("resource", s.key)
            .with_data("value", s.value)
            .with_data("threshold", s.threshold)
            .with_evidence(evidence);
        out.push(finding);
    }

    /// Reads one event; findings are pushed to `out`.
    pub fn observe(&mut self, event: &Event, out: &mut Vec<Finding>) {
        let at = event.timestamp.timestamp_millis();
        let id = event.id.to_string();
        let c = self.config.clone();
        match &event.payload {
            Payload::SystemMetric(m) => {
                if let (Some(total), Some(available)) =
                    (m.memory_total_bytes, m.memory_available_bytes)
                    && let Some(value) = percent_used(total, available)
                {
                    let s = Sample {
                        key: "memory".into(),
                        what: "memory in use",
                        value,
                        threshold: c.memory_percent,
                        unit: "%",
                    };
                    self.sample(s, at, &id, out);
                }
                if let (Some(total), Some(free)) = (m.swap_total_bytes, m.swap_free_bytes)
                    && let Some(value) = percent_used(total, free)
                {
                    let s = Sample {
                        key: "swap".into(),
                        what: "swap in use",
                        value,
                        threshold: c.swap_percent,
                        unit: "%",
                    };
                    self.sample(s, at, &id, out);
                }
                for disk in &m.disks {
                    if let Some(value) = percent_used(disk.total_bytes, disk.available_bytes) {
                        let what = format!("space in use on {}", disk.mount);
                        let s = Sample {
                            key: format!("disk:{}", disk.mount),
                            what: &what,
                            value,
                            threshold: c.disk_percent,
                            unit: "%",
                        };
                        self.sample(s, at, &id, out);
                    }
                }
            }
            Payload::Process(p) => {
                let key = format!("fds:{}", p.process.pid);
                if p.phase == ProcessPhase::Exit {
                    self.episodes.remove(&key);
                    return;
                }
                if let Some(fds) = p.process.open_fds {
                    let name = p.process.name.as_deref().unwrap_or("?");
                    let what = format!("open files of pid {} ({name})", p.process.pid);
                    let s = Sample {
                        key,
                        what: &what,
                        value: f64::from(fds),
                        threshold: f64::from(c.process_fds),
                        unit: "",
                    };
                    self.sample(s, at, &id, out);
                }
            }
            _ => {}
        }
    }
}

impl Detector for ResourceExhaustionDetector {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn handle(&mut self, event: &Event, ctx: &mut DetectorContext) -> Result<(), ComponentError> {
        let mut out = Vec::new();
        self.observe(event, &mut out);
        out.into_iter().for_each(|it| ctx.finding(it));
        Ok(())
    }

    fn statistics(&self) -> Statistics {
        let mut stats = Statistics::new();
        stats.insert("exhausted".into(), self.exhausted.into());
        stats.insert("resources_above_threshold".into(), (self.episodes.len() as u64).into());
        stats.insert("evicted_resources".into(), self.evicted.into());
        stats
    }

    fn save_state(&self) -> Option<Value> {
        let episodes: Vec<(&String, &Episode)> = self.episodes.iter().collect();
        Some(serde_json::json!({
            "version": 1, "exhausted": self.exhausted, "evicted": self.evicted, "episodes": episodes,
        }))
    }

    fn restore_state(&mut self, state: Value) -> Result<(), ComponentError> {
        if state.get("version").and_then(Value::as_u64) != Some(1) {
            return Err(ComponentError::msg(
                "invalid resource_exhaustion state: expected version 1",
            ));
        }
        let episodes: Vec<(String, Episode)> = serde_json::from_value(state["episodes"].clone())
            .map_err(|err| {
                ComponentError::msg(format!("invalid resource_exhaustion state: {err}"))
            })?;
        self.episodes = episodes.into_iter().take(self.config.max_tracked.max(1)).collect();
        self.exhausted = state["exhausted"].as_u64().unwrap_or(0);
        self.evicted = state["evicted"].as_u64().unwrap_or(0);
        Ok(())
    }
}
