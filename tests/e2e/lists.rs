//! Lists of events and deliveries: cursor pagination that stays stable while events arrive,
//! each filter, and 400s that name the parameter.

use std::collections::HashSet;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{Receiver, TestRouter, route};

fn call(event_type: &str, n: usize) -> Vec<u8> {
    json!({"event": event_type, "timestamp": "2026-03-25T18:35:00Z", "data": {"n": n}}).to_string().into_bytes()
}

/// Walks every page of `path` (which has a `?`) with `limit`, returning the rows in order.
async fn walk(r: &TestRouter, path: &str, key: &str, limit: u32, mut between: impl AsyncFnMut()) -> Vec<Value> {
    let (mut rows, mut cursor, mut pages) = (Vec::new(), None::<String>, 0);
    loop {
        let mut url = format!("{path}&limit={limit}");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let page = r.get(&url).await;
        let got = page[key].as_array().unwrap();
        assert!(got.len() <= limit as usize);
        rows.extend(got.iter().cloned());
        pages += 1;
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
        assert!(pages < 100, "the walk does not end");
        between().await;
    }
    rows
}

fn ids(rows: &[Value]) -> Vec<String> {
    rows.iter().map(|r| r["id"].as_str().unwrap().to_owned()).collect()
}

/// Newest first: (time, id) strictly decreasing, so no row repeats.
#[track_caller]
fn assert_newest_first(rows: &[Value], time: &str) {
    let keys: Vec<(String, String)> =
        rows.iter().map(|r| (r[time].as_str().unwrap().to_owned(), r["id"].as_str().unwrap().to_owned())).collect();
    assert!(keys.windows(2).all(|w| w[0] > w[1]), "not in (time, id) order: {keys:?}");
}

#[tokio::test]
async fn pages_return_each_event_once_in_order_while_new_ones_arrive() {
    let r = TestRouter::start().await;
    r.tenant("acme").await;
    r.source("acme", "calls", "call-tracking", None).await;
    let mut sent = HashSet::new();
    for n in 0..250 {
        sent.insert(r.send("acme", "calls", &call("call.ended", n)).await);
    }

    let rows = walk(&r, "/v1/tenants/acme/events?", "events", 100, async || {}).await;
    assert_eq!(rows.len(), 250);
    assert_newest_first(&rows, "received_at");
    assert_eq!(ids(&rows).into_iter().collect::<HashSet<_>>(), sent);

    // Again, with 20 new events arriving between every two pages: the walk returns exactly
    // the events that were there when it began (the new ones are newer than its position).
    let mut n = 1000;
    let rows = walk(&r, "/v1/tenants/acme/events?", "events", 100, async || {
        for _ in 0..20 {
            r.send("acme", "calls", &call("call.ended", n)).await;
            n += 1;
        }
    })
    .await;
    assert_eq!(rows.len(), 250, "no event twice, none missed");
    assert_newest_first(&rows, "received_at");
    assert_eq!(ids(&rows).into_iter().collect::<HashSet<_>>(), sent);
    // The new ones are there for the next walk.
    let all = walk(&r, "/v1/tenants/acme/events?", "events", 1000, async || {}).await;
    assert_eq!(all.len(), 250 + 40);
    r.stop().await;
}

