//! The filters and paging shared by `events list` and `deliveries list`.

use clap::Args;
use serde_json::{Value, json};

use super::client::{Client, Result};

/// Largest page the router gives, used when following every page.
const MAX_PAGE: u32 = 1000;

#[derive(Args, Debug)]
pub struct ListArgs {
    /// Only of this type (exact)
    #[arg(long = "type", value_name = "TYPE")]
    pub event_type: Option<String>,
    /// Only from this source
    #[arg(long)]
    pub source: Option<String>,
    /// Only of this route
    #[arg(long)]
    pub route: Option<String>,
    /// Only at or after this time (RFC 3339, e.g. 2026-11-01T00:00:00Z)
    #[arg(long)]
    pub since: Option<String>,
    /// Only before this time (RFC 3339)
    #[arg(long)]
    pub until: Option<String>,
    /// At most this many per page (1-1000) [default: 50, or 1000 with --all]
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub limit: Option<u32>,
    /// Start after this point: a previous answer's next_cursor
    #[arg(long)]
    pub cursor: Option<String>,
    /// Every page, following the router's cursors, not only the first
    #[arg(long)]
    pub all: bool,
}

/// Lists `/v1/tenants/{tenant}/{what}` under the filters: one page, or with `--all` every
/// page, as one answer whose `next_cursor` is null.
pub async fn list(client: &Client, tenant: &str, what: &str, status: Option<String>, args: ListArgs) -> Result<Value> {
    let mut query: Vec<(&str, String)> = Vec::new();
    query.extend(status.map(|s| ("status", s)));
    for (name, value) in [
        ("type", args.event_type),
        ("source", args.source),
        ("route", args.route),
        ("since", args.since),
        ("until", args.until),
    ] {
        query.extend(value.map(|v| (name, v)));
    }
    let limit = args.limit.or(args.all.then_some(MAX_PAGE));
    query.extend(limit.map(|l| ("limit", l.to_string())));
    let mut cursor = args.cursor;
    let mut rows = Vec::new();
    loop {
        let mut q = query.clone();
        q.extend(cursor.take().map(|c| ("cursor", c)));
        let mut page = client.get_query(&["v1", "tenants", tenant, what], &q).await?;
        if !args.all {
            return Ok(page);
        }
        rows.extend(page[what].as_array_mut().map(std::mem::take).unwrap_or_default());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return Ok(json!({ what: rows, "next_cursor": null })),
        }
    }
}
