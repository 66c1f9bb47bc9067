//! `hostile-resources`: calls `wasi:cli/stdout.get-stdout` in an endless loop and never drops
//! the streams it gets.
//!
//! Used by the sandbox tests. Each stream is an entry in the host's WASI resource table for
//! the call, so the table must be bounded (`plugins.max_wasi_resources`) or the guest fills
//! host memory with them.

use switchyard_guest::{Event, Result, Verdict};

/// Bindings for the one WASI function this plugin calls. A 0.2 version none of the
/// standard library's declarations use, so they never have to agree; the host serves every
/// 0.2 version.
#[allow(unsafe_code, clippy::all)]
mod wasi {
    switchyard_guest::__private::wit_bindgen::generate!({
        inline: "
            package local:hostile-resources;

            package wasi:io@0.2.1 {
                interface streams {
                    resource output-stream;
                }
            }

            package wasi:cli@0.2.1 {
                interface stdout {
                    use wasi:io/streams@0.2.1.{output-stream};
                    get-stdout: func() -> output-stream;
                }
            }

            world imports {
                import wasi:cli/stdout@0.2.1;
            }
        ",
        world: "imports",
        runtime_path: "switchyard_guest::__private::wit_bindgen::rt",
        generate_all,
    });
}

fn handle(_ev: Event) -> Result<Verdict> {
    loop {
        // Forgotten, never dropped: dropping would free the table entry.
        std::mem::forget(wasi::wasi::cli::stdout::get_stdout());
    }
}

switchyard_guest::plugin!(handle);
