//! `hostile-wrong-world`: a well-formed component for a different world, whose `handle` takes
//! and returns a number. Uploading it must fail with "does not implement the world", before
//! anything is stored.

// Raw wit-bindgen (not the SDK, which only speaks the right world): its export glue expands at
// the crate root and is FFI by nature.
#![allow(unsafe_code)]

mod bindings {
    wit_bindgen::generate!({
        inline: "
            package test:wrong;
            world wrong {
                export handle: func(n: u32) -> u32;
            }
        ",
        world: "wrong",
    });
}

struct Wrong;

impl bindings::Guest for Wrong {
    fn handle(n: u32) -> u32 {
        n + 1
    }
}

bindings::export!(Wrong with_types_in bindings);
