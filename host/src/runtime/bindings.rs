//! The one `bindgen!` of the plugin world. Everything generated stays in this module; the
//! rest of the runtime uses the re-exports below.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "plugin",
    // Host capabilities do I/O (the kv store) and may trap (limits), so all are async and
    // trappable; the export is called with `call_async` so epochs can yield.
    imports: { default: async | trappable },
    exports: { default: async },
});

pub use self::switchyard::plugin::{config, kv, log, types};
