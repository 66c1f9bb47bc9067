//! `hostile-kv-spam`: calls the kv store in a tight loop, forever.
//!
//! Used by the sandbox tests: every kv call is host work (a SQLite read or a durable write),
//! so the per-call operation limit (`plugins.max_kv_ops`) must stop it long before the
//! deadline would, and without starving other tenants' writes.

use switchyard_guest::{Event, Result, Verdict, kv};

fn handle(_ev: Event) -> Result<Verdict> {
    let mut i: u64 = 0;
    loop {
        kv::set("spam", &i.to_string())?;
        i = kv::get("spam").and_then(|v| v.parse().ok()).unwrap_or(i) + 1;
    }
}

switchyard_guest::plugin!(handle);
