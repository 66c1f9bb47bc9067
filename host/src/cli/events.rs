//! `switchyard events ...`: what arrived and what the routes did with it.

use clap::Subcommand;

use super::client::{Client, Result, decode};
use super::output::{Output, opt_time, outln, pretty, print_list, print_pairs, show, time};
use super::pages::{self, ListArgs};
use switchyard::api::types::{EventDetail, EventPage};

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
                let page: EventPage = decode(v)?;
                let rows = page
                    .events
                    .iter()
                    .map(|e| {
                        vec![
                            show(&e.id),
                            show(&e.source),
                            show(&e.event_type),
                            show(&e.status),
                            show(&e.route_version),
                            time(e.received_at),
                        ]
                    })
                    .collect();
                print_list(&["ID", "SOURCE", "TYPE", "STATUS", "ROUTE VERSION", "RECEIVED"], rows, "No events.");
            }
        }
        EventsCommand::Show { tenant, id } => {
            let v = client.get(&["v1", "tenants", &tenant, "events", &id]).await?;
            if !out.json(&v) {
                let d: EventDetail = decode(v)?;
                let e = &d.event;
                print_pairs(&[
                    ("id", show(&e.id)),
                    ("source", show(&e.source)),
                    ("type", show(&e.event_type)),
                    ("upstream id", show(&e.upstream_id)),
                    ("subject", show(&e.subject)),
                    ("time", show(&e.time)),
                    ("status", show(&e.status)),
                    ("received", time(e.received_at)),
                    ("processed", opt_time(e.processed_at)),
                    ("routes version", show(&e.route_version)),
                ]);
                outln!("\nroutes:");
                let routes = d
                    .routes
                    .iter()
                    .map(|r| vec![show(&r.route), show(&r.outcome), show(&r.outputs), show(&r.detail)])
                    .collect();
                print_list(&["ROUTE", "OUTCOME", "OUTPUTS", "DETAIL"], routes, "  (no route matched)");
                outln!("\ndeliveries:");
                let deliveries = d
                    .deliveries
                    .iter()
                    .map(|d| vec![show(&d.id), show(&d.route), show(&d.status), show(&d.attempts), show(&d.url)])
                    .collect();
                print_list(&["ID", "ROUTE", "STATUS", "ATTEMPTS", "URL"], deliveries, "  (none)");
                outln!("\ndata:\n{}", pretty(&d.data));
            }
        }
    }
    Ok(())
}
