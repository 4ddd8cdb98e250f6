//! The one error type of vigil-detect: what can go wrong while building detectors from their
//! configuration (handling events never fails on input).

/// Why a detector could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration value is invalid.
    #[error("{0}")]
    Config(String),
    /// A fail2ban filter file could not be read.
    #[error("filter file: {0}")]
    Filter(#[from] vigil_f2b::Error),
}
