//! The log as log stores want it: `log_format = "json"` writes one JSON object a line, and
//! what is logged while an event is processed carries the event's id and tenant.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::process::Process;
use crate::support::{ADMIN_TOKEN, fixture, route};

#[tokio::test]
async fn json_logs_carry_the_event_id_and_tenant() {
    let dir = crate::support::DataDir::new();
    let log = dir.path().join("router.log");
    let env = [("SWITCHYARD_LOG_FORMAT", "json".to_owned()), ("SWITCHYARD_LOG", "info".to_owned())];
    let p = Process::start_logging(dir.path(), &env, &log).await;
    let http = reqwest::Client::new();
    let call = |method: reqwest::Method, path: &str| {
        http.request(method, format!("{}{path}", p.base)).bearer_auth(ADMIN_TOKEN)
    };
    call(reqwest::Method::POST, "/v1/tenants").json(&json!({"name": "acme"})).send().await.unwrap();
    let source = json!({"format": "call-tracking", "auth": {"type": "none"}});
    call(reqwest::Method::PUT, "/v1/tenants/acme/sources/calls").json(&source).send().await.unwrap();
    let upload = call(reqwest::Method::POST, "/v1/tenants/acme/plugins/hostile-trap")
        .header("content-type", "application/wasm")
        .body(crate::support::plugins::wasm("hostile-trap"));
    assert!(upload.send().await.unwrap().status().is_success());
    // The trap is logged (a warning) while the event is processed.
    let doc = json!({"routes": [route("r", "calls", &[], &["hostile-trap"], "http://127.0.0.1:9/never")]});
    assert!(
        call(reqwest::Method::PUT, "/v1/tenants/acme/routes").json(&doc).send().await.unwrap().status().is_success()
    );
    let sent = http
        .post(format!("{}/v1/ingest/acme/calls", p.base))
        .header("content-type", "application/json")
        .body(fixture("call-tracking/call_ended.json"))
        .send()
        .await
        .unwrap();
    let id = sent.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();

    let found = async {
        loop {
            let text = std::fs::read_to_string(&log).unwrap();
            let lines: Vec<Value> = text
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
                .collect();
            if let Some(line) = lines.iter().find(|l| l["span"]["event"] == id.as_str()) {
                return line.clone();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let line = tokio::time::timeout(Duration::from_secs(20), found).await.expect("a log line of the event");
    assert_eq!(line["span"]["tenant"], "acme", "{line}");
    assert!(line["message"].as_str().unwrap().contains("hostile-trap"), "{line}");
    p.kill();
}
