//! Structured logging into the router's log, attributed to tenant, plugin and event.
//!
//! A plugin has no stdout worth reading; these lines are where its diagnostics go.

use crate::__private::bindings::switchyard::plugin::log::{self as host, Level};

/// Very fine detail, normally filtered out.
pub fn trace(message: impl AsRef<str>) {
    host::log(Level::Trace, message.as_ref());
}

/// Detail useful when debugging a route.
pub fn debug(message: impl AsRef<str>) {
    host::log(Level::Debug, message.as_ref());
}

/// Normal operation worth recording (e.g. what a plugin decided).
pub fn info(message: impl AsRef<str>) {
    host::log(Level::Info, message.as_ref());
}

/// Something unexpected that the plugin worked around.
pub fn warn(message: impl AsRef<str>) {
    host::log(Level::Warn, message.as_ref());
}

/// A failure; usually paired with returning an [`crate::Error`].
pub fn error(message: impl AsRef<str>) {
    host::log(Level::Error, message.as_ref());
}
