//! Destinations beyond one delivery: disabling (410 Gone, failing too long) with the reason
//! visible, secret rotation with both signatures during the grace period, per-destination
//! retry schedules and concurrency limits, the circuit breaker, and replaying dead letters by
//! filter.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::signature::assert_signed;
use crate::support::{Receiver, SECRET, TestRouter, WAIT, fixture};

const NEW_SECRET: &str = "whsec_c2Vjb25kLXNlY3JldC0wMTIzNDU2Nzg5YWJj";

fn destination(url: &str, extra: Value) -> Value {
    let mut d = json!({"url": url, "secret": SECRET});
    d.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    d
}

async fn router_with(rx_routes: Value, tweak: impl FnOnce(&mut switchyard::config::Config)) -> TestRouter {
    let r = TestRouter::start_with(tweak).await;
    r.tenant("acme").await;
    r.source("acme", "crm", "crm", None).await;
    r.routes("acme", rx_routes).await;
    r
}

async fn destinations(r: &TestRouter) -> Vec<Value> {
    r.get("/v1/tenants/acme/destinations").await["destinations"].as_array().unwrap().clone()
}

async fn until<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn deliveries(r: &TestRouter, status: &str) -> Vec<Value> {
    r.get(&format!("/v1/tenants/acme/deliveries?status={status}")).await["deliveries"].as_array().unwrap().clone()
}

#[tokio::test]
async fn gone_disables_the_destination_and_the_tenant_sees_why() {
    let rx = Receiver::start().await;
    rx.respond_with(&[410]);
    let doc = json!({"routes": [{"name": "all", "destinations": [destination(&rx.url("hook"), json!({}))]}]});
    let r = router_with(doc, |_| {}).await;
    r.send("acme", "crm", &fixture("crm/lead_created.json")).await;
    let d = until("disabled", async || {
        let d = destinations(&r).await.pop()?;
        (d["status"] == "disabled").then_some(d)
    })
    .await;
    assert!(d["disabled_reason"].as_str().unwrap().contains("410 Gone"), "{d}");
    assert!(d.get("secret").is_none(), "secrets are never shown");

    // The next delivery is not attempted: dead at once, with the reason, and replayable later.
    r.send("acme", "crm", &fixture("crm/deal_created.json")).await;
    let dead = until("two dead", async || {
        let dead = deliveries(&r, "dead").await;
        (dead.len() == 2).then_some(dead)
    })
    .await;
    assert_eq!(rx.deliveries().len(), 1, "no request after the 410");
    let skipped = dead.iter().find(|d| d["attempts"] == 0).expect("one dead without an attempt");
    assert!(skipped["last_error"].as_str().unwrap().starts_with("destination disabled: the receiver answered 410"));

    let (status, enabled) =
        r.request(Method::POST, "/v1/tenants/acme/destinations/enable", Some(json!({"url": rx.url("hook")}))).await;
    assert_eq!((status.as_u16(), enabled["status"].as_str()), (200, Some("ok")), "{enabled}");
    let replayed = r.ok(Method::POST, "/v1/tenants/acme/deliveries/replay", json!({"url": rx.url("hook")})).await;
    assert_eq!(replayed["replayed"], 2);
    rx.wait_for("/hook", 3, WAIT).await;
    until("delivered", async || (deliveries(&r, "delivered").await.len() == 2).then_some(())).await;
    r.stop().await;
}

#[tokio::test]
async fn a_destination_failing_for_too_long_is_disabled() {
    let rx = Receiver::start().await;
    rx.respond_with(&[500; 100]);
    let doc = json!({"routes": [{"name": "all", "destinations": [destination(&rx.url("hook"), json!({"retry_schedule": ["0s", "100ms", "100ms", "100ms", "100ms", "100ms", "100ms", "100ms"]}))]}]});
    let r = router_with(doc, |c| {
        c.delivery.disable_after = Duration::from_millis(250);
        c.delivery.breaker_threshold = 100;
    })
    .await;
    r.send("acme", "crm", &fixture("crm/lead_created.json")).await;
    let d = until("disabled", async || {
        let d = destinations(&r).await.pop()?;
        (d["status"] == "disabled").then_some(d)
    })
    .await;
    let reason = d["disabled_reason"].as_str().unwrap();
    assert!(reason.contains("failing without a success since") && reason.contains("HTTP 500"), "{reason}");
    let dead = until("dead", async || deliveries(&r, "dead").await.pop()).await;
    assert!(dead["attempts"].as_i64().unwrap() < 8, "stopped before the schedule ran out: {dead}");
    r.stop().await;
}