#[tokio::test]
async fn each_filter_narrows_events_and_deliveries() {
    let rx = Receiver::start().await;
    let r = TestRouter::start().await;
    r.tenant("acme").await;
    r.source("acme", "calls", "call-tracking", None).await;
    r.source("acme", "other", "call-tracking", None).await;
    r.plugin("acme", "passthrough").await;
    let doc = json!({"routes": [
        route("ended", "calls", &["call.ended"], &["passthrough"], &rx.url("ended")),
        route("tagged", "*", &["call.outcome_tagged"], &["passthrough"], &rx.url("tagged")),
    ]});
    r.routes("acme", doc).await;

    // First batch: 3 ended + 2 tagged from calls; then, after `mid`, 4 tagged from other.
    let mut last = String::new();
    for n in 0..3 {
        last = r.send("acme", "calls", &call("call.ended", n)).await;
    }
    for n in 3..5 {
        r.send("acme", "calls", &call("call.outcome_tagged", n)).await;
    }
    // Deliveries are created when their event is processed: let the first batch's be done.
    rx.wait_for("/ended", 3, crate::support::WAIT).await;
    rx.wait_for("/tagged", 2, crate::support::WAIT).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let mid = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    tokio::time::sleep(Duration::from_millis(20)).await;
    for n in 5..9 {
        last = r.send("acme", "other", &call("call.outcome_tagged", n)).await;
    }
    r.processed("acme", &last).await;
    rx.wait_for("/ended", 3, crate::support::WAIT).await;
    rx.wait_for("/tagged", 6, crate::support::WAIT).await;
    // Wait until every event is processed and every delivery delivered.
    for _ in 0..200 {
        let pending = r.get("/v1/tenants/acme/events?status=pending").await["events"].as_array().unwrap().len()
            + r.get("/v1/tenants/acme/deliveries?status=pending").await["deliveries"].as_array().unwrap().len();
        if pending == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }

    let count = |key: &'static str, query: String| {
        let r = &r;
        async move {
            let page = r.get(&format!("/v1/tenants/acme/{key}?{query}")).await;
            assert!(page["next_cursor"].is_null(), "{page}");
            page[key].as_array().unwrap().len()
        }
    };
    let since = format!("since={}", urlencode(&mid));
    let until = format!("until={}", urlencode(&mid));
    // Events.
    assert_eq!(count("events", String::new()).await, 9);
    assert_eq!(count("events", "type=call.ended".into()).await, 3);
    assert_eq!(count("events", "type=call.outcome_tagged".into()).await, 6);
    assert_eq!(count("events", "source=other".into()).await, 4);
    assert_eq!(count("events", "route=ended".into()).await, 3);
    assert_eq!(count("events", "route=tagged&source=calls".into()).await, 2);
    assert_eq!(count("events", "status=processed".into()).await, 9);
    assert_eq!(count("events", "status=pending".into()).await, 0);
    assert_eq!(count("events", since.clone()).await, 4);
    assert_eq!(count("events", until.clone()).await, 5);
    assert_eq!(count("events", format!("{since}&type=call.ended")).await, 0);
    // Deliveries (one per event here).
    assert_eq!(count("deliveries", String::new()).await, 9);
    assert_eq!(count("deliveries", "route=ended".into()).await, 3);
    assert_eq!(count("deliveries", "type=call.outcome_tagged".into()).await, 6);
    assert_eq!(count("deliveries", "source=other".into()).await, 4);
    assert_eq!(count("deliveries", "status=delivered".into()).await, 9);
    assert_eq!(count("deliveries", "status=dead".into()).await, 0);
    assert_eq!(count("deliveries", since.clone()).await, 4);
    assert_eq!(count("deliveries", format!("{until}&route=tagged")).await, 2);
    let rows = walk(&r, "/v1/tenants/acme/deliveries?route=tagged", "deliveries", 4, async || {}).await;
    assert_eq!(rows.len(), 6);
    assert_newest_first(&rows, "created_at");
    r.stop().await;
}

fn urlencode(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}

#[tokio::test]
async fn bad_list_parameters_are_refused_naming_the_parameter() {
    let r = TestRouter::start().await;
    r.tenant("acme").await;
    for (query, names) in [
        ("limit=0", "limit"),
        ("limit=5000", "limit"),
        ("limit=many", "limit"),
        ("since=yesterday", "since"),
        ("until=2026-11-01", "until"),
        ("cursor=garbage", "cursor"),
        ("status=lost", "status"),
        ("type=", "type"),
        ("colour=red", "colour"),
        ("since=2026-11-02T00:00:00Z&until=2026-11-01T00:00:00Z", "since"),
    ] {
        for list in ["events", "deliveries"] {
            let (status, body) =
                r.request(reqwest::Method::GET, &format!("/v1/tenants/acme/{list}?{query}"), None).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{list}?{query}: {body}");
            let message = body["error"]["message"].as_str().unwrap();
            assert!(message.contains(names), "{list}?{query}: {message}");
        }
    }
    r.stop().await;
}
