//! `hostile-alloc`: allocates memory until the sandbox stops it.
//!
//! Used by the sandbox tests: the host's memory limit must refuse to grow linear memory, which
//! makes the allocator abort (a trap), without hurting the host or other tenants.

use std::hint::black_box;

use switchyard_guest::{Event, Result, Verdict};

const CHUNK: usize = 1 << 20; // 1 MiB

fn handle(_ev: Event) -> Result<Verdict> {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        // A non-zero fill writes every byte, so every page is really touched (a zeroed
        // allocation from fresh wasm memory might not be).
        let chunk = vec![0xA5u8; CHUNK];
        // Keep every chunk alive, and stop the optimiser from eliding the allocations.
        hoard.push(black_box(chunk));
        black_box(&hoard);
    }
}

switchyard_guest::plugin!(handle);
