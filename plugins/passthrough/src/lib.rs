//! `passthrough`: returns every event unchanged.
//!
//! The smallest possible plugin: the baseline for benchmarks (it measures pure sandbox and
//! marshalling overhead) and the starting point for a new plugin.

use switchyard_guest::{Event, Result, Verdict};

fn handle(ev: Event) -> Result<Verdict> {
    Ok(ev.pass())
}

switchyard_guest::plugin!(handle);
