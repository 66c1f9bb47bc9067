//! `switchyard events ...`: what arrived and what the routes did with it.

use clap::Subcommand;

use super::client::{Client, Result};
use super::output::{Output, outln, pretty, print_fields, print_table};

pub const EXAMPLES: &str = "\
Examples:
  switchyard events list acme --status pending --limit 20
  switchyard events show acme evt_01J...          # route results and deliveries of one event";

#[derive(Subcommand, Debug)]
pub enum EventsCommand {
    /// List the tenant's events, newest first
    List {
        tenant: String,
        /// Only events in this state
        #[arg(long, value_parser = ["pending", "processed"])]
        status: Option<String>,
        /// At most this many (1-1000) [default: 50]
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1000))]
        limit: Option<u32>,
    },
    /// Show one event: its data, what each route did, its deliveries
    Show { tenant: String, id: String },
}

pub async fn run(client: &Client, out: Output, cmd: EventsCommand) -> Result<()> {
    match cmd {
        EventsCommand::List { tenant, status, limit } => {
            let mut query = Vec::new();
            query.extend(status.map(|s| ("status", s)));
            query.extend(limit.map(|l| ("limit", l.to_string())));
            let v = client.get_query(&["v1", "tenants", &tenant, "events"], &query).await?;
            if !out.json(&v) {
                print_table(
                    &v["events"],
                    &[
                        ("ID", "id"),
                        ("SOURCE", "source"),
                        ("TYPE", "type"),
                        ("STATUS", "status"),
                        ("ROUTE VERSION", "route_version"),
                        ("RECEIVED", "received_at"),
                    ],
                    "No events.",
                );
            }
        }
        EventsCommand::Show { tenant, id } => {
            let v = client.get(&["v1", "tenants", &tenant, "events", &id]).await?;
            if !out.json(&v) {
                print_fields(
                    &v,
                    &[
                        ("id", "id"),
                        ("source", "source"),
                        ("type", "type"),
                        ("upstream id", "upstream_id"),
                        ("subject", "subject"),
                        ("time", "time"),
                        ("status", "status"),
                        ("received", "received_at"),
                        ("processed", "processed_at"),
                        ("routes version", "route_version"),
                    ],
                );
                outln!("\nroutes:");
                print_table(
                    &v["routes"],
                    &[("ROUTE", "route"), ("OUTCOME", "outcome"), ("OUTPUTS", "outputs"), ("DETAIL", "detail")],
                    "  (no route matched)",
                );
                outln!("\ndeliveries:");
                print_table(
                    &v["deliveries"],
                    &[("ID", "id"), ("ROUTE", "route"), ("STATUS", "status"), ("ATTEMPTS", "attempts"), ("URL", "url")],
                    "  (none)",
                );
                outln!("\ndata:\n{}", pretty(&v["data"]));
            }
        }
    }
    Ok(())
}