#[tokio::test]
async fn a_rotated_secret_signs_alongside_the_new_one_during_the_grace_period() {
    let rx = Receiver::start().await;
    let doc = |secret: &str| json!({"routes": [{"name": "all", "destinations": [{"url": rx.url("hook"), "secret": secret}]}]});
    let r = router_with(doc(SECRET), |c| c.delivery.secret_rotation_grace = Duration::from_secs(2)).await;
    r.send("acme", "crm", &fixture("crm/lead_created.json")).await;
    let first = rx.wait_for("/hook", 1, WAIT).await;
    assert_eq!(first[0].header("webhook-signature").split(' ').count(), 1);

    r.routes("acme", doc(NEW_SECRET)).await;
    let rotating = destinations(&r).await.pop().unwrap();
    assert!(rotating["previous_secret_until"].is_string(), "{rotating}");
    r.send("acme", "crm", &fixture("crm/deal_created.json")).await;
    let second = rx.wait_for("/hook", 2, WAIT).await;
    let header = second[1].header("webhook-signature");
    assert_eq!(header.split(' ').count(), 2, "{header}");
    assert!(header.split(' ').all(|s| s.starts_with("v1,")));
    assert_signed(&second[1], NEW_SECRET);
    assert_signed(&second[1], SECRET);

    // After the grace period only the new secret signs.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    r.send("acme", "crm", &fixture("crm/client_created.json")).await;
    let third = rx.wait_for("/hook", 3, WAIT).await;
    assert_eq!(third[2].header("webhook-signature").split(' ').count(), 1);
    assert_signed(&third[2], NEW_SECRET);
    r.stop().await;
}

#[tokio::test]
async fn route_reads_never_show_destination_secrets() {
    let rx = Receiver::start().await;
    let doc = |secret: &str| json!({"routes": [{"name": "all", "destinations": [{"url": rx.url("hook"), "secret": secret}]}]});
    let r = router_with(doc(SECRET), |_| {}).await;
    let key_of = |s: &str| s.trim_start_matches("whsec_").to_owned();
    let shows_a_secret = |v: &Value| {
        let text = v.to_string();
        text.contains(&key_of(SECRET)) || text.contains(&key_of(NEW_SECRET))
    };

    let applied = r.ok(Method::PUT, "/v1/tenants/acme/routes", doc(NEW_SECRET)).await;
    let (status, rolled) =
        r.request(Method::POST, "/v1/tenants/acme/routes/rollback", Some(json!({"version": 1}))).await;
    assert!(status.is_success(), "{rolled}");
    let mut reads = vec![applied, rolled];
    for path in ["", "/versions", "/versions/1", "/versions/2", "/versions/live", "/diff?from=1&to=2"] {
        reads.push(r.get(&format!("/v1/tenants/acme/routes{path}")).await);
    }
    for read in &reads {
        assert!(!shows_a_secret(read), "a read shows a secret: {read}");
    }
    let shown = reads[2]["document"]["routes"][0]["destinations"][0]["secret"].as_str().unwrap().to_owned();
    assert!(shown.starts_with("redacted:sha256:"), "{shown}");
    let diff = reads[7]["diff"].as_str().unwrap();
    assert!(diff.lines().any(|l| l.starts_with('-') && l.contains("redacted:")), "a rotation still shows: {diff}");

    // The document read back applies as it is: the fingerprint stands for the stored secret.
    let live = r.get("/v1/tenants/acme/routes").await;
    let again = r.ok(Method::PUT, "/v1/tenants/acme/routes", live["document"].clone()).await;
    assert_eq!(again["unchanged"], true, "{again}");
    r.send("acme", "crm", &fixture("crm/lead_created.json")).await;
    assert_signed(&rx.wait_for("/hook", 1, WAIT).await[0], SECRET);

    // A fingerprint of no stored secret is refused, not guessed at.
    let mut forged = live["document"].clone();
    forged["routes"][0]["destinations"][0]["secret"] = json!("redacted:sha256:000000000000");
    let (status, body) = r.request(Method::PUT, "/v1/tenants/acme/routes", Some(forged)).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["details"][0]["path"], "routes[0].destinations[0].secret", "{body}");
    r.stop().await;
}

