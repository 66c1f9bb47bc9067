//! `switchyard deliveries ...`: the outbox, its attempt log, and replay of dead letters.

use clap::Subcommand;
use serde_json::Value;

use super::client::{Body, Client, Result};
use super::output::{Output, cell, outln, pretty, print_fields, print_rows, print_table};
use super::pages::{self, ListArgs};

pub const EXAMPLES: &str = "\
Examples:
  switchyard deliveries list acme --status dead
  switchyard deliveries list acme --route slack --since 2026-11-01T00:00:00Z --all   # every page
  switchyard deliveries show acme dlv_01J...      # with every attempt
  switchyard deliveries replay acme dlv_01J...    # same webhook-id, fresh retry schedule
  switchyard deliveries replay acme --route slack --since 2026-11-01T00:00:00Z   # dead letters by filter
  switchyard deliveries replay acme --destination https://hooks.example.com/in --rerun   # through today's plugins
  switchyard destinations list acme               # health: ok, failing, disabled (and why)
  switchyard destinations enable acme https://hooks.example.com/in";

#[derive(Subcommand, Debug)]
pub enum DeliveriesCommand {
    /// List the tenant's deliveries, newest first
    List {
        tenant: String,
        /// Only deliveries in this state (dead = every attempt failed)
        #[arg(long, value_parser = ["pending", "delivered", "dead"])]
        status: Option<String>,
        #[command(flatten)]
        filters: ListArgs,
    },
    /// Show one delivery with its body and attempt log
    Show { tenant: String, id: String },
    /// Send one delivery again (same webhook-id), or every dead letter matching the filters
    Replay {
        tenant: String,
        /// One delivery (dead or delivered); without it, the dead letters matching the filters
        #[arg(conflicts_with_all = ["route", "destination", "since", "until", "rerun"])]
        id: Option<String>,
        /// Only dead letters of this route
        #[arg(long)]
        route: Option<String>,
        /// Only dead letters to this destination URL
        #[arg(long, value_name = "URL")]
        destination: Option<String>,
        /// Only dead letters created at or after this time (RFC 3339)
        #[arg(long)]
        since: Option<String>,
        /// Only dead letters created before this time (RFC 3339)
        #[arg(long)]
        until: Option<String>,
        /// Run the events through the route's current plugin chain instead of re-sending the
        /// stored payloads (new deliveries, new webhook ids)
        #[arg(long)]
        rerun: bool,
    },
}

pub async fn run(client: &Client, out: Output, cmd: DeliveriesCommand) -> Result<()> {
    match cmd {
        DeliveriesCommand::List { tenant, status, filters } => {
            let v = pages::list(client, &tenant, "deliveries", status, filters).await?;
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
        DeliveriesCommand::Replay { tenant, id: Some(id), .. } => {
            let v = client.post(&["v1", "tenants", &tenant, "deliveries", &id, "replay"], Body::Empty).await?;
            if !out.json(&v) {
                outln!("Re-queued delivery {id}: it is sent again with the same webhook-id.");
            }
        }
        DeliveriesCommand::Replay { tenant, id: None, route, destination, since, until, rerun } => {
            let mut filter = serde_json::Map::new();
            for (key, value) in [("route", route), ("url", destination), ("since", since), ("until", until)] {
                if let Some(v) = value {
                    filter.insert(key.into(), Value::String(v));
                }
            }
            filter.insert("mode".into(), Value::String(if rerun { "rerun" } else { "resend" }.into()));
            let v = client
                .post(&["v1", "tenants", &tenant, "deliveries", "replay"], Body::Json(Value::Object(filter)))
                .await?;
            if !out.json(&v) {
                outln!("Replayed {} dead letter(s) ({}).", cell(&v["replayed"]), cell(&v["mode"]));
                if rerun {
                    outln!(
                        "Queued {} new deliveries from route version {}.",
                        cell(&v["queued"]),
                        cell(&v["route_version"])
                    );
                    for s in v["skipped"].as_array().into_iter().flatten() {
                        outln!(
                            "  skipped {} on route {}: {}",
                            cell(&s["event"]),
                            cell(&s["route"]),
                            cell(&s["reason"])
                        );
                    }
                }
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

#[derive(Subcommand, Debug)]
pub enum DestinationsCommand {
    /// List the tenant's destinations with their health and settings (never secrets)
    List { tenant: String },
    /// Enable a destination the router disabled (410 Gone, or failing too long)
    Enable {
        tenant: String,
        #[arg(value_name = "URL")]
        destination: String,
    },
}

pub async fn destinations(client: &Client, out: Output, cmd: DestinationsCommand) -> Result<()> {
    match cmd {
        DestinationsCommand::List { tenant } => {
            let v = client.get(&["v1", "tenants", &tenant, "destinations"]).await?;
            if !out.json(&v) {
                let columns = [
                    ("URL", "url"),
                    ("STATUS", "status"),
                    ("FAILING SINCE", "failing_since"),
                    ("DISABLED", "disabled_at"),
                    ("REASON", "disabled_reason"),
                    ("OLD SECRET UNTIL", "previous_secret_until"),
                ];
                print_table(&v["destinations"], &columns, "No destinations yet: they come with applied routes.");
            }
        }
        DestinationsCommand::Enable { tenant, destination: url } => {
            let v = client
                .post(
                    &["v1", "tenants", &tenant, "destinations", "enable"],
                    Body::Json(serde_json::json!({ "url": url })),
                )
                .await?;
            if !out.json(&v) {
                outln!(
                    "Enabled {url}. Its dead letters stay dead: `switchyard deliveries replay {tenant} --destination {url}`."
                );
            }
        }
    }
    Ok(())
}
