//! The query of list endpoints (`?status=&type=&source=&route=&since=&until=&limit=&cursor=`)
//! and the opaque cursor that resumes a walk. Each bad value is answered 400 naming its
//! parameter.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::DateTime;

use super::ApiError;
use crate::store::{ListFilter, PageCursor};

/// Page size when `limit` is not given, and the most one page may hold.
pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 1000;

const PARAMETERS: &[&str] = &["status", "type", "source", "route", "since", "until", "limit", "cursor"];

/// The query parameters every list takes besides `status`, for the OpenAPI document:
/// `ListQuery::parse` reads them (it also refuses unknown and repeated ones).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // documentation only
pub struct ListParams {
    /// Event type, exactly.
    #[param(rename = "type", min_length = 1)]
    event_type: Option<String>,
    /// Source name, exactly.
    #[param(min_length = 1)]
    source: Option<String>,
    /// Route name, exactly.
    #[param(min_length = 1)]
    route: Option<String>,
    /// Received at or after (RFC 3339).
    #[param(format = DateTime)]
    since: Option<String>,
    /// Received before (RFC 3339); after `since`.
    #[param(format = DateTime)]
    until: Option<String>,
    /// Page size, 50 when omitted.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    #[param(min_length = 1)]
    cursor: Option<String>,
}

/// A list query, checked: the filter (with the cursor's position) and the page size.
#[derive(Debug)]
pub struct ListQuery {
    pub filter: ListFilter,
    pub limit: u32,
}

impl ListQuery {
    /// Parses the query's pairs; `statuses` are the values `status` may take.
    pub fn parse(pairs: &[(String, String)], statuses: &[&str]) -> Result<Self, ApiError> {
        let bad = |m: String| ApiError::BadRequest(m);
        let mut filter = ListFilter::default();
        let mut limit = None;
        let mut seen: Vec<&str> = Vec::new();
        for (name, value) in pairs {
            let Some(&known) = PARAMETERS.iter().find(|p| **p == name) else {
                return Err(bad(format!("unknown query parameter {name:?}; known: {}", PARAMETERS.join(", "))));
            };
            if seen.contains(&known) {
                return Err(bad(format!("{known} is given more than once")));
            }
            seen.push(known);
            if value.is_empty() {
                return Err(bad(format!("{known} must not be empty")));
            }
            match known {
                "status" if !statuses.contains(&value.as_str()) => {
                    return Err(bad(format!("status must be one of {}", statuses.join(", "))));
                }
                "status" => filter.status = Some(value.clone()),
                "type" => filter.event_type = Some(value.clone()),
                "source" => filter.source = Some(value.clone()),
                "route" => filter.route = Some(value.clone()),
                "since" => filter.since = Some(time(known, value)?),
                "until" => filter.until = Some(time(known, value)?),
                "cursor" => {
                    filter.after =
                        Some(decode_cursor(value).ok_or_else(|| bad("cursor is not one this router gave out".into()))?);
                }
                _ => {
                    let n = value.parse::<u32>().ok().filter(|n| (1..=MAX_LIMIT).contains(n));
                    limit = Some(n.ok_or_else(|| bad(format!("limit must be a whole number from 1 to {MAX_LIMIT}")))?);
                }
            }
        }
        if let (Some(since), Some(until)) = (filter.since, filter.until)
            && since >= until
        {
            return Err(bad("since must be before until".into()));
        }
        Ok(Self { filter, limit: limit.unwrap_or(DEFAULT_LIMIT) })
    }
}

/// An RFC 3339 time as unix ms.
fn time(name: &str, value: &str) -> Result<i64, ApiError> {
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.timestamp_millis())
        .map_err(|_| ApiError::BadRequest(format!("{name} must be an RFC 3339 time, like 2026-11-01T00:00:00Z")))
}

/// The cursor as the API shows it: opaque to clients, `<ms>.<id>` underneath.
pub fn encode_cursor(cursor: &PageCursor) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}.{}", cursor.at, cursor.id))
}

fn decode_cursor(value: &str) -> Option<PageCursor> {
    let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(value).ok()?).ok()?;
    let (at, id) = raw.split_once('.')?;
    Some(PageCursor { at: at.parse().ok()?, id: id.to_owned() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Result<ListQuery, ApiError> {
        let pairs: Vec<(String, String)> = pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
        ListQuery::parse(&pairs, &["pending", "processed"])
    }

    fn message(r: Result<ListQuery, ApiError>) -> String {
        match r {
            Err(ApiError::BadRequest(m)) => m,
            other => panic!("expected 400, got {other:?}"),
        }
    }

    #[test]
    fn cursors_round_trip_and_refuse_what_they_did_not_make() {
        let c = PageCursor { at: 1_764_000_000_123, id: "evt_01JABC".into() };
        assert_eq!(decode_cursor(&encode_cursor(&c)), Some(c));
        assert_eq!(decode_cursor("not a cursor!"), None);
        assert_eq!(decode_cursor(&URL_SAFE_NO_PAD.encode("x.evt_1")), None);
        assert!(message(q(&[("cursor", "zzz")])).contains("cursor"));
    }

    #[test]
    fn each_bad_value_names_its_parameter() {
        assert!(message(q(&[("limit", "0")])).starts_with("limit"));
        assert!(message(q(&[("limit", "1001")])).starts_with("limit"));
        assert!(message(q(&[("limit", "ten")])).starts_with("limit"));
        assert!(message(q(&[("status", "dead")])).starts_with("status"));
        assert!(message(q(&[("since", "yesterday")])).starts_with("since"));
        assert!(message(q(&[("until", "2026-13-01T00:00:00Z")])).starts_with("until"));
        assert!(message(q(&[("type", "")])).starts_with("type"));
        assert!(message(q(&[("colour", "red")])).contains("\"colour\""));
        assert!(message(q(&[("route", "a"), ("route", "b")])).starts_with("route"));
        let reversed = [("since", "2026-11-02T00:00:00Z"), ("until", "2026-11-01T00:00:00Z")];
        assert!(message(q(&reversed)).contains("since must be before until"));
    }

    #[test]
    fn a_good_query_becomes_a_filter() {
        let l =
            q(&[("status", "pending"), ("type", "call.ended"), ("since", "2026-11-01T00:00:00+01:00"), ("limit", "7")])
                .unwrap();
        assert_eq!(l.limit, 7);
        assert_eq!(l.filter.status.as_deref(), Some("pending"));
        assert_eq!(l.filter.event_type.as_deref(), Some("call.ended"));
        assert_eq!(
            l.filter.since,
            Some(DateTime::parse_from_rfc3339("2026-10-31T23:00:00Z").unwrap().timestamp_millis())
        );
        assert_eq!(q(&[]).unwrap().limit, DEFAULT_LIMIT);
    }
}