#[tokio::test]
async fn each_destination_has_its_own_retry_schedule() {
    let (a, b) = (Receiver::start().await, Receiver::start().await);
    a.respond_with(&[500; 20]);
    b.respond_with(&[500; 20]);
    let doc = json!({"routes": [{"name": "all", "destinations": [
        destination(&a.url("a"), json!({"retry_schedule": ["0s", "50ms"]})),
        destination(&b.url("b"), json!({"retry_schedule": ["0s", "50ms", "50ms", "50ms", "50ms"]})),
    ]}]});
    let r = router_with(doc, |c| c.delivery.breaker_threshold = 100).await;
    r.send("acme", "crm", &fixture("crm/lead_created.json")).await;
    let dead = until("both dead", async || {
        let dead = deliveries(&r, "dead").await;
        (dead.len() == 2).then_some(dead)
    })
    .await;
    let attempts = |url: String| dead.iter().find(|d| d["url"] == url).unwrap()["attempts"].clone();
    assert_eq!(attempts(a.url("a")), 2);
    assert_eq!(attempts(b.url("b")), 5);

    // Bad settings are refused with their paths.
    let bad = json!({"routes": [{"name": "x", "destinations": [
        destination(&a.url("x"), json!({"retry_schedule": ["soon"], "timeout": "0s", "max_in_flight": 0})),
        {"url": a.url("x"), "secret": NEW_SECRET},
    ]}]});
    let (status, body) = r.request(Method::PUT, "/v1/tenants/acme/routes", Some(bad)).await;
    assert_eq!(status.as_u16(), 422);
    let paths: Vec<&str> =
        body["error"]["details"].as_array().unwrap().iter().map(|p| p["path"].as_str().unwrap()).collect();
    assert_eq!(
        paths,
        [
            "routes[0].destinations[0].retry_schedule",
            "routes[0].destinations[0].timeout",
            "routes[0].destinations[0].max_in_flight",
            "routes[0].destinations[1]"
        ]
    );
    r.stop().await;
}

