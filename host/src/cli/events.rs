//! `switchyard events ...`: what arrived and what the routes did with it.

use clap::Subcommand;

use super::client::{Client, Result};
use super::output::{Output, outln, pretty, print_fields, print_table};
use super::pages::{self, ListArgs};

pub const EXAMPLES: &str = "\
Examples:
  switchyard events list acme --status pending --limit 20
  switchyard events list acme --type call.ended --since 2026-11-01T00:00:00Z --all   # every page
  switchyard events show acme evt_01J...          # route results and deliveries of one event";

#[derive(Subcommand, Debug)]
pub enum EventsCommand {
    /// List the tenant's events, newest first
    List {
        tenant: String,
        /// Only events in this state
        #[arg(long, value_parser = ["pending", "processed"])]
        status: Option<String>,
        #[command(flatten)]
        filters: ListArgs,
    },
    /// Show one event: its data, what each route did, its deliveries
    Show { tenant: String, id: String },
}

pub async fn run(client: &Client, out: Output, cmd: EventsCommand) -> Result<()> {
    match cmd {
        EventsCommand::List { tenant, status, filters } => {
            let v = pages::list(client, &tenant, "events", status, filters).await?;
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
