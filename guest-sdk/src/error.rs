//! Plugin failures, classified the way the router needs them.

use std::fmt;

use crate::__private::WitPluginError;

/// `Result` with the SDK's [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why an [`Error`] happened, which tells the router whether running the event again can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The event is not what the plugin expects (bad data); retrying will not help.
    InvalidInput,
    /// A transient problem; the event may succeed if run again.
    Retryable,
    /// Anything else the plugin considers a failure.
    Fatal,
}

/// A failure to handle one event. Returned from a handler it becomes the WIT `plugin-error`
/// and is recorded against the event and route.
///
/// `?` on a [`serde_json::Error`] gives [`ErrorKind::InvalidInput`], since in a plugin a JSON
/// error almost always means the payload did not have the expected shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: String,
}

impl Error {
    /// Builds an error of the given kind.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into() }
    }

    /// The event's data is wrong for this plugin; the router will not retry it.
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidInput, message)
    }

    /// A transient failure; the router may run the event again.
    pub fn retryable(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Retryable, message)
    }

    /// Any other failure (a bug, bad configuration, a rejected write).
    pub fn fatal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Fatal, message)
    }

    /// How the router should treat this failure.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The human-readable reason, as recorded by the router.
    pub fn message(&self) -> &str {
        &self.message
    }

    pub(crate) fn into_wit(self) -> WitPluginError {
        match self.kind {
            ErrorKind::InvalidInput => WitPluginError::InvalidInput(self.message),
            ErrorKind::Retryable => WitPluginError::Retryable(self.message),
            ErrorKind::Fatal => WitPluginError::Fatal(self.message),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            ErrorKind::InvalidInput => "invalid input",
            ErrorKind::Retryable => "retryable",
            ErrorKind::Fatal => "fatal",
        };
        write!(f, "{kind}: {}", self.message)
    }
}

impl std::error::Error for Error {}

impl From<serde_json::Error> for Error {
    fn from(err: serde_json::Error) -> Self {
        Self::invalid_input(err.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_errors_are_invalid_input() {
        let err: Error = serde_json::from_str::<u32>("nope").unwrap_err().into();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
    }

    #[test]
    fn kinds_map_to_wit_variants() {
        assert!(matches!(
            Error::retryable("later").into_wit(),
            WitPluginError::Retryable(m) if m == "later"
        ));
        assert!(matches!(Error::fatal("x").into_wit(), WitPluginError::Fatal(m) if m == "x"));
        assert_eq!(Error::invalid_input("y").to_string(), "invalid input: y");
    }
}
