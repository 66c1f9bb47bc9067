//! `svix-user-sync`: maps the sales-training product's user lifecycle onto directory events.
//!
//! * `user.created` / `user.updated` / `user.deleted` (data `{"user": {...}}`) become
//!   `directory.user_created` / `_updated` / `_deleted` with a flat payload:
//!   `action`, `user_id`, `email`, `name`, `org_id`, `role`, `team_id`.
//! * `org.*` passes unchanged (directory consumers want org changes as-is).
//! * anything else is dropped with reason `not a directory event: <type>`.

use serde_json::json;
use switchyard_guest::seeds::UserPayload;
use switchyard_guest::{Event, Result, Verdict};

fn handle(mut ev: Event) -> Result<Verdict> {
    let action = match ev.event_type() {
        "user.created" => "created",
        "user.updated" => "updated",
        "user.deleted" => "deleted",
        t if t.starts_with("org.") => return Ok(ev.pass()),
        t => {
            let reason = format!("not a directory event: {t}");
            return Ok(ev.drop(reason));
        }
    };

    let UserPayload { user } = ev.data()?;
    let data = json!({
        "action": action,
        "user_id": user.id,
        "email": user.email,
        "name": user.name,
        "org_id": user.org_id,
        "role": user.role,
        "team_id": user.team_id,
    });
    ev.set_event_type(format!("directory.user_{action}"));
    ev.set_data(&data)?;
    Ok(ev.pass())
}

switchyard_guest::plugin!(handle);
