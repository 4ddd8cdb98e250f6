//! Tests of the resource-exhaustion detector with samples at chosen times (event-time clock).

use chrono::{TimeZone, Utc};
use serde_json::json;
use vigil_core::{Detector, DetectorContext};
use vigil_event::{
    DiskUsage, Event, Payload, ProcessEvent, ProcessInfo, ProcessPhase, SystemMetrics,
};

use super::{ResourceExhaustionConfig, ResourceExhaustionDetector};

fn memory(second: u32, available: u64) -> Event {
    let metrics = SystemMetrics {
        memory_total_bytes: Some(1000),
        memory_available_bytes: Some(available),
        disks: vec![DiskUsage {
            mount: "/".into(),
            total_bytes: 100,
            available_bytes: 50,
            ..DiskUsage::default()
        }],
        ..SystemMetrics::default()
    };
    Event::new("web1", "system", Payload::SystemMetric(metrics))
        .with_timestamp(Utc.with_ymd_and_hms(2026, 11, 1, 0, second / 60, second % 60).unwrap())
}

fn names(detector: &mut ResourceExhaustionDetector, events: &[Event]) -> Vec<String> {
    let mut ctx = DetectorContext::new("web1", ResourceExhaustionDetector::NAME);
    for event in events {
        detector.handle(event, &mut ctx).unwrap();
    }
    ctx.take()
        .into_iter()
        .map(|e| match e.payload {
            Payload::Finding(f) => f.data["resource"].as_str().unwrap().to_owned(),
            other => panic!("{other:?}"),
        })
        .collect()
}

#[test]
fn a_resource_above_its_threshold_for_the_duration_is_one_finding_per_episode() {
    let config = ResourceExhaustionConfig {
        duration: std::time::Duration::from_secs(60),
        ..ResourceExhaustionConfig::default()
    };
    let mut detector = config.build().unwrap();
    // 95 % used from 0 s, a dip at 30 s restarts the episode, then 95 % from 40 s to 100 s.
    let events = [memory(0, 50), memory(30, 500), memory(40, 50), memory(70, 50), memory(99, 50)];
    assert!(names(&mut detector, &events).is_empty());
    assert_eq!(names(&mut detector, &[memory(100, 50), memory(200, 50)]), ["memory"]);
    assert_eq!(detector.statistics()["exhausted"], json!(1));
    // A process with too many open files, until it exits.
    let fds = |second: u32, phase, open| {
        let p = ProcessEvent {
            phase,
            process: ProcessInfo {
                pid: 42,
                name: Some("leaky".into()),
                open_fds: Some(open),
                ..ProcessInfo::default()
            },
        };
        Event::new("web1", "process", Payload::Process(p))
            .with_timestamp(Utc.with_ymd_and_hms(2026, 11, 1, 1, second / 60, second % 60).unwrap())
    };
    let events = [fds(0, ProcessPhase::Snapshot, 20_000), fds(61, ProcessPhase::Snapshot, 20_000)];
    assert_eq!(names(&mut detector, &events), ["fds:42"]);
    let saved = detector.save_state().unwrap();
    let mut again = config.build().unwrap();
    again.restore_state(saved).unwrap();
    assert_eq!(again.statistics()["resources_above_threshold"], json!(2));
    assert!(names(&mut again, &[fds(62, ProcessPhase::Exit, 0)]).is_empty());
    assert_eq!(again.statistics()["resources_above_threshold"], json!(1));
}
