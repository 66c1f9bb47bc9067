//! Plugin versions (metadata, validation, references, deletion), dry runs, and route
//! versions (TOML, idempotent apply, list, diff, rollback).

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::support::{Receiver, TestRouter, fixture, plugins, route};

#[tokio::test]
async fn uploads_are_immutable_versions_with_metadata_and_clear_rejections() {
    let r = TestRouter::start_with(|c| {
        c.tenants.insert(
            "nokv".into(),
            switchyard::config::TenantOverride {
                grants: Some(vec![switchyard::config::Capability::Log, switchyard::config::Capability::Config]),
                ..Default::default()
            },
        );
    })
    .await;
    r.tenant("acme").await;
    let wasm = plugins::wasm("call-outcome-tagger");
    let (status, v1) = r.upload("acme", "tagger", wasm.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{v1}");
    assert_eq!(v1["version"], 1);
    assert_eq!(v1["sha256"], hex::encode(Sha256::digest(&wasm)));
    assert_eq!(v1["size"], wasm.len());
    assert_eq!(v1["world"], "switchyard:plugin/plugin@0.1.0");
    let imports: Vec<&str> = v1["imports"].as_array().unwrap().iter().map(|i| i.as_str().unwrap()).collect();
    assert!(imports.iter().any(|i| i.starts_with("switchyard:plugin/kv@")), "{imports:?}");
    assert!(v1["created_at"].is_string() && v1["compile_ms"].as_f64().unwrap() > 0.0);
    let (_, v2) = r.upload("acme", "tagger", wasm.clone()).await;
    assert_eq!(v2["version"], 2);
    let listed = r.get("/v1/tenants/acme/plugins/tagger").await;
    assert_eq!(listed["versions"].as_array().unwrap().len(), 2);
    assert_eq!(r.get("/v1/tenants/acme/plugins/tagger/versions/latest").await["version"], 2);

    // Each rejection says why, and stores nothing.
    let (status, body) = r.upload("acme", "junk", b"\0asm not really".to_vec()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body["error"]["message"].as_str().unwrap().contains("not a valid WebAssembly component"), "{body}");
    let (status, body) = r.upload("acme", "wrong", plugins::wasm("hostile-wrong-world")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body["error"]["message"].as_str().unwrap().contains("does not implement the switchyard:plugin world"));
    r.tenant("nokv").await;
    let (status, body) = r.upload("nokv", "tagger", wasm.clone()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("switchyard:plugin/kv@0.1.0") && message.contains("not granted the \"kv\""), "{message}");
    assert_eq!(r.upload("nokv", "passthrough", plugins::wasm("passthrough")).await.0, StatusCode::CREATED);
    let names: Vec<String> = r.get("/v1/tenants/acme/plugins").await["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| format!("{}@{}", p["name"].as_str().unwrap(), p["version"]))
        .collect();
    assert_eq!(names, ["tagger@1", "tagger@2"]);

    // Routes pin `@1` and `@latest` (= 2); a referenced version cannot be deleted.
    let doc = json!({"routes": [
        {"name": "old", "pipeline": [{"plugin": "tagger@1"}], "destinations": [{"url": "http://127.0.0.1:9/a", "secret": crate::support::SECRET}]},
        {"name": "new", "pipeline": [{"plugin": "tagger@latest"}], "destinations": [{"url": "http://127.0.0.1:9/b", "secret": crate::support::SECRET}]},
    ]});
    let applied = r.ok(Method::PUT, "/v1/tenants/acme/routes", doc).await;
    assert_eq!(applied["document"]["routes"][0]["pipeline"][0], json!({"plugin": "tagger", "version": 1}));
    assert_eq!(applied["document"]["routes"][1]["pipeline"][0], json!({"plugin": "tagger", "version": 2}));
    let (status, body) = r.request(Method::DELETE, "/v1/tenants/acme/plugins/tagger/versions/1", None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("\"old\""));
    // A third version is unreferenced and goes; v1 goes once the routes stop using it.
    r.upload("acme", "tagger", wasm.clone()).await;
    let (status, _) = r.request(Method::DELETE, "/v1/tenants/acme/plugins/tagger/versions/3", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = r.request(Method::GET, "/v1/tenants/acme/plugins/tagger/versions/3", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    r.routes("acme", json!({"routes": [route("new", "calls", &[], &["tagger"], "http://127.0.0.1:9/b")]})).await;
    let (status, _) = r.request(Method::DELETE, "/v1/tenants/acme/plugins/tagger/versions/1", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // Rolling back to a version that pinned the deleted plugin version says so.
    let (status, body) = r.request(Method::POST, "/v1/tenants/acme/routes/rollback", Some(json!({"version": 1}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["details"][0]["message"], "plugin \"tagger\" has no version 1");
    r.stop().await;
}

#[tokio::test]
async fn a_dry_run_reports_verdict_outputs_logs_and_usage_and_delivers_nothing() {
    let rx = Receiver::start().await;
    let r = TestRouter::start().await;
    r.tenant("acme").await;
    r.source("acme", "calls", "call-tracking", None).await;
    r.plugin("acme", "call-outcome-tagger").await;
    r.plugin("acme", "hostile-trap").await;
    r.routes("acme", json!({"routes": [route("r", "calls", &[], &["call-outcome-tagger"], &rx.url("hook"))]})).await;
    let test = |plugin: &str, body: Value| {
        let path = format!("/v1/tenants/acme/plugins/{plugin}/versions/latest/test");
        let r = &r;
        async move { r.request(Method::POST, &path, Some(body)).await }
    };

    let (status, run) = test("call-outcome-tagger", json!({"fixture": "call-tracking/call_outcome_tagged"})).await;
    assert_eq!(status, StatusCode::OK, "{run}");
    assert_eq!(run["plugin"], "call-outcome-tagger@1");
    assert_eq!(run["verdict"], "pass");
    assert_eq!(run["outputs"][0]["data"]["classification"], "won");
    assert_eq!(run["outputs"][0]["type"], "call.outcome_tagged");
    assert!(run["logs"][0]["message"].as_str().unwrap().contains("won"), "{run}");
    assert!(run["duration_us"].as_u64().unwrap() > 0 && run["memory_bytes"].as_u64().unwrap() > 0);

    // The plugin's kv write stayed in the dry run: a second run still sees no previous outcome.
    let (_, again) = test("call-outcome-tagger", json!({"fixture": "call-tracking/call_outcome_tagged"})).await;
    assert_eq!(again["outputs"][0]["data"]["previous_outcome"], Value::Null);

    // An inline event, with config: the configured noise is dropped with its reason.
    let mut data: Value = serde_json::from_slice(&fixture("call-tracking/call_outcome_tagged.json")).unwrap();
    data["data"]["outcome_type"] = json!("spam");
    let event = json!({"type": "call.outcome_tagged", "source": "calls", "data": data["data"]});
    let (_, dropped) = test("call-outcome-tagger", json!({"event": event, "config": {"drop_outcomes": "spam"}})).await;
    assert_eq!((dropped["verdict"].as_str(), dropped["reason"].as_str()), (Some("drop"), Some("noise outcome: spam")));

    // A failing plugin: the failure is the verdict, with its reason.
    let (status, failed) = test("hostile-trap", json!({"fixture": "crm/lead_created"})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(failed["verdict"], "error");
    assert!(failed["reason"].as_str().unwrap().contains("trapped"), "{failed}");

    // Bad requests.
    let (status, body) = test("call-outcome-tagger", json!({"fixture": "nope/none"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body["error"]["message"].as_str().unwrap().contains("GET /v1/fixtures"));
    let (status, _) = test("call-outcome-tagger", json!({})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = test("missing", json!({"fixture": "crm/lead_created"})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let fixtures = r.get("/v1/fixtures").await;
    assert!(fixtures["fixtures"].as_array().unwrap().contains(&json!("call-tracking/call_outcome_tagged")));

    // Nothing was stored or delivered.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(rx.deliveries().is_empty());
    assert_eq!(r.event_count("acme").await, 0);
    assert!(r.get("/v1/tenants/acme/deliveries").await["deliveries"].as_array().unwrap().is_empty());
    r.stop().await;
}

#[tokio::test]
async fn route_versions_can_be_listed_compared_and_rolled_back() {
    let rx = Receiver::start().await;
    let r = TestRouter::start().await;
    r.tenant("acme").await;
    r.source("acme", "crm", "crm", None).await;
    let v1 = json!({"routes": [route("leads", "crm", &["lead.*"], &[], &rx.url("v1"))]});
    assert_eq!(r.routes("acme", v1.clone()).await, 1);
    // The same document again changes nothing.
    let again = r.ok(Method::PUT, "/v1/tenants/acme/routes", v1).await;
    assert_eq!((again["version"].as_i64(), again["unchanged"].as_bool()), (Some(1), Some(true)));

    // Version 2 from TOML.
    let toml = format!(
        "[[routes]]\nname = \"leads\"\nmatch = {{ sources = [\"crm\"], types = [\"lead.*\", \"deal.*\"] }}\n\
         [[routes.destinations]]\nurl = \"{}\"\nsecret = \"{}\"\n",
        rx.url("v2"),
        crate::support::SECRET
    );
    let put = |content_type: &'static str, body: String| {
        let r = &r;
        async move {
            let resp = r
                .http
                .put(format!("{}/v1/tenants/acme/routes", r.base))
                .bearer_auth(crate::support::ADMIN_TOKEN)
                .header("content-type", content_type)
                .body(body)
                .send()
                .await
                .unwrap();
            (resp.status(), resp.json::<Value>().await.unwrap_or_default())
        }
    };
    let (status, applied) = put("application/toml", toml).await;
    assert_eq!((status, applied["version"].as_i64()), (StatusCode::OK, Some(2)), "{applied}");
    assert_eq!(put("application/toml", "[[routes]\nname =".into()).await.0, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(put("text/plain", "routes: []".into()).await.0, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let versions = r.get("/v1/tenants/acme/routes/versions").await;
    assert_eq!(versions["live"], 2);
    assert_eq!(versions["versions"].as_array().unwrap().len(), 2);
    assert_eq!(versions["versions"][0]["version"], 2);
    assert_eq!(versions["versions"][0]["routes"], 1);

    let diff = r.get("/v1/tenants/acme/routes/diff?from=1&to=2").await;
    let text = diff["diff"].as_str().unwrap();
    assert!(text.contains("--- version 1") && text.contains("+++ version 2"), "{text}");
    let changed = |sign: char, needle: &str| text.lines().any(|l| l.starts_with(sign) && l.contains(needle));
    assert!(changed('-', &rx.url("v1")) && changed('+', &rx.url("v2")), "{text}");
    assert!(changed('+', "\"deal.*\""), "{text}");
    assert_eq!(r.get("/v1/tenants/acme/routes/diff?from=2").await["identical"], true);

    // Roll back to 1: a new version 3 with version 1's document, live for the next event.
    let back = r.ok(Method::POST, "/v1/tenants/acme/routes/rollback", json!({"version": 1})).await;
    assert_eq!((back["version"].as_i64(), back["rolled_back_to"].as_i64()), (Some(3), Some(1)));
    let event = r.send("acme", "crm", &fixture("crm/lead_created.json")).await;
    assert_eq!(r.processed("acme", &event).await["route_version"], 3);
    rx.wait_for("/v1", 1, crate::support::WAIT).await;
    assert_eq!(r.get("/v1/tenants/acme/routes/versions/3").await["origin"], "rollback");
    assert_eq!(r.get("/v1/tenants/acme/routes/diff?from=1&to=3").await["identical"], true);
    let (status, _) = r.request(Method::POST, "/v1/tenants/acme/routes/rollback", Some(json!({"version": 9}))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    r.stop().await;
}
