//! `hostile-fanout`: emits a million events for every input.
//!
//! Used by the sandbox tests. Config `count` sets how many (default 1,000,000). Each output is
//! as small as the SDK allows (`null` data, no attributes), so the guest gets as far as it can
//! within its memory cap; the host must refuse the rest (`plugins.max_fanout`) without
//! copying the whole list out of the sandbox first.

use switchyard_guest::{Error, Event, Result, Verdict, config};

fn handle(ev: Event) -> Result<Verdict> {
    let count: usize =
        config::get_or("count", "1000000").parse().map_err(|_| Error::fatal("config count must be an integer"))?;
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        out.push(Event::new("fanout.item", &())?);
    }
    drop(ev);
    Ok(Verdict::emit(out))
}

switchyard_guest::plugin!(handle);
