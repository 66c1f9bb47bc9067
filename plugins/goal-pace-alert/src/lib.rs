//! `goal-pace-alert`: turns a goal falling behind into an alert; filters out other pace changes.
//!
//! For `goal.pace_changed` (everything else passes unchanged): when the pace went from
//! `on_pace` or `ahead` to `behind`, the event becomes `goal.pace_alert` with an alert payload;
//! any other change is dropped with reason `pace did not worsen: <previous> -> <pace>`.

use serde_json::json;
use switchyard_guest::seeds::GoalPaceChanged;
use switchyard_guest::{Event, Result, Verdict};

const EVENT_TYPE: &str = "goal.pace_changed";
const ALERT_TYPE: &str = "goal.pace_alert";

fn handle(mut ev: Event) -> Result<Verdict> {
    if ev.event_type() != EVENT_TYPE {
        return Ok(ev.pass());
    }
    let change: GoalPaceChanged = ev.data()?;
    let previous = change.previous_pace.as_deref();

    let was = match previous {
        Some("on_pace") => "on pace",
        Some("ahead") => "ahead",
        _ => "",
    };
    if was.is_empty() || change.pace != "behind" {
        return Ok(ev.drop(format!("pace did not worsen: {} -> {}", previous.unwrap_or("none"), change.pace)));
    }

    let alert = json!({
        "alert": "goal_pace_behind",
        "severity": "warning",
        "goal_id": change.goal_id,
        // The coaching platform's account id travels as the event subject.
        "account_id": ev.subject(),
        "pace": "behind",
        "previous_pace": previous,
        "changed_at": change.changed_at,
        "message": format!("Goal {} fell behind pace (was {was}).", change.goal_id),
    });
    ev.set_event_type(ALERT_TYPE);
    ev.set_data(&alert)?;
    Ok(ev.pass())
}

switchyard_guest::plugin!(handle);
