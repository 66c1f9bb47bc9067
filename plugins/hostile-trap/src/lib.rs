//! `hostile-trap`: panics on every event.
//!
//! Used by the sandbox tests: a panic in a wasm32-wasip2 guest aborts, so the host must see a
//! trap, record it against the event, and keep serving other events.

use switchyard_guest::{Event, Result, Verdict};

fn handle(ev: Event) -> Result<Verdict> {
    panic!("hostile-trap: deliberate panic on {}", ev.event_type())
}

switchyard_guest::plugin!(handle);
