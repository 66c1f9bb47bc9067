//! `switchyard deliveries ...`: the outbox, its attempt log, and replay of dead letters.

use clap::Subcommand;
use serde_json::Value;

use super::client::{Body, Client, Result, decode};
use super::output::{Output, opt_time, outln, pretty, print_list, print_pairs, show, time};
use super::pages::{self, ListArgs};
use switchyard::api::types::{
    DeliveryDetail, DeliveryPage, DeliverySummary, DestinationList, DestinationView, ReplayReport, Requeued,
};

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
                let page: DeliveryPage = decode(v)?;
                let rows = page
                    .deliveries
                    .iter()
                    .map(|d| {
                        vec![
                            show(&d.id),
                            show(&d.event_id),
                            show(&d.route),
                            show(&d.status),
                            show(&d.attempts),
                            last_result(d),
                            opt_time(d.next_attempt_at),
                            show(&d.url),
                        ]
                    })
                    .collect();
                let headers = ["ID", "EVENT", "ROUTE", "STATUS", "ATTEMPTS", "LAST RESULT", "NEXT ATTEMPT", "URL"];
                print_list(&headers, rows, "No deliveries.");
            }
        }
        DeliveriesCommand::Show { tenant, id } => {
            let v = client.get(&["v1", "tenants", &tenant, "deliveries", &id]).await?;
            if !out.json(&v) {
                let detail: DeliveryDetail = decode(v)?;
                let d = &detail.delivery;
                print_pairs(&[
                    ("id", show(&d.id)),
                    ("event", show(&d.event_id)),
                    ("route", show(&d.route)),
                    ("url", show(&d.url)),
                    ("type", show(&d.event_type)),
                    ("status", show(&d.status)),
                    ("attempts", show(&d.attempts)),
                    ("next attempt", opt_time(d.next_attempt_at)),
                    ("last status", show(&d.last_status)),
                    ("last error", show(&d.last_error)),
                    ("created", time(d.created_at)),
                    ("updated", time(d.updated_at)),
                ]);
                outln!("\nattempts:");
                let attempts = detail
                    .attempts_log
                    .iter()
                    .map(|a| {
                        vec![
                            show(&a.attempt),
                            time(a.started_at),
                            format!("{} ms", a.duration_ms),
                            show(&a.status_code),
                            show(&a.error),
                        ]
                    })
                    .collect();
                print_list(&["#", "STARTED", "TOOK", "STATUS", "ERROR"], attempts, "  (none yet)");
                // The body is the exact JSON text sent; pretty-print it when it parses.
                let body = &detail.body;
                let shown = serde_json::from_str::<Value>(body).map(|b| pretty(&b)).unwrap_or_else(|_| body.clone());
                outln!("\nbody:\n{shown}");
            }
        }
        DeliveriesCommand::Replay { tenant, id: Some(id), .. } => {
            let v = client.post(&["v1", "tenants", &tenant, "deliveries", &id, "replay"], Body::Empty).await?;
            if !out.json(&v) {
                let requeued: Requeued = decode(v)?;
                outln!("Re-queued delivery {}: it is sent again with the same webhook-id.", requeued.id);
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
                let report: ReplayReport = decode(v)?;
                outln!("Replayed {} dead letter(s) ({}).", report.replayed, show(&report.mode));
                if rerun {
                    outln!(
                        "Queued {} new deliveries from route version {}.",
                        show(&report.queued),
                        show(&report.route_version.flatten())
                    );
                    for s in report.skipped.iter().flatten() {
                        outln!("  skipped {} on route {}: {}", s.event, s.route, s.reason);
                    }
                }
            }
        }
    }
    Ok(())
}

/// `HTTP 503`, or the start of the connection error when there was no response.
fn last_result(d: &DeliverySummary) -> String {
    match (d.last_status, d.last_error.as_deref()) {
        (Some(code), _) => format!("HTTP {code}"),
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
                let list: DestinationList = decode(v)?;
                let rows = list
                    .destinations
                    .iter()
                    .map(|d| {
                        let row = d;
                        vec![
                            show(&row.url),
                            show(&d.status),
                            opt_time(row.failing_since),
                            opt_time(row.disabled_at),
                            show(&row.disabled_reason),
                            opt_time(row.previous_secret_until),
                        ]
                    })
                    .collect();
                let headers = ["URL", "STATUS", "FAILING SINCE", "DISABLED", "REASON", "OLD SECRET UNTIL"];
                print_list(&headers, rows, "No destinations yet: they come with applied routes.");
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
                let enabled: DestinationView = decode(v)?;
                let url = &enabled.url;
                outln!(
                    "Enabled {url}. Its dead letters stay dead: `switchyard deliveries replay {tenant} --destination {url}`."
                );
            }
        }
    }
    Ok(())
}
