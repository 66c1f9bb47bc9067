//! Routes kept in files (`routes_dir` / `serve --routes-dir`): applied at start and on change,
//! invalid files rejected with the previous version left live, SIGHUP re-reads.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::process::Process;
use crate::support::{ADMIN_TOKEN, Receiver, TestRouter, WAIT, fixture, route};

/// Polls the live route version until `check` accepts it.
async fn live_version(base: &str, tenant: &str, check: impl Fn(Option<i64>) -> bool) -> Option<i64> {
    let http = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let resp =
            http.get(format!("{base}/v1/tenants/{tenant}/routes")).bearer_auth(ADMIN_TOKEN).send().await.unwrap();
        let version = if resp.status() == StatusCode::OK {
            resp.json::<Value>().await.unwrap()["version"].as_i64()
        } else {
            None
        };
        if check(version) {
            return version;
        }
        assert!(tokio::time::Instant::now() < deadline, "live version stayed {version:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn files_are_applied_on_change_and_invalid_ones_leave_the_live_version() {
    let rx = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let doc = |path: &str| json!({"routes": [route("all", "crm", &[], &[], &rx.url(path))]});
    std::fs::write(dir.path().join("acme.json"), doc("one").to_string()).unwrap();
    let routes_dir = dir.path().to_owned();
    let r = TestRouter::start_with(|c| c.routes_dir = Some(routes_dir)).await;
    // The tenant does not exist yet: the file is rejected (logged) until it does and the file changes.
    r.tenant("acme").await;
    r.source("acme", "crm", "crm", None).await;
    std::fs::write(dir.path().join("acme.json"), format!("{}\n", doc("one"))).unwrap();
    assert_eq!(live_version(&r.base, "acme", |v| v.is_some()).await, Some(1));
    let versions = r.get("/v1/tenants/acme/routes/versions").await;
    assert_eq!(versions["versions"][0]["origin"], "file");

    // A change goes live; writing the same document again creates no version.
    std::fs::write(dir.path().join("acme.json"), doc("two").to_string()).unwrap();
    assert_eq!(live_version(&r.base, "acme", |v| v == Some(2)).await, Some(2));
    std::fs::write(dir.path().join("acme.json"), format!("{}\n\n", doc("two"))).unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(r.get("/v1/tenants/acme/routes").await["version"], 2);

    // Invalid files (bad JSON, then a bad document) are refused; version 2 keeps running.
    std::fs::write(dir.path().join("acme.json"), "{\"routes\": [").unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    let bad = json!({"routes": [{"name": "x", "destinations": [{"url": "ftp://nope", "secret": "s"}]}]});
    std::fs::write(dir.path().join("acme.json"), bad.to_string()).unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(r.get("/v1/tenants/acme/routes").await["version"], 2);
    let event = r.send("acme", "crm", &fixture("crm/lead_created.json")).await;
    assert_eq!(r.processed("acme", &event).await["route_version"], 2);
    rx.wait_for("/two", 1, WAIT).await;

    // TOML works too (and a non-route file is ignored).
    std::fs::remove_file(dir.path().join("acme.json")).unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not routes").unwrap();
    let toml = format!(
        "[[routes]]\nname = \"all\"\nmatch = {{ sources = [\"crm\"] }}\n[[routes.destinations]]\nurl = \"{}\"\nsecret = \"{}\"\n",
        rx.url("three"),
        crate::support::SECRET
    );
    std::fs::write(dir.path().join("acme.toml"), &toml).unwrap();
    assert_eq!(live_version(&r.base, "acme", |v| v == Some(3)).await, Some(3));

    // The API changes the routes; the file is removed, then put back unchanged: it applies again.
    r.routes("acme", json!({"routes": [route("all", "crm", &[], &[], &rx.url("api"))]})).await;
    std::fs::remove_file(dir.path().join("acme.toml")).unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(r.get("/v1/tenants/acme/routes").await["version"], 4, "removing a file changes nothing");
    std::fs::write(dir.path().join("acme.toml"), &toml).unwrap();
    assert_eq!(live_version(&r.base, "acme", |v| v == Some(5)).await, Some(5));
    r.stop().await;
}

#[tokio::test]
async fn sighup_re_reads_the_routes_directory() {
    let rx = Receiver::start().await;
    let dir = crate::support::DataDir::new();
    let routes = dir.path().join("routes");
    std::fs::create_dir(&routes).unwrap();
    let doc = json!({"routes": [route("all", "crm", &[], &[], &rx.url("hup"))]});
    std::fs::write(routes.join("acme.json"), doc.to_string()).unwrap();
    let p = Process::start(dir.path(), &["--routes-dir", routes.to_str().unwrap()]).await;

    // At start the tenant does not exist, so the file is rejected. Creating the tenant changes
    // no file: only SIGHUP makes the router read it again.
    let http = reqwest::Client::new();
    let created = http
        .post(format!("{}/v1/tenants", p.base))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"name": "acme"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(live_version(&p.base, "acme", |_| true).await, None);
    let status = std::process::Command::new("kill").args(["-HUP", &p.child.id().to_string()]).status().unwrap();
    assert!(status.success());
    assert_eq!(live_version(&p.base, "acme", |v| v.is_some()).await, Some(1));
    // Still running: SIGHUP reloads, it does not stop the router.
    let health = http.get(format!("{}/healthz", p.base)).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    p.kill();
}
