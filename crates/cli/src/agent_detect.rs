//! The detectors of issue 7 in `vigil run`: the jails and the sshd detector (and the other
//! correlation detectors), built from their sections and registered with the runtime. Kept out
//! of `agent.rs` so that file only gains one line.

use anyhow::Context;
use vigil_core::{Detector, Filter};
use vigil_detect::{
    JailSet, JailsDetector, LineDetector, ResourceExhaustionConfig, ResourceExhaustionDetector,
    SshdConfig,
};
use vigil_runtime::RuntimeBuilder;

use crate::settings::Config;

/// Registers the jails (one detector, `jails`, running every enabled jail), the sshd detector
/// and the correlation detectors.
pub fn register(builder: &mut RuntimeBuilder, config: &Config) -> anyhow::Result<()> {
    let jails = JailSet::build(&config.jails.effective()).context("jails")?;
    if !jails.is_empty() {
        builder.register_detector(Box::new(JailsDetector::new(jails)), JailsDetector::filter())?;
    }
    if let Some(sshd) = config.detectors.sshd.build() {
        builder.register_detector(Box::new(sshd), SshdConfig::filter())?;
    }
    for detector in correlation_detectors(config) {
        let filter = if detector.name() == ResourceExhaustionDetector::NAME {
            ResourceExhaustionConfig::filter()
        } else {
            Filter::any().kinds([vigil_core::event::EventKind::Log])
        };
        builder.register_detector(detector, filter)?;
    }
    Ok(())
}

/// The detectors that read log lines, besides the jails and sshd: port scans, IP sweeps and
/// recurring errors (also fed by `vigil replay`).
pub fn line_detectors(config: &Config) -> Vec<Box<dyn LineDetector>> {
    let d = &config.detectors;
    let mut out: Vec<Box<dyn LineDetector>> = Vec::new();
    if let Some(it) = d.port_scan.build() {
        out.push(Box::new(it));
    }
    if let Some(it) = d.ip_sweep.build() {
        out.push(Box::new(it));
    }
    if let Some(it) = d.recurring_errors.build() {
        out.push(Box::new(it));
    }
    out
}

/// Every correlation detector besides the jails and sshd that the configuration enables, as
/// `vigil run` registers them (and `vigil report` restores them).
pub fn correlation_detectors(config: &Config) -> Vec<Box<dyn Detector>> {
    let mut out: Vec<Box<dyn Detector>> = Vec::new();
    for it in line_detectors(config) {
        out.push(it);
    }
    if let Some(it) = config.detectors.resource_exhaustion.build() {
        out.push(Box::new(it));
    }
    out
}
