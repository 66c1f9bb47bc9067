//! Tenant API keys and quotas: a key reaches its own tenant only, across every resource; the
//! admin token reaches everything; quotas answer 429 with Retry-After.

use reqwest::Method;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{ADMIN_TOKEN, Receiver, TestRouter, WAIT, fixture, route};

/// A tenant with one of everything: source, plugin version, route version, a processed
/// event and its delivery. Returns (event id, delivery id).
async fn populate(r: &TestRouter, rx: &Receiver, tenant: &str) -> (String, String) {
    r.tenant(tenant).await;
    r.source(tenant, "calls", "call-tracking", None).await;
    r.plugin(tenant, "passthrough").await;
    r.routes(tenant, json!({"routes": [route("r", "calls", &[], &["passthrough"], &rx.url(tenant))]})).await;
    let event = r.send(tenant, "calls", &fixture("call-tracking/call_ended.json")).await;
    let detail = r.processed(tenant, &event).await;
    rx.wait_for(&format!("/{tenant}"), 1, WAIT).await;
    (event, detail["deliveries"][0]["id"].as_str().unwrap().to_owned())
}

/// Every tenant-scoped endpoint, as (method, path, body), for tenant `t`.
fn endpoints(t: &str, event: &str, delivery: &str) -> Vec<(Method, String, Option<Value>)> {
    let doc = json!({"routes": [route("r2", "calls", &[], &[], "http://127.0.0.1:9/x")]});
    let p = |s: &str| format!("/v1/tenants/{t}{s}");
    vec![
        (Method::GET, p(""), None),
        (Method::GET, p("/sources"), None),
        (Method::GET, p("/sources/calls"), None),
        (Method::PUT, p("/sources/more"), Some(json!({"format": "crm", "auth": {"type": "none"}}))),
        (Method::GET, p("/plugins"), None),
        (Method::GET, p("/plugins/passthrough"), None),
        (Method::GET, p("/plugins/passthrough/versions/1"), None),
        (Method::GET, p("/plugins/passthrough/versions/latest"), None),
        (Method::POST, p("/plugins/passthrough/versions/1/test"), Some(json!({"fixture": "crm/lead_created"}))),
        (Method::GET, p("/routes"), None),
        (Method::GET, p("/routes/versions"), None),
        (Method::GET, p("/routes/versions/1"), None),
        (Method::GET, p("/routes/diff?from=1"), None),
        (Method::PUT, p("/routes"), Some(doc)),
        (Method::POST, p("/routes/rollback"), Some(json!({"version": 1}))),
        (Method::GET, p("/stats"), None),
        (Method::GET, p("/events"), None),
        (Method::GET, p(&format!("/events/{event}")), None),
        (Method::GET, p("/deliveries"), None),
        (Method::GET, p(&format!("/deliveries/{delivery}")), None),
        (Method::POST, p(&format!("/deliveries/{delivery}/replay")), None),
        (Method::DELETE, p("/sources/more"), None),
    ]
}

