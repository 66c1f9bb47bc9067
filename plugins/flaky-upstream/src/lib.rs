//! `flaky-upstream`: stands in for an enrichment whose upstream API is down for a while.
//!
//! Until the unix time in milliseconds in config `until_ms` (default: forever), every call
//! fails with a `retryable` error; after it, the event passes unchanged. The pipeline tests
//! use it to show that such events are tried again later, a bounded number of times.

use std::time::{SystemTime, UNIX_EPOCH};

use switchyard_guest::{Error, Event, Result, Verdict, config};

fn handle(ev: Event) -> Result<Verdict> {
    let until: u128 = config::get_or("until_ms", &u128::MAX.to_string())
        .parse()
        .map_err(|_| Error::fatal("config until_ms must be a unix time in milliseconds"))?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
    if now < until {
        return Err(Error::retryable("the upstream is down"));
    }
    Ok(ev.pass())
}

switchyard_guest::plugin!(handle);
