//! Host capabilities, one file per WIT interface. Domain failures a plugin should handle
//! (a value too large) are returned through the WIT result; only broken invariants and
//! infrastructure errors trap.

mod config;
mod kv;
mod log;

use super::bindings::types;
use super::state::PluginState;

impl types::Host for PluginState {}
