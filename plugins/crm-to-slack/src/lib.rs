//! `crm-to-slack`: fans every CRM event out to one Slack message per configured channel.
//!
//! Config `channels` (comma-separated, trimmed, default `#sales`) lists the channels. Each
//! output is a `slack.message` event derived from the input (same tenant, source, time,
//! subject) with attribute `slack-channel` and data `{"channel", "text", "source_event"}`.
//! An empty channel list emits nothing, which drops the event.

use serde_json::json;
use switchyard_guest::seeds::{Deal, Invoice, Lead};
use switchyard_guest::{Event, Result, Verdict, config};

const OUTPUT_TYPE: &str = "slack.message";
const CHANNEL_ATTRIBUTE: &str = "slack-channel";

fn handle(ev: Event) -> Result<Verdict> {
    let channels = config::get_list("channels", "#sales");
    let text = message_text(&ev);
    let outputs = channels
        .iter()
        .map(|channel| {
            let data = json!({
                "channel": channel,
                "text": text,
                "source_event": ev.event_type(),
            });
            Ok(ev.derive(OUTPUT_TYPE, &data)?.with_attribute(CHANNEL_ATTRIBUTE, channel))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Verdict::emit(outputs))
}

/// One line describing the event. Payloads that do not parse as the expected entity fall back
/// to the generic line rather than failing the event: a notification is better than none.
fn message_text(ev: &Event) -> String {
    let event_type = ev.event_type();
    let text = match event_type {
        "deal.created" | "deal.updated" | "deal.stageChanged" => ev.data::<Deal>().ok().map(|deal| {
            let client = deal.client.as_ref().and_then(|c| c.name.as_deref()).unwrap_or("unknown client");
            format!(
                "Deal {} ({}) for {client}: ${} - stage {}",
                or_unknown(deal.title.as_deref()),
                or_unknown(deal.number.as_deref()),
                deal.price.map_or_else(|| "?".to_owned(), number),
                or_unknown(deal.stage.as_deref()),
            )
        }),
        t if t.starts_with("lead.") => ev.data::<Lead>().ok().map(|lead| {
            format!(
                "Lead {}: {} (stage {})",
                or_unknown(lead.name.as_deref()),
                or_unknown(lead.title.as_deref()),
                or_unknown(lead.stage.as_deref()),
            )
        }),
        t if t.starts_with("invoice.") => ev.data::<Invoice>().ok().map(|invoice| {
            format!(
                "Invoice {} for {}: {}, total {}",
                or_unknown(invoice.number.as_deref()),
                or_unknown(invoice.client_name.as_deref()),
                or_unknown(invoice.status.as_deref()),
                invoice.total.map_or_else(|| "?".to_owned(), number),
            )
        }),
        _ => None,
    };
    text.unwrap_or_else(|| format!("CRM event {event_type}"))
}

/// A missing field shows as `?` so the message still reads.
fn or_unknown(value: Option<&str>) -> &str {
    value.unwrap_or("?")
}

/// Amounts without a spurious `.0`: `25000` → `25000`, `99.5` → `99.5`.
fn number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 { format!("{}", value as i64) } else { format!("{value}") }
}

switchyard_guest::plugin!(handle);
