//! `hostile-sleep`: sleeps for an hour.
//!
//! Used by the sandbox tests. Sleeping is a WASI host call (`wasi:io/poll`), where epoch
//! interruption cannot reach, so the host must abandon the call at the deadline (plus a short
//! grace for host calls) rather than wait for the guest.

use std::time::Duration;

use switchyard_guest::{Event, Result, Verdict};

fn handle(ev: Event) -> Result<Verdict> {
    std::thread::sleep(Duration::from_secs(3600));
    Ok(ev.pass())
}

switchyard_guest::plugin!(handle);