/// A receiver that takes `delay` per request and records the most requests it saw at once.
async fn slow_receiver(delay: Duration) -> (String, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    let (now, peak, done) =
        (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (n, p, d) = (now.clone(), peak.clone(), done.clone());
    let app = axum::Router::new().route(
        "/slow",
        axum::routing::post(move || {
            let (n, p, d) = (n.clone(), p.clone(), d.clone());
            async move {
                let current = n.fetch_add(1, Ordering::SeqCst) + 1;
                p.fetch_max(current, Ordering::SeqCst);
                tokio::time::sleep(delay).await;
                n.fetch_sub(1, Ordering::SeqCst);
                d.fetch_add(1, Ordering::SeqCst);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/slow", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, peak, done)
}

#[tokio::test]
async fn a_slow_destination_gets_at_most_its_limit_and_others_keep_flowing() {
    let (slow, peak, slow_done) = slow_receiver(Duration::from_millis(150)).await;
    let fast = Receiver::start().await;
    let doc = json!({"routes": [
        {"name": "slow", "match": {"types": ["lead.*"]}, "destinations": [destination(&slow, json!({"max_in_flight": 2}))]},
        {"name": "fast", "match": {"types": ["deal.*"]}, "destinations": [destination(&fast.url("fast"), json!({}))]},
    ]});
    let r = router_with(doc, |_| {}).await;
    let lead = String::from_utf8(fixture("crm/lead_created.json")).unwrap();
    for i in 0..10 {
        r.send("acme", "crm", lead.replace("\"lead.created\"", &format!("\"lead.created\", \"n\": {i}")).as_bytes())
            .await;
    }
    // While the slow endpoint works through its queue, the other destination is not held up.
    r.send("acme", "crm", &fixture("crm/deal_created.json")).await;
    fast.wait_for("/fast", 1, Duration::from_secs(1)).await;
    assert!(slow_done.load(Ordering::SeqCst) < 10, "the fast delivery did not wait for the slow ones");
    until("slow done", async || (slow_done.load(Ordering::SeqCst) == 10).then_some(())).await;
    assert_eq!(peak.load(Ordering::SeqCst), 2, "never more than max_in_flight at once");
    // The receiver counts a request done before the router has its answer and records it.
    until("no delivery pending", async || deliveries(&r, "pending").await.is_empty().then_some(())).await;
    r.stop().await;
}

/// A receiver that holds every request until `gate` opens; counts the most held at once.
async fn gated_receiver(gate: Arc<tokio::sync::Semaphore>) -> (String, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    let (held, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (h, p) = (held.clone(), peak.clone());
    let app = axum::Router::new().route(
        "/{hook}",
        axum::routing::post(move || {
            let (h, p, gate) = (h.clone(), p.clone(), gate.clone());
            async move {
                p.fetch_max(h.fetch_add(1, Ordering::SeqCst) + 1, Ordering::SeqCst);
                let _open = gate.acquire().await.unwrap();
                h.fetch_sub(1, Ordering::SeqCst);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, held, peak)
}

#[tokio::test]
async fn a_tenant_with_stalled_receivers_cannot_hold_every_delivery_worker() {
    // Four endpoints that do not answer, each allowed 16 attempts at once: without a cap per
    // tenant they would take all 8 workers and the other tenant would wait for them.
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let (stalled, held, peak) = gated_receiver(gate.clone()).await;
    let fast = Receiver::start().await;
    let four: Vec<Value> =
        (0..4).map(|i| destination(&format!("{stalled}/hook{i}"), json!({"timeout": "60s"}))).collect();
    let r = router_with(json!({"routes": [{"name": "stalled", "destinations": four}]}), |c| {
        c.delivery.concurrency = 8;
        c.delivery.max_in_flight_per_tenant = 3;
        c.delivery.timeout = Duration::from_secs(60);
    })
    .await;
    r.tenant("other").await;
    r.source("other", "crm", "crm", None).await;
    r.routes(
        "other",
        json!({"routes": [{"name": "all", "destinations": [destination(&fast.url("other"), json!({}))]}]}),
    )
    .await;
    let lead = String::from_utf8(fixture("crm/lead_created.json")).unwrap();
    for i in 0..10 {
        r.send("acme", "crm", lead.replace("\"lead.created\"", &format!("\"lead.created\", \"n\": {i}")).as_bytes())
            .await;
    }
    until("the stalled tenant's attempts", async || (held.load(Ordering::SeqCst) == 3).then_some(())).await;
    for i in 0..5 {
        r.send("other", "crm", lead.replace("\"lead.created\"", &format!("\"lead.created\", \"n\": {i}")).as_bytes())
            .await;
    }
    fast.wait_for("/other", 5, WAIT).await;
    assert_eq!(peak.load(Ordering::SeqCst), 3, "the stalled tenant never had more than its cap in flight");
    gate.add_permits(1000);
    until("the stalled tenant's 40 deliveries", async || (deliveries(&r, "delivered").await.len() == 40).then_some(()))
        .await;
    r.stop().await;
}

#[tokio::test]
async fn an_open_circuit_holds_deliveries_back_instead_of_hammering() {
    let rx = Receiver::start().await;
    rx.respond_with(&[500; 1000]);
    let doc = json!({"routes": [{"name": "all", "destinations": [destination(&rx.url("hook"), json!({"retry_schedule": ["0s", "20ms", "20ms", "20ms", "20ms", "20ms"]}))]}]});
    let r = router_with(doc, |c| {
        c.delivery.breaker_threshold = 3;
        c.delivery.breaker_cooldown = Duration::from_secs(60);
    })
    .await;
    for f in ["crm/lead_created.json", "crm/deal_created.json", "crm/client_created.json", "crm/contact_created.json"] {
        r.send("acme", "crm", &fixture(f)).await;
    }
    // 4 deliveries x 6 tries would be 24 requests; the breaker opens after 3 failures.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let seen = rx.deliveries().len();
    assert!((3..=6).contains(&seen), "{seen} requests: the open circuit should have stopped them at about 3");
    assert_eq!(deliveries(&r, "pending").await.len(), 4, "held back, not dropped or dead-lettered");
    r.stop().await;
}

#[tokio::test]
async fn dead_letters_replay_by_route_and_time() {
    let rx = Receiver::start().await;
    rx.respond_with(&[500, 500]); // one try each (schedule ["0s"]), then 200s
    let doc = json!({"routes": [
        {"name": "leads", "match": {"types": ["lead.*"]}, "destinations": [destination(&rx.url("leads"), json!({"retry_schedule": ["0s"]}))]},
        {"name": "deals", "match": {"types": ["deal.*"]}, "destinations": [destination(&rx.url("deals"), json!({"retry_schedule": ["0s"]}))]},
    ]});
    let r = router_with(doc, |c| c.delivery.breaker_threshold = 100).await;
    let before = chrono::Utc::now();
    r.send("acme", "crm", &fixture("crm/lead_created.json")).await;
    r.send("acme", "crm", &fixture("crm/deal_created.json")).await;
    until("two dead", async || (deliveries(&r, "dead").await.len() == 2).then_some(())).await;

    let none = r.ok(Method::POST, "/v1/tenants/acme/deliveries/replay", json!({"until": before})).await;
    assert_eq!(none["replayed"], 0, "nothing was created before the window");
    let leads =
        r.ok(Method::POST, "/v1/tenants/acme/deliveries/replay", json!({"route": "leads", "since": before})).await;
    assert_eq!(leads["replayed"], 1);
    rx.wait_for("/leads", 2, WAIT).await;
    until("lead delivered", async || (deliveries(&r, "delivered").await.len() == 1).then_some(())).await;
    assert_eq!(deliveries(&r, "dead").await[0]["route"], "deals", "the other route's dead letter stays");
    let (status, _) = r
        .request(
            Method::POST,
            "/v1/tenants/acme/deliveries/replay",
            Some(json!({"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"})),
        )
        .await;
    assert_eq!(status.as_u16(), 422);
    r.stop().await;
}

#[tokio::test]
async fn internal_addresses_are_refused_unless_their_cidr_is_allowed() {
    // The test configuration allows 127.0.0.1/32 and nothing else.
    let r = TestRouter::start().await;
    r.tenant("acme").await;
    for (url, ok) in [
        ("http://127.0.0.1:9/hook", true),
        ("http://localhost:9/hook", true),
        ("http://127.0.0.2:9/hook", false),
        ("http://169.254.169.254/latest/meta-data", false),
        ("http://10.0.0.1/hook", false),
        ("http://[::1]:9/hook", false),
    ] {
        let doc = json!({"routes": [{"name": "r", "destinations": [destination(url, json!({}))]}]});
        let (status, body) = r.request(Method::PUT, "/v1/tenants/acme/routes", Some(doc)).await;
        assert_eq!(status.is_success(), ok, "{url}: {status} {body}");
        if !ok {
            assert!(body["error"]["details"][0]["message"].as_str().unwrap().contains("allowed_cidrs"), "{body}");
        }
    }
    r.stop().await;
}

#[tokio::test]
async fn replay_can_rerun_the_current_plugin_chain_instead_of_resending() {
    let rx = Receiver::start().await;
    rx.respond_with(&[500]);
    let r = TestRouter::start().await;
    r.tenant("acme").await;
    r.source("acme", "calls", "call-tracking", None).await;
    r.plugin("acme", "call-outcome-tagger").await;
    let doc = |pipeline: Value| {
        json!({"routes": [{"name": "calls", "pipeline": pipeline,
            "destinations": [destination(&rx.url("hook"), json!({"retry_schedule": ["0s"]}))]}]})
    };
    r.routes("acme", doc(json!([{"plugin": "call-outcome-tagger"}]))).await;
    r.send("acme", "calls", &fixture("call-tracking/call_outcome_tagged.json")).await;
    let dead = until("dead", async || deliveries(&r, "dead").await.pop()).await;
    assert_eq!(rx.deliveries()[0].json()["classification"], "won", "the first chain tagged it");

    // The tenant fixes its routes (no tagger now) and replays through the current chain.
    r.routes("acme", doc(json!([]))).await;
    let rerun = r.ok(Method::POST, "/v1/tenants/acme/deliveries/replay", json!({"mode": "rerun"})).await;
    assert_eq!((rerun["replayed"].as_u64(), rerun["queued"].as_u64()), (Some(1), Some(1)), "{rerun}");
    assert_eq!(rerun["route_version"], 2);
    let got = rx.wait_for("/hook", 2, WAIT).await;
    assert!(got[1].json().get("classification").is_none(), "the current chain ran: {}", got[1].json());
    assert_eq!(got[1].json()["outcome_type"], "booked");
    assert_ne!(got[1].header("webhook-id"), dead["id"].as_str().unwrap(), "a new delivery, a new webhook id");

    // The superseded dead letter stays for the record and is never replayed again.
    let old = r.get(&format!("/v1/tenants/acme/deliveries/{}", dead["id"].as_str().unwrap())).await;
    assert_eq!(old["status"], "dead");
    assert!(old["superseded_at"].is_string(), "{old}");
    let again = r.ok(Method::POST, "/v1/tenants/acme/deliveries/replay", json!({})).await;
    assert_eq!(again["replayed"], 0);

    // A dead letter whose route is gone is skipped with the reason.
    rx.respond_with(&[500]);
    r.send("acme", "calls", &fixture("call-tracking/call_ended.json")).await;
    until("dead again", async || (deliveries(&r, "dead").await.len() == 2).then_some(())).await;
    let other = json!({"routes": [{"name": "other", "destinations": [destination(&rx.url("other"), json!({}))]}]});
    r.routes("acme", other).await;
    let skipped = r.ok(Method::POST, "/v1/tenants/acme/deliveries/replay", json!({"mode": "rerun"})).await;
    assert_eq!(skipped["replayed"], 0);
    assert!(skipped["skipped"][0]["reason"].as_str().unwrap().contains("not in the live route version"), "{skipped}");
    let (status, _) =
        r.request(Method::POST, "/v1/tenants/acme/deliveries/replay", Some(json!({"mode": "again"}))).await;
    assert_eq!(status.as_u16(), 422);
    r.stop().await;
}
