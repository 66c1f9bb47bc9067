//! `hostile-output`: passes the event on with a payload far larger than the output limit.
//!
//! Used by the sandbox tests: the data is valid JSON (one long string), so only the size limit
//! (`plugins.max_output_bytes`) can refuse it. Config `bytes` sets the payload size (default
//! 4 MiB: with the copies serialising makes, that fits a 32 MiB memory cap).

use switchyard_guest::{Error, Event, Result, Verdict, config};

fn handle(mut ev: Event) -> Result<Verdict> {
    let bytes: usize =
        config::get_or("bytes", "4194304").parse().map_err(|_| Error::fatal("config bytes must be an integer"))?;
    ev.set_data(&"x".repeat(bytes))?;
    Ok(ev.pass())
}

switchyard_guest::plugin!(handle);
