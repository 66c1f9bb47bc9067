//! `kv-filler`: fills the tenant's kv store, a few new keys per event.
//!
//! Used by the kv quota tests: config `keys` (default 10) keys named `<event id>:<i>`, each
//! with a value of config `value_bytes` (default 16) bytes, are set per event. A refused
//! `set` fails the event with the host's reason (which names the limit), so none of that
//! event's writes are kept.

use switchyard_guest::{Event, Result, Verdict, config, kv};

fn handle(ev: Event) -> Result<Verdict> {
    let keys: usize = config::get_or("keys", "10").parse().unwrap_or(10);
    let value_bytes: usize = config::get_or("value_bytes", "16").parse().unwrap_or(16);
    let value = "v".repeat(value_bytes);
    for i in 0..keys {
        kv::set(&format!("{}:{i}", ev.id()), &value)?;
    }
    Ok(ev.pass())
}

switchyard_guest::plugin!(handle);
