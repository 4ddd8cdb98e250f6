//! The crate's one error type: what went wrong, and on which path.

use std::path::PathBuf;

/// Why the tailer could not do something. Every variant carries the path involved; none of them
/// stops the source: a vanished or unreadable file is reported and the source keeps running.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TailError {
    /// Reading, opening or writing a path failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A checkpoint file exists but cannot be understood.
    #[error("{}: unreadable checkpoint: {message}", path.display())]
    Checkpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// A configured glob is not a valid pattern.
    #[error("invalid glob `{pattern}`: {message}")]
    Glob {
        /// The pattern as configured.
        pattern: String,
        /// Why it is invalid.
        message: String,
    },
    /// The configuration cannot work.
    #[error("invalid configuration: {0}")]
    Config(String),
}

impl TailError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> TailError {
        TailError::Io { path: path.into(), source }
    }
}

impl From<TailError> for vigil_core::ComponentError {
    fn from(err: TailError) -> Self {
        match err {
            TailError::Io { path, source } => vigil_core::ComponentError::io(path, source),
            TailError::Config(message) => vigil_core::ComponentError::Config(message),
            other => vigil_core::ComponentError::msg(other.to_string()),
        }
    }
}
