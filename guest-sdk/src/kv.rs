//! A small key-value store private to the tenant and shared by all of its plugins.
//!
//! Use it for state that must outlive one event (the last outcome seen for a contact, a
//! counter). Values are strings, JSON by convention: [`get_json`] and [`set_json`] do the
//! (de)serialization. A call's writes take effect together, durably, when the call returns
//! successfully; until then only this call sees them. If the call fails (an error, a trap, a
//! limit), none of its writes are kept.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::__private::bindings::switchyard::plugin::kv as host;
use crate::{Error, Result};

/// The value stored under `key`, or `None` if there is none.
pub fn get(key: &str) -> Option<String> {
    host::get(key)
}

/// Stores `value` under `key`.
///
/// The host refuses keys or values over its size limits; that comes back as a
/// [`crate::ErrorKind::Fatal`] error, since writing the same thing again cannot succeed.
pub fn set(key: &str, value: &str) -> Result<()> {
    host::set(key, value).map_err(|reason| Error::fatal(format!("kv set {key:?} failed: {reason}")))
}

/// Removes `key` (not an error if it was absent).
pub fn delete(key: &str) -> Result<()> {
    host::delete(key).map_err(|reason| Error::fatal(format!("kv delete {key:?} failed: {reason}")))
}

/// The JSON value under `key` parsed as `T`, or `None` if the key is absent.
///
/// A stored value that does not parse as `T` is a [`crate::ErrorKind::Fatal`] error: the
/// event is fine, the plugin's own state is not.
pub fn get_json<T: DeserializeOwned>(key: &str) -> Result<Option<T>> {
    match get(key) {
        None => Ok(None),
        Some(text) => serde_json::from_str(&text).map(Some).map_err(|err| {
            Error::fatal(format!("kv value at {key:?} is not a valid {}: {err}", std::any::type_name::<T>()))
        }),
    }
}

/// Stores `value` as JSON under `key`.
pub fn set_json<T: Serialize + ?Sized>(key: &str, value: &T) -> Result<()> {
    let text = serde_json::to_string(value)
        .map_err(|err| Error::fatal(format!("cannot serialize kv value for {key:?}: {err}")))?;
    set(key, &text)
}
