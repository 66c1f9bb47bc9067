//! `switchyard deliveries ...`: the outbox, its attempt log, and replay of dead letters.

use clap::Subcommand;
use serde_json::Value;

use super::client::{Body, Client, Result};
use super::output::{Output, cell, pretty, print_fields, print_rows, print_table};

pub const EXAMPLES: &str = "\
Examples:
  switchyard deliveries list acme --status dead
  switchyard deliveries show acme dlv_01J...      # with every attempt
  switchyard deliveries replay acme dlv_01J...    # same webhook-id, fresh retry schedule";

#[derive(Subcommand, Debug)]
pub enum DeliveriesCommand {
    /// List the tenant's deliveries, newest first
    List {
        tenant: String,
        /// Only deliveries in this state (dead = every attempt failed)
        #[arg(long, value_parser = ["pending", "delivered", "dead"])]
        status: Option<String>,
        /// At most this many (1-1000) [default: 50]
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1000))]
        limit: Option<u32>,
    },
    /// Show one delivery with its body and attempt log
    Show { tenant: String, id: String },
    /// Send a dead (or delivered) delivery again, with the same webhook-id
    Replay { tenant: String, id: String },
}

pub async fn run(client: &Client, out: Output, cmd: DeliveriesCommand) -> Result<()> {
    match cmd {
        DeliveriesCommand::List { tenant, status, limit } => {
            let mut query = Vec::new();
            query.extend(status.map(|s| ("status", s)));
            query.extend(limit.map(|l| ("limit", l.to_string())));
            let v = client.get_query(&["v1", "tenants", &tenant, "deliveries"], &query).await?;
            if !out.json(&v) {
                print_table(
                    &v["deliveries"],
                    &[
                        ("ID", "id"),
                        ("EVENT", "event_id"),
                        ("ROUTE", "route"),
                        ("STATUS", "status"),
                        ("ATTEMPTS", "attempts"),
                        ("LAST STATUS", "last_status"),
                        ("NEXT ATTEMPT", "next_attempt_at"),
                        ("URL", "url"),
                    ],
                    "No deliveries.",
                );
            }
        }
        DeliveriesCommand::Show { tenant, id } => {
            let v = client.get(&["v1", "tenants", &tenant, "deliveries", &id]).await?;
            if !out.json(&v) {
                print_fields(
                    &v,
                    &[
                        ("id", "id"),
                        ("event", "event_id"),
                        ("route", "route"),
                        ("url", "url"),
                        ("type", "type"),
                        ("status", "status"),
                        ("attempts", "attempts"),
                        ("next attempt", "next_attempt_at"),
                        ("last status", "last_status"),
                        ("last error", "last_error"),
                        ("created", "created_at"),
                        ("updated", "updated_at"),
                    ],
                );
                println!("\nattempts:");
                let attempts = v["attempts_log"].as_array().map(Vec::as_slice).unwrap_or_default();
                if attempts.is_empty() {
                    println!("  (none yet)");
                } else {
                    let rows = attempts
                        .iter()
                        .map(|a| {
                            vec![
                                cell(&a["attempt"]),
                                cell(&a["started_at"]),
                                format!("{} ms", cell(&a["duration_ms"])),
                                cell(&a["status_code"]),
                                cell(&a["error"]),
                            ]
                        })
                        .collect();
                    print_rows(&["#", "STARTED", "TOOK", "STATUS", "ERROR"], rows);
                }
                // The body is the exact JSON text sent; pretty-print it when it parses.
                let body = v["body"].as_str().unwrap_or_default();
                let shown = serde_json::from_str::<Value>(body).map(|b| pretty(&b)).unwrap_or_else(|_| body.to_owned());
                println!("\nbody:\n{shown}");
            }
        }
        DeliveriesCommand::Replay { tenant, id } => {
            let v = client.post(&["v1", "tenants", &tenant, "deliveries", &id, "replay"], Body::Empty).await?;
            if !out.json(&v) {
                println!("Re-queued delivery {id}: it is sent again with the same webhook-id.");
            }
        }
    }
    Ok(())
}
