//! Tests of the port-scan detector on real UFW lines read by vigil-parse.

use serde_json::json;
use vigil_core::{Detector, DetectorContext};
use vigil_event::{Event, Payload};
use vigil_parse::{Clock, Format};

use super::{PortScanConfig, PortScanDetector};

fn ufw(second: u32, src: &str, dpt: u16) -> String {
    format!(
        "Nov  1 00:{:02}:{:02} web1 kernel: [ 1.5] [UFW BLOCK] IN=eth0 OUT= MAC=00 SRC={src} DST=198.51.100.10 LEN=40 PROTO=TCP SPT=40000 DPT={dpt} WINDOW=1024",
        second / 60,
        second % 60
    )
}

fn run(detector: &mut PortScanDetector, lines: &[String]) -> Vec<Event> {
    let parser = Format::Auto.parser(Clock::utc_at("2026-11-23T12:00:00Z".parse().unwrap()));
    let mut ctx = DetectorContext::new("web1", PortScanDetector::NAME);
    for line in lines {
        let event = Event::new("web1", "kern", Payload::Log(parser.parse_line(line).unwrap()));
        detector.handle(&event, &mut ctx).unwrap();
    }
    ctx.take()
}

#[test]
fn distinct_ports_from_one_source_within_the_window_are_a_scan() {
    let mut scan = PortScanConfig { min_ports: 4, ..PortScanConfig::default() }.build().unwrap();
    // The same port again and again is not a scan; another source's ports do not add up.
    let mut lines: Vec<String> = (0..10).map(|i| ufw(i, "203.0.113.5", 22)).collect();
    lines.extend([23, 80, 443].map(|p| ufw(20, "198.51.100.99", p)));
    assert!(run(&mut scan, &lines).is_empty());
    let lines: Vec<String> =
        [21, 80, 443, 3306].iter().map(|p| ufw(30, "203.0.113.5", *p)).collect();
    let out = run(&mut scan, &lines);
    assert_eq!(out.len(), 1);
    let Payload::Finding(finding) = &out[0].payload else { panic!() };
    assert_eq!(finding.name, "PortScan");
    assert_eq!(finding.data["ip"], json!("203.0.113.5"));
    // Port 22 from the first lines is still in the window: four distinct with 80 and 443.
    assert_eq!(finding.data["ports"], json!([21, 22, 80, 443]));
    let evidence = finding.evidence.as_ref().unwrap();
    assert_eq!((evidence.count, evidence.window_seconds), (4, 300));
    assert!(evidence.lines.iter().all(|it| it.contains("SRC=203.0.113.5")));
}

#[test]
fn ports_outside_the_window_do_not_count_and_state_survives_a_restart() {
    let config = PortScanConfig { min_ports: 3, ..PortScanConfig::default() };
    let mut before = config.build().unwrap();
    assert!(run(&mut before, &[ufw(0, "192.0.2.7", 1), ufw(400, "192.0.2.7", 2)]).is_empty());
    let mut after = config.build().unwrap();
    after.restore_state(before.save_state().unwrap()).unwrap();
    assert!(run(&mut after, &[ufw(401, "192.0.2.7", 3)]).is_empty(), "port 1 left the window");
    let out = run(&mut after, &[ufw(402, "192.0.2.7", 4)]);
    let Payload::Finding(finding) = &out[0].payload else { panic!("{out:?}") };
    assert_eq!(finding.data["ports"], json!([2, 3, 4]), "port 2 counted before the restart");
    assert_eq!(after.statistics()["scans"], json!(1));
    assert!(after.restore_state(json!({"version": 7})).is_err());
}
