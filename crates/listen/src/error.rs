//! The one error type of vigil-listen, for what is not already a [`ComponentError`].
//!
//! Listeners report to the runtime through [`ComponentError`]; this enum carries the failures of
//! the shared pieces (templates) so callers can tell a syntax error from a render failure, and
//! converts into [`ComponentError`] where a listener returns it.

use vigil_core::ComponentError;

/// Why a template could not be compiled or rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ListenError {
    /// The template source does not parse (found when the configuration is loaded).
    #[error("template syntax error: {0}")]
    TemplateSyntax(String),
    /// Rendering failed at run time (a filter given the wrong type, the fuel limit reached).
    #[error("cannot render template: {0}")]
    Render(String),
    /// A rendered JSON body is not valid JSON.
    #[error("rendered body is not valid JSON: {0}")]
    InvalidJson(String),
}

impl From<ListenError> for ComponentError {
    fn from(err: ListenError) -> Self {
        match err {
            ListenError::TemplateSyntax(_) => ComponentError::Config(err.to_string()),
            other => ComponentError::Other(other.to_string()),
        }
    }
}
