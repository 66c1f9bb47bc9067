//! Write Switchyard plugins in plain, safe Rust.
//!
//! A Switchyard plugin is a WebAssembly component that the router calls once per event, in a
//! fresh sandbox. This crate hides the component-model bindings for the
//! `switchyard:plugin@0.1.0` world behind a small typed API:
//!
//! * [`Event`]: the event being routed, with typed access to its JSON payload
//!   ([`Event::data`], [`Event::set_data`]) and its attributes.
//! * [`Verdict`]: what to do with it: pass it on (possibly changed), drop it with a reason,
//!   or emit several events instead.
//! * [`Error`] / [`Result`]: why the plugin failed, sorted into invalid input, retryable and
//!   fatal so the router knows whether running the event again can help.
//! * [`kv`], [`config`], [`log`]: the host capabilities a plugin is granted.
//! * [`seeds`]: serde structs for the vendor payloads Switchyard ships plugins for.
//! * [`plugin!`]: exports your handler function as the component's `handle`.
//!
//! A plugin crate depends only on `switchyard-guest` (plus `serde` if it defines its own
//! payload structs), is a `cdylib`, and is built with
//! `cargo build --release --target wasm32-wasip2`.
//!
//! # Example
//!
//! ```no_run
//! use serde::Deserialize;
//! use switchyard_guest::{config, kv, log, Error, Event, Result, Verdict};
//!
//! #[derive(Deserialize)]
//! struct Order {
//!     id: String,
//!     total_cents: i64,
//! }
//!
//! fn handle(mut ev: Event) -> Result<Verdict> {
//!     // Let everything that is not ours through untouched.
//!     if ev.event_type() != "order.created" {
//!         return Ok(ev.pass());
//!     }
//!     // A payload that does not parse fails the event as invalid input (no retry).
//!     let order: Order = ev.data()?;
//!
//!     // Per-route settings come from the operator's pipeline config.
//!     let min: i64 = config::get_or("min_total_cents", "0")
//!         .parse()
//!         .map_err(|_| Error::fatal("config min_total_cents must be an integer"))?;
//!     if order.total_cents < min {
//!         return Ok(ev.drop(format!("order {} below minimum", order.id)));
//!     }
//!
//!     // Tenant-private state survives across events.
//!     let rank = kv::get_json::<u64>("orders:count")?.unwrap_or(0) + 1;
//!     kv::set_json("orders:count", &rank)?;
//!
//!     log::info(format!("order {} is number {rank}", order.id));
//!     ev.set_attribute("order-rank", rank.to_string());
//!     Ok(Verdict::pass(ev))
//! }
//!
//! switchyard_guest::plugin!(handle);
//! # fn main() {}
//! ```

// Everything we write is safe Rust. This is `deny` rather than `forbid` only because `forbid`
// cannot be lifted for the one module that holds wit-bindgen's generated FFI glue.
#![deny(unsafe_code)]
#![warn(missing_docs)]

// Lets paths in generated code and in `plugin!` say `::switchyard_guest::...` both here and in
// plugin crates.
extern crate self as switchyard_guest;

pub mod config;
mod error;
mod event;
pub mod kv;
pub mod log;
pub mod seeds;
mod verdict;

pub use error::{Error, ErrorKind, Result};
pub use event::Event;
pub use verdict::Verdict;

/// Exports `handler` as this component's `handle` function.
///
/// `handler` is any `fn(Event) -> switchyard_guest::Result<Verdict>` (a path or a closure).
/// Invoke it exactly once, at the top level of the plugin crate:
///
/// ```no_run
/// use switchyard_guest::{Event, Result, Verdict};
///
/// fn handle(ev: Event) -> Result<Verdict> {
///     Ok(ev.pass())
/// }
///
/// switchyard_guest::plugin!(handle);
/// # fn main() {}
/// ```
///
/// A panic in the handler aborts the sandbox (the router records a trap); return an
/// [`Error`] instead to fail an event cleanly.
#[macro_export]
macro_rules! plugin {
    ($handler:expr $(,)?) => {
        // The generated export glue is `unsafe extern "C"` FFI by necessity.
        #[allow(unsafe_code)]
        const _: () = {
            struct __SwitchyardPlugin;

            impl $crate::__private::Guest for __SwitchyardPlugin {
                fn handle(
                    ev: $crate::__private::WitEvent,
                ) -> ::core::result::Result<$crate::__private::WitVerdict, $crate::__private::WitPluginError> {
                    $crate::__private::run(ev, $handler)
                }
            }

            $crate::__private::bindings::export!(
                __SwitchyardPlugin with_types_in $crate::__private::bindings
            );
        };
    };
}

/// Implementation details used by [`plugin!`]. Not part of the public API.
#[doc(hidden)]
pub mod __private {
    pub use wit_bindgen;

    /// Bindings generated from `wit/` for the `plugin` world.
    #[allow(unsafe_code, missing_docs, clippy::all)]
    pub mod bindings {
        wit_bindgen::generate!({
            path: "../wit",
            world: "plugin",
            pub_export_macro: true,
            export_macro_name: "export",
            default_bindings_module: "::switchyard_guest::__private::bindings",
            runtime_path: "::switchyard_guest::__private::wit_bindgen::rt",
        });
    }

    pub use bindings::Guest;
    pub use bindings::switchyard::plugin::types::{
        Event as WitEvent, PluginError as WitPluginError, Verdict as WitVerdict,
    };

    use crate::{Event, Result, Verdict};

    /// Runs one event through `handler`, converting between the WIT types and the SDK types.
    pub fn run<F>(ev: WitEvent, handler: F) -> ::core::result::Result<WitVerdict, WitPluginError>
    where
        F: FnOnce(Event) -> Result<Verdict>,
    {
        handler(Event::from_wit(ev)).map(Verdict::into_wit).map_err(crate::Error::into_wit)
    }
}
