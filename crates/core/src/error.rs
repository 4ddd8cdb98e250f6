//! The error type components return to the runtime.

use std::path::PathBuf;

/// Why a component failed. The supervisor logs it, records it in health and restarts the
/// component with backoff; it never stops the agent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ComponentError {
    /// Reading or writing a path failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The component's configuration cannot work.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The event channel closed: the agent is shutting down.
    #[error("event channel closed")]
    Closed,
    /// Anything else.
    #[error("{0}")]
    Other(String),
}

impl ComponentError {
    /// An error with a message.
    pub fn msg(message: impl Into<String>) -> ComponentError {
        ComponentError::Other(message.into())
    }

    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> ComponentError {
        ComponentError::Io { path: path.into(), source }
    }
}

impl From<crate::SendError> for ComponentError {
    fn from(_: crate::SendError) -> Self {
        ComponentError::Closed
    }
}
