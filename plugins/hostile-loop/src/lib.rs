//! `hostile-loop`: never returns.
//!
//! Used by the sandbox tests: the host's time limit (epoch interruption / fuel) must stop it.

use std::hint::black_box;

use switchyard_guest::{Event, Result, Verdict};

fn handle(_ev: Event) -> Result<Verdict> {
    let mut spins: u64 = 0;
    loop {
        // `black_box` keeps the optimiser from proving the loop useless and deleting it.
        spins = black_box(spins.wrapping_add(1));
    }
}

switchyard_guest::plugin!(handle);
