//! `switchyard deliveries ...`: the outbox, its attempt log, and replay of dead letters.

use clap::Subcommand;
use serde_json::Value;

use super::client::{Body, Client, Result};
use super::output::{Output, cell, outln, pretty, print_fields, print_rows};

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
                let rows: Vec<Vec<String>> = v["deliveries"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|d| {
                        vec![
                            cell(&d["id"]),
                            cell(&d["event_id"]),
                            cell(&d["route"]),
                            cell(&d["status"]),
                            cell(&d["attempts"]),
                            last_result(d),
                            cell(&d["next_attempt_at"]),
                            cell(&d["url"]),
                        ]
                    })
                    .collect();
                if rows.is_empty() {
                    outln!("No deliveries.");
                } else {
                    let headers = ["ID", "EVENT", "ROUTE", "STATUS", "ATTEMPTS", "LAST RESULT", "NEXT ATTEMPT", "URL"];
                    print_rows(&headers, rows);
                }
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
                outln!("\nattempts:");
                let attempts = v["attempts_log"].as_array().map(Vec::as_slice).unwrap_or_default();
                if attempts.is_empty() {
                    outln!("  (none yet)");
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
                outln!("\nbody:\n{shown}");
            }
        }
        DeliveriesCommand::Replay { tenant, id } => {
            let v = client.post(&["v1", "tenants", &tenant, "deliveries", &id, "replay"], Body::Empty).await?;
            if !out.json(&v) {
                outln!("Re-queued delivery {id}: it is sent again with the same webhook-id.");
            }
        }
    }
    Ok(())
}

/// `HTTP 503`, or the start of the connection error when there was no response.
fn last_result(d: &Value) -> String {
    match (&d["last_status"], d["last_error"].as_str()) {
        (Value::Number(code), _) => format!("HTTP {code}"),
        (_, Some(error)) if error.chars().count() > 40 => format!("{}...", error.chars().take(40).collect::<String>()),
        (_, Some(error)) => error.to_owned(),
        _ => "-".to_owned(),
    }
}
