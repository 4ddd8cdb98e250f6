//! The one error type of the ban manager and its actions.

use std::path::PathBuf;

/// Why a ban could not be decided, applied or lifted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RespondError {
    /// Text that is not an address or prefix.
    #[error("invalid address or prefix: {0}")]
    InvalidAddress(String),
    /// The address may never be banned (loopback, own address, allow-listed …).
    #[error("{address} is never banned: {reason}")]
    Protected {
        /// The address or prefix.
        address: String,
        /// Why.
        reason: String,
    },
    /// `unban` of an address that is not banned.
    #[error("{0} is not banned")]
    NotBanned(String),
    /// The configuration cannot work.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// Reading or writing a path failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A firewall program could not be run or failed.
    #[error("{program}: {message}")]
    Command {
        /// The program (`nft`, `ipset`, …).
        program: String,
        /// What went wrong (exit status and the first lines of its error output).
        message: String,
    },
    /// Persisted state could not be read.
    #[error("invalid ban state: {0}")]
    State(String),
}

impl RespondError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> RespondError {
        RespondError::Io { path: path.into(), source }
    }
}

impl From<RespondError> for vigil_core::ComponentError {
    fn from(err: RespondError) -> Self {
        match err {
            RespondError::Config(it) => vigil_core::ComponentError::Config(it),
            RespondError::Io { path, source } => vigil_core::ComponentError::Io { path, source },
            other => vigil_core::ComponentError::Other(other.to_string()),
        }
    }
}