#[tokio::test]
async fn a_tenant_key_reaches_its_own_tenant_and_nothing_else() {
    let rx = Receiver::start().await;
    let r = TestRouter::start().await;
    let (acme_event, acme_delivery) = populate(&r, &rx, "acme").await;
    let (globex_event, globex_delivery) = populate(&r, &rx, "globex").await;
    let acme_key = r.key("acme").await;
    let globex_key = r.key("globex").await;

    // acme's key on globex's resources: 404 every time, and nothing of globex in the answer.
    // globex's own key and the admin token on the same requests: success.
    for (method, path, body) in endpoints("globex", &globex_event, &globex_delivery) {
        let (status, answer) = r.request_as(&acme_key, method.clone(), &path, body.clone()).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "acme key: {method} {path}: {answer}");
        assert_eq!(answer["error"]["code"], "not_found");
        let text = answer.to_string();
        assert!(!text.contains(&globex_event) && !text.contains(&globex_delivery), "{text}");
        let (status, answer) = r.request_as(&globex_key, method.clone(), &path, body.clone()).await;
        assert!(status.is_success(), "globex key: {method} {path}: {status} {answer}");
    }
    // Also with acme's own event and delivery ids under globex's name: still nothing.
    for (method, path, body) in endpoints("globex", &acme_event, &acme_delivery) {
        let (status, _) = r.request_as(&acme_key, method.clone(), &path, body).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}");
    }
    // The other way round, and the admin token, on acme.
    for (method, path, body) in endpoints("acme", &acme_event, &acme_delivery) {
        let (status, _) = r.request_as(&globex_key, method.clone(), &path, body.clone()).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "globex key: {method} {path}");
        let (status, answer) = r.request_as(ADMIN_TOKEN, method.clone(), &path, body).await;
        assert!(status.is_success(), "admin: {method} {path}: {status} {answer}");
    }
    // A tenant does not learn which other tenants exist: an unknown name answers the same.
    let (status, _) = r.request_as(&acme_key, Method::GET, "/v1/tenants/nobody/events", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The tenant list shows a key its own tenant only; creating tenants and keys is for operators.
    let (_, list) = r.request_as(&acme_key, Method::GET, "/v1/tenants", None).await;
    let names: Vec<&str> = list["tenants"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["acme"]);
    let (status, _) = r.request_as(&acme_key, Method::POST, "/v1/tenants", Some(json!({"name": "evil"}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    for (method, body) in [(Method::GET, None), (Method::POST, Some(json!({})))] {
        let (status, _) = r.request_as(&acme_key, method, "/v1/tenants/acme/keys", body).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
    let (_, all) = r.request_as(ADMIN_TOKEN, Method::GET, "/v1/tenants", None).await;
    assert_eq!(all["tenants"].as_array().unwrap().len(), 2);
    r.stop().await;
}

#[tokio::test]
async fn keys_are_shown_once_stored_hashed_and_revocable() {
    let r = TestRouter::start().await;
    r.tenant("acme").await;
    let created = r.ok(Method::POST, "/v1/tenants/acme/keys", json!({"name": "ci"})).await;
    let key = created["key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("syk_") && key.starts_with(created["prefix"].as_str().unwrap()));

    let (status, _) = r.request_as(&key, Method::GET, "/v1/tenants/acme/events", None).await;
    assert_eq!(status, StatusCode::OK);
    let listed = r.get("/v1/tenants/acme/keys").await;
    assert_eq!(listed["keys"][0]["name"], "ci");
    assert!(listed["keys"][0].get("key").is_none(), "the key is never shown again");
    assert!(listed["keys"][0]["last_used_at"].is_string());

    // Only a hash is stored: the key's text is nowhere in the database.
    let stored = crate::support::database::stored_bytes(r.data_dir.path()).await;
    let needle = key.as_bytes();
    assert!(!stored.windows(needle.len()).any(|w| w == needle), "the raw key is stored");

    let id = created["id"].as_str().unwrap();
    let (status, _) = r.request(Method::DELETE, &format!("/v1/tenants/acme/keys/{id}"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, answer) = r.request_as(&key, Method::GET, "/v1/tenants/acme/events", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
    assert!(answer["error"]["message"].as_str().unwrap().contains("revoked"));
    assert!(r.get("/v1/tenants/acme/keys").await["keys"][0]["revoked_at"].is_string());
    let (status, _) = r.request(Method::DELETE, "/v1/tenants/acme/keys/key_nope", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = r.request_as("syk_forged", Method::GET, "/v1/tenants/acme/events", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    r.stop().await;
}

fn assert_quota(status: StatusCode, headers: &reqwest::header::HeaderMap, body: &Value, says: &str) {
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"]["code"], "quota_exceeded");
    assert!(body["error"]["message"].as_str().unwrap().contains(says), "{body}");
    let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry >= 1, "Retry-After: {retry}");
}

#[tokio::test]
async fn quotas_answer_429_with_retry_after_and_overrides_apply_per_tenant() {
    let r = TestRouter::start_with(|c| {
        c.tenant_defaults.max_plugins = 1;
        c.tenant_defaults.max_plugin_versions = 2;
        c.tenant_defaults.max_routes = 1;
        c.tenant_defaults.ingest_rate = 0.5;
        c.tenant_defaults.ingest_burst = 3;
        c.tenants
            .insert("big".into(), switchyard::config::TenantOverride { max_plugins: Some(5), ..Default::default() });
    })
    .await;
    let post_wasm = |tenant: &'static str, name: &'static str, bytes: Vec<u8>| {
        let (http, base) = (r.http.clone(), r.base.clone());
        async move {
            let resp = http
                .post(format!("{base}/v1/tenants/{tenant}/plugins/{name}"))
                .bearer_auth(ADMIN_TOKEN)
                .body(bytes)
                .send()
                .await
                .unwrap();
            let (status, headers) = (resp.status(), resp.headers().clone());
            (status, headers, resp.json::<Value>().await.unwrap_or_default())
        }
    };
    let wasm = crate::support::plugins::wasm("passthrough");
    for t in ["small", "big"] {
        r.tenant(t).await;
    }

    // Plugins: one name, two versions for "small"; "big" may have more names.
    assert_eq!(post_wasm("small", "a", wasm.clone()).await.0, StatusCode::CREATED);
    assert_eq!(post_wasm("small", "a", wasm.clone()).await.0, StatusCode::CREATED);
    let (status, headers, body) = post_wasm("small", "a", wasm.clone()).await;
    assert_quota(status, &headers, &body, "versions");
    let (status, headers, body) = post_wasm("small", "b", wasm.clone()).await;
    assert_quota(status, &headers, &body, "delete one");
    assert_eq!(post_wasm("big", "a", wasm.clone()).await.0, StatusCode::CREATED);
    assert_eq!(post_wasm("big", "b", wasm.clone()).await.0, StatusCode::CREATED);
    // Deleting a version frees its slot.
    let (status, _) = r.request(Method::DELETE, "/v1/tenants/small/plugins/a/versions/1", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(post_wasm("small", "a", wasm.clone()).await.0, StatusCode::CREATED);

    // Routes: at most one per document.
    let two = json!({"routes": [route("x", "s", &[], &[], "http://127.0.0.1:9/x"), route("y", "s", &[], &[], "http://127.0.0.1:9/y")]});
    let (status, headers, body) = r.request_full(ADMIN_TOKEN, Method::PUT, "/v1/tenants/small/routes", Some(two)).await;
    assert_quota(status, &headers, &body, "at most 1");

    // Ingest: a burst of 3, then 429 with nothing stored, for this tenant only.
    r.source("small", "crm", "crm", None).await;
    r.source("big", "crm", "crm", None).await;
    let body = |i: usize| json!({"event": "lead.created", "timestamp": "2026-03-25T18:35:00Z", "payload": {"id": i}});
    for i in 0..3 {
        let (status, _) = r.ingest("small", "crm", body(i).to_string().as_bytes(), &[]).await;
        assert_eq!(status, StatusCode::ACCEPTED);
    }
    let resp = r
        .http
        .post(format!("{}/v1/ingest/small/crm", r.base))
        .header("content-type", "application/json")
        .body(body(99).to_string())
        .send()
        .await
        .unwrap();
    let headers = resp.headers().clone();
    assert_quota(resp.status(), &headers, &resp.json().await.unwrap(), "ingest rate");
    assert_eq!(r.event_count("small").await, 3, "the refused event was not stored");
    let (status, _) = r.ingest("big", "crm", body(0).to_string().as_bytes(), &[]).await;
    assert_eq!(status, StatusCode::ACCEPTED, "another tenant's bucket is its own");
    r.stop().await;
}

#[tokio::test]
async fn a_plugin_over_its_size_limit_gets_413_naming_the_limit() {
    let r = TestRouter::start_with(|c| {
        c.tenants.insert(
            "tight".into(),
            switchyard::config::TenantOverride { max_plugin_bytes: Some(1024), ..Default::default() },
        );
    })
    .await;
    r.tenant("tight").await;
    let (status, body) = r.upload("tight", "p", crate::support::plugins::wasm("passthrough")).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(body["error"]["code"], "payload_too_large");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("max_plugin_bytes") && message.contains("1024"), "{message}");
    // The defaults take a Python component (componentize-py: about 19 MB).
    let defaults = switchyard::config::Config::default();
    assert!(defaults.tenant_defaults.max_plugin_bytes >= 20 * 1024 * 1024);
    assert!(defaults.plugins.max_upload_bytes >= defaults.tenant_defaults.max_plugin_bytes);
}
