//! Uploads are bounded before they cost anything at run time: a component that would create
//! too many memories, tables or core instances, or reserve more memory than the budget, is
//! refused at upload (422 naming the limit), and compiling runs in a bounded number of slots
//! under a deadline.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::support::crafted::{tagged, with_instances};
use crate::support::plugins::wasm;
use crate::support::{ADMIN_TOKEN, TestRouter};

/// The refusal message of a 422 upload.
async fn refused(r: &TestRouter, name: &str, bytes: Vec<u8>) -> String {
    let (status, body) = r.upload("t", name, bytes).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{name}: {body}");
    body["error"]["message"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn components_over_the_per_component_bounds_are_refused_at_upload() {
    let r = TestRouter::start_with(|c| {
        // Memories of 32 MiB each (the test default): two fit the budget, three do not.
        c.plugins.max_memories_per_component = 4;
        c.plugins.max_component_memory_bytes = 64 * 1024 * 1024;
    })
    .await;
    r.tenant("t").await;
    let passthrough = wasm("passthrough");

    // Within every bound: accepted and runs, so the crafted shape itself is a valid plugin.
    let (status, body) = r.upload("t", "one-more", with_instances(&passthrough, 1, 1, 1)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let test = "/v1/tenants/t/plugins/one-more/versions/1/test";
    let run = r.ok(reqwest::Method::POST, test, json!({"fixture": "crm/lead_created"})).await;
    assert_eq!(run["verdict"], "pass", "{run}");

    // 200 memories, one per core instance: each fits the pool's per-module limit.
    let why = refused(&r, "memories", with_instances(&passthrough, 1, 0, 200)).await;
    assert!(why.contains("201 linear memories; the limit (plugins.max_memories_per_component) is 4"), "{why}");
    let why = refused(&r, "instances", with_instances(&passthrough, 0, 0, 100)).await;
    assert!(why.contains("core instances; the limit (plugins.max_core_instances_per_component) is 16"), "{why}");
    let why = refused(&r, "tables", with_instances(&passthrough, 0, 1, 9)).await;
    assert!(why.contains("tables; the limit (plugins.max_tables_per_component) is 8"), "{why}");
    // Three memories are within the count, but may reserve 96 MiB.
    let why = refused(&r, "budget", with_instances(&passthrough, 1, 0, 2)).await;
    assert!(
        why.contains("(100663296 bytes together); the limit (plugins.max_component_memory_bytes) is 67108864"),
        "{why}"
    );

    let names: Vec<String> = r.get("/v1/tenants/t/plugins").await["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["one-more"], "nothing over a bound was stored");
    r.stop().await;
}

#[tokio::test]
async fn a_compile_over_the_deadline_is_refused_naming_the_limit() {
    let r = TestRouter::start_with(|c| c.plugins.compile_timeout = Duration::from_millis(1)).await;
    r.tenant("t").await;
    let why = refused(&r, "slow", wasm("call-outcome-tagger")).await;
    assert!(why.contains("took longer than 1ms, the limit (plugins.compile_timeout)"), "{why}");
    assert_eq!(r.get("/v1/tenants/t/plugins").await["plugins"], json!([]));
    r.stop().await;
}

#[tokio::test]
async fn uploads_wait_for_a_compile_slot_and_give_up_with_503_and_retry_after() {
    let r = TestRouter::start_with(|c| {
        c.plugins.compile_concurrency = 1;
        c.plugins.compile_queue_timeout = Duration::from_millis(1);
    })
    .await;
    r.tenant("t").await;
    let tagger = wasm("call-outcome-tagger");
    // Distinct bytes, so none comes from the artifact cache: each needs a real compile.
    let uploads = (0..4).map(|i| {
        let request = r
            .http
            .post(format!("{}/v1/tenants/t/plugins/p{i}", r.base))
            .bearer_auth(ADMIN_TOKEN)
            .body(tagged(&tagger, &format!("copy-{i}")));
        async move {
            let resp = request.send().await.unwrap();
            let retry_after = resp.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
            (resp.status(), retry_after, resp.json::<serde_json::Value>().await.unwrap())
        }
    });
    let answers = futures::future::join_all(uploads).await;
    let created = answers.iter().filter(|(s, _, _)| *s == StatusCode::CREATED).count();
    let busy: Vec<_> = answers.iter().filter(|(s, _, _)| *s == StatusCode::SERVICE_UNAVAILABLE).collect();
    assert!(created >= 1 && !busy.is_empty(), "one compiles at a time, the others wait 1 ms: {answers:?}");
    assert_eq!(created + busy.len(), 4, "{answers:?}");
    for (_, retry_after, body) in busy {
        assert_eq!(retry_after.as_deref(), Some("1"), "{body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains("(plugins.compile_concurrency)") && message.contains("plugins.compile_queue_timeout"));
    }
    r.stop().await;
}
