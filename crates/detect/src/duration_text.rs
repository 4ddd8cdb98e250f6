//! Duration helpers of the detectors; the configuration's humantime text is read and written by
//! `vigil_core::duration`.

use std::time::Duration;

/// The duration in whole milliseconds, saturated.
pub(crate) fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}
