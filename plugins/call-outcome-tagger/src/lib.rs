//! `call-outcome-tagger`: classifies call-tracking outcomes for downstream reporting.
//!
//! For `call.outcome_tagged` events (everything else passes unchanged):
//! * drops outcomes listed in config `drop_outcomes` (comma-separated, default
//!   `spam,wrong_number`) with reason `noise outcome: <outcome_type>`;
//! * otherwise keeps the original payload and adds `classification` (won / pipeline / lost /
//!   noise), the cents amounts as dollars, and `previous_outcome`: the contact's last outcome
//!   from kv (key `contact:<id>:last_outcome`), which it then replaces with this one.

use serde_json::{Value, json};
use switchyard_guest::seeds::CallOutcomeTagged;
use switchyard_guest::{Error, Event, Result, Verdict, config, kv, log};

const EVENT_TYPE: &str = "call.outcome_tagged";
const DEFAULT_DROP_OUTCOMES: &str = "spam,wrong_number";

fn handle(mut ev: Event) -> Result<Verdict> {
    if ev.event_type() != EVENT_TYPE {
        return Ok(ev.pass());
    }
    let tagged: CallOutcomeTagged = ev.data()?;
    let outcome = tagged.outcome_type.as_str();

    let drop_outcomes = config::get_list("drop_outcomes", DEFAULT_DROP_OUTCOMES);
    if drop_outcomes.iter().any(|o| o == outcome) {
        return Ok(ev.drop(format!("noise outcome: {outcome}")));
    }

    let classification = classify(outcome);

    // Keep every original field (including ones the typed struct does not know about).
    let Value::Object(mut data) = ev.data_json()? else {
        return Err(Error::invalid_input("call.outcome_tagged data must be a JSON object"));
    };
    data.insert("classification".into(), classification.into());
    data.insert("revenue_dollars".into(), dollars(tagged.revenue_cents));
    data.insert("estimated_value_dollars".into(), dollars(tagged.estimated_value_cents));
    data.insert("actual_value_dollars".into(), dollars(tagged.actual_value_cents));

    let key = tagged.contact.as_ref().and_then(|c| c.id).map(|id| format!("contact:{id}:last_outcome"));
    let previous = match &key {
        // A stored value that is not JSON (written by something else) is passed on as a string.
        Some(key) => {
            kv::get(key).map(|text| serde_json::from_str(&text).unwrap_or(Value::String(text))).unwrap_or(Value::Null)
        }
        None => Value::Null,
    };
    data.insert("previous_outcome".into(), previous);

    if let Some(key) = &key {
        kv::set_json(
            key,
            &json!({
                "outcome_type": outcome,
                "classification": classification,
                "call_session_id": tagged.call_session_id,
                "tagged_at": ev.time(),
            }),
        )?;
    }

    log::info(format!(
        "call outcome {outcome} (call session {}) classified as {classification}",
        tagged.call_session_id.map_or_else(|| "unknown".to_owned(), |id| id.to_string())
    ));

    ev.set_data(&data)?;
    Ok(ev.pass())
}

/// The reporting bucket for an outcome type.
fn classify(outcome: &str) -> &'static str {
    match outcome {
        "booked" => "won",
        "quoted" | "follow_up" => "pipeline",
        "not_interested" | "no_answer" => "lost",
        _ => "noise",
    }
}

/// Cents as dollars (`250000` → `2500.0`); `null` when the amount is absent.
fn dollars(cents: Option<i64>) -> Value {
    cents.map_or(Value::Null, |c| json!(c as f64 / 100.0))
}

switchyard_guest::plugin!(handle);
