//! `hostile-invalid-json`: passes the event on with data that is not JSON.
//!
//! Used by the sandbox tests. The SDK only produces JSON (`Event::set_data` serialises), so
//! this plugin implements the generated bindings' `Guest` trait itself, as a plugin written
//! without the SDK (or in another language) could. The host must refuse the output.

use switchyard_guest::__private::{Guest, WitEvent, WitPluginError, WitVerdict};

struct InvalidJson;

impl Guest for InvalidJson {
    fn handle(mut ev: WitEvent) -> Result<WitVerdict, WitPluginError> {
        ev.data = "{\"unterminated\": [1, 2,".into();
        Ok(WitVerdict::Pass(ev))
    }
}

// The generated export glue is `unsafe extern "C"` FFI by necessity (as in `plugin!`).
#[allow(unsafe_code)]
const _: () = {
    switchyard_guest::__private::bindings::export!(InvalidJson with_types_in switchyard_guest::__private::bindings);
};
