//! `hostile-recursion`: recurses until the stack runs out.
//!
//! Used by the sandbox tests: the engine's wasm stack limit must turn the overflow into a trap
//! (`call stack exhausted`) for this call only; the host's own stack is never at risk.

use std::hint::black_box;

use switchyard_guest::{Event, Result, Verdict};

/// Not a tail call (the result is used after the recursive call returns), and `black_box`
/// hides the depth from the optimiser, so this cannot become a loop.
fn dive(depth: u64) -> u64 {
    // Never true, but the compiler cannot know: the recursion is not provably endless.
    if black_box(depth) == u64::MAX {
        return depth;
    }
    let below = dive(black_box(depth + 1));
    black_box(below.wrapping_add(depth))
}

fn handle(_ev: Event) -> Result<Verdict> {
    let depth = dive(black_box(0));
    Ok(Verdict::drop(format!("unreachable: came back from depth {depth}")))
}

switchyard_guest::plugin!(handle);
