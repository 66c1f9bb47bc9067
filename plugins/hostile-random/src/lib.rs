//! `hostile-random`: asks `wasi:random` for config `bytes` random bytes (default 4 GiB).
//!
//! Used by the sandbox tests. The host allocates the whole buffer before copying it into the
//! guest, so the length must be refused before anything is allocated
//! (`plugins.max_random_bytes`). Rust's standard library only ever asks for a few bytes; this
//! plugin imports the interface itself to ask for more.

use switchyard_guest::{Error, Event, Result, Verdict, config};

/// Bindings for the one WASI function this plugin calls. A 0.2 version none of the
/// standard library's declarations use, so they never have to agree; the host serves every
/// 0.2 version.
#[allow(unsafe_code, clippy::all)]
mod wasi {
    switchyard_guest::__private::wit_bindgen::generate!({
        inline: "
            package local:hostile-random;

            package wasi:random@0.2.1 {
                interface random {
                    get-random-bytes: func(len: u64) -> list<u8>;
                }
            }

            world imports {
                import wasi:random/random@0.2.1;
            }
        ",
        world: "imports",
        runtime_path: "switchyard_guest::__private::wit_bindgen::rt",
        generate_all,
    });
}

fn handle(mut ev: Event) -> Result<Verdict> {
    let bytes: u64 =
        config::get_or("bytes", "4294967296").parse().map_err(|_| Error::fatal("config bytes must be an integer"))?;
    let got = wasi::wasi::random::random::get_random_bytes(bytes);
    ev.set_data(&got.len())?;
    Ok(ev.pass())
}

switchyard_guest::plugin!(handle);
