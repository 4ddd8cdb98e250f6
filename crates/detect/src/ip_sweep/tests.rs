//! Tests of the IP-sweep detector on real sshd lines read by vigil-parse.

use serde_json::json;
use vigil_core::{Detector, DetectorContext};
use vigil_event::{Event, Payload};
use vigil_parse::{Clock, Format};

use super::{IpSweepConfig, IpSweepDetector, detector::subnet};

fn invalid(second: u32, ip: &str) -> String {
    format!(
        "Nov  1 00:{:02}:{:02} web1 sshd[9]: Invalid user admin from {ip} port 4000",
        second / 60,
        second % 60
    )
}

fn run(detector: &mut IpSweepDetector, lines: &[String]) -> Vec<Event> {
    let parser = Format::Auto.parser(Clock::utc_at("2026-11-23T12:00:00Z".parse().unwrap()));
    let mut ctx = DetectorContext::new("web1", IpSweepDetector::NAME);
    for line in lines {
        let event = Event::new("web1", "auth", Payload::Log(parser.parse_line(line).unwrap()));
        detector.handle(&event, &mut ctx).unwrap();
    }
    ctx.take()
}

#[test]
fn many_addresses_of_one_subnet_are_a_sweep_and_one_address_is_not() {
    let mut sweep = IpSweepConfig { min_addresses: 5, ..IpSweepConfig::default() }.build().unwrap();
    let one: Vec<String> = (0..20).map(|i| invalid(i, "203.0.113.7")).collect();
    assert!(run(&mut sweep, &one).is_empty(), "one address trying often is not a sweep");
    let spread: Vec<String> = (1..=4).map(|i| invalid(100, &format!("198.51.{i}.1"))).collect();
    assert!(run(&mut sweep, &spread).is_empty(), "different /24s");
    let net: Vec<String> = (10..15).map(|i| invalid(200 + i, &format!("192.0.2.{i}"))).collect();
    let out = run(&mut sweep, &net);
    assert_eq!(out.len(), 1);
    let Payload::Finding(finding) = &out[0].payload else { panic!() };
    assert_eq!(finding.name, "IpSweep");
    assert_eq!(finding.data["subnet"], json!("192.0.2.0/24"));
    assert_eq!(finding.data["addresses"].as_array().unwrap().len(), 5);
    assert_eq!(finding.evidence.as_ref().unwrap().lines, net);
}

#[test]
fn subnets_of_both_families() {
    assert_eq!(subnet("192.0.2.77".parse().unwrap(), 24, 64), "192.0.2.0/24");
    assert_eq!(subnet("2001:db8:1:2:3::9".parse().unwrap(), 24, 64), "2001:db8:1:2::/64");
    assert_eq!(subnet("10.1.2.3".parse().unwrap(), 0, 0), "0.0.0.0/0");
}
