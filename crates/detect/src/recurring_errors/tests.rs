//! Tests of the recurring-errors detector and its signatures.

use serde_json::json;
use vigil_core::{Detector, DetectorContext};
use vigil_event::{Event, Payload};
use vigil_parse::{Clock, Format};

use super::{RecurringErrorsConfig, RecurringErrorsDetector, signature};

#[test]
fn signatures_drop_numbers_ids_and_addresses() {
    assert_eq!(
        signature("worker", "job 1234 failed on 10.0.0.5:8080 after 3.5s (id=9f86d081)"),
        "worker: job <*> failed on <*> after <*>"
    );
    assert_eq!(
        signature("worker", "ERROR job 99 failed on 192.0.2.1:1 (disk) after 1s"),
        "worker: job <*> failed on <*> (disk) after <*>"
    );
    assert_eq!(signature("x", "a 1 2 3 b"), "x: a <*> b", "runs collapse");
    assert_eq!(signature("x", &"é".repeat(500)).chars().count(), 200);
}

#[test]
fn the_same_error_recurring_within_the_window_is_a_finding() {
    let parser = Format::Auto.parser(Clock::utc_at("2026-11-23T12:00:00Z".parse().unwrap()));
    let mut errors =
        RecurringErrorsConfig { min_count: 3, ..RecurringErrorsConfig::default() }.build().unwrap();
    let mut ctx = DetectorContext::new("web1", RecurringErrorsDetector::NAME);
    let lines = [
        "2026-11-23T11:00:00Z ERROR worker: queue 17 full",
        "2026-11-23T11:00:01Z INFO worker: queue 17 full",
        "2026-11-23T11:00:02Z ERROR worker: queue 18 full",
        "2026-11-23T11:00:03Z ERROR worker: disk gone",
        "2026-11-23T11:00:04Z CRITICAL worker: queue 19 full",
    ];
    for line in lines {
        let log = parser.parse_line(line).unwrap();
        errors.handle(&Event::new("web1", "app", Payload::Log(log)), &mut ctx).unwrap();
    }
    let out = ctx.take();
    assert_eq!(out.len(), 1);
    let Payload::Finding(finding) = &out[0].payload else { panic!() };
    assert_eq!(finding.name, "RecurringError");
    assert_eq!(finding.evidence.as_ref().unwrap().lines, [lines[0], lines[2], lines[4]]);
    let stats = errors.statistics();
    assert_eq!((stats["errors"].clone(), stats["recurring"].clone()), (json!(4), json!(1)));
    let mut again = RecurringErrorsConfig::default().build().unwrap();
    again.restore_state(errors.save_state().unwrap()).unwrap();
    assert_eq!(again.statistics()["tracked_signatures"], json!(2));
}

#[test]
fn errors_the_tracer_recognises_share_its_signature() {
    let parser = Format::Auto.parser(Clock::utc_at("2026-11-23T12:00:00Z".parse().unwrap()));
    let mut errors =
        RecurringErrorsConfig { min_count: 2, ..RecurringErrorsConfig::default() }.build().unwrap();
    let mut ctx = DetectorContext::new("web1", RecurringErrorsDetector::NAME);
    let lines = [
        "2026-11-23T11:00:00Z ERROR app: could not connect to server: Connection refused, is the server running on host \"10.0.0.5\" and accepting TCP/IP connections on port 5432?",
        "2026-11-23T11:00:05Z ERROR app: could not connect to server: Connection refused, is the server running on host \"10.0.0.9\" and accepting TCP/IP connections on port 5433?",
    ];
    for line in lines {
        let log = parser.parse_line(line).unwrap();
        errors.handle(&Event::new("web1", "app", Payload::Log(log)), &mut ctx).unwrap();
    }
    let out = ctx.take();
    assert_eq!(out.len(), 1, "one signature for both occurrences");
    let Payload::Finding(finding) = &out[0].payload else { panic!() };
    let first = parser.parse_line(lines[0]).unwrap();
    let analysis = vigil_enrich::error::analyse(&first.message, first.level.as_deref())
        .expect("a known error");
    assert_eq!(finding.data["error_signature"], json!(analysis.signature));
    assert_eq!(finding.data["category"], json!(analysis.category.as_str()));
}
