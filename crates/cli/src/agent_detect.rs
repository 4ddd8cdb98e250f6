//! The detectors of issue 7 in `vigil run`: the jails and the sshd detector (and the other
//! correlation detectors), built from their sections and registered with the runtime. Kept out
//! of `agent.rs` so that file only gains one line.

use anyhow::Context;
use vigil_detect::{JailSet, JailsDetector, SshdConfig};
use vigil_runtime::RuntimeBuilder;

use crate::settings::Config;

/// Registers the jails (one detector, `jails`, running every enabled jail) and the sshd
/// detector.
pub fn register(builder: &mut RuntimeBuilder, config: &Config) -> anyhow::Result<()> {
    let jails = JailSet::build(&config.jails.effective()).context("jails")?;
    if !jails.is_empty() {
        builder.register_detector(Box::new(JailsDetector::new(jails)), JailsDetector::filter())?;
    }
    if let Some(sshd) = config.detectors.sshd.build() {
        builder.register_detector(Box::new(sshd), SshdConfig::filter())?;
    }
    Ok(())
}

/// The correlation detectors other than the jails and sshd that the configuration enables.
pub fn correlation_detectors(config: &Config) -> Vec<Box<dyn vigil_core::Detector>> {
    let _ = config;
    Vec::new()
}
