//! The web console, driven in a real headless Chromium (Debian's `chromium`) by
//! `console.test.mjs` (playwright-core from npm, pinned in `package-lock.json`).
//!
//! This test sets the scene through the API against the real router: two tenants, a source,
//! the `call-outcome-tagger` plugin in a route whose destination is a real loopback receiver
//! that refuses the first three requests (so the first delivery goes dead) and accepts the
//! rest. Then the browser signs in and does what an operator would: it reads the overview
//! charts, finds the failed delivery among the dead letters, replays it and waits to see it
//! delivered, dry-runs the plugin on a seed fixture, and signs in again with the tenant's key
//! to check it sees its own tenant only. It saves a screenshot of the overview in the target
//! dir, or over the README's `docs/console.png` when `SWITCHYARD_UPDATE_SCREENSHOT=1` is set
//! (so a plain `cargo test` leaves the checkout as it found it).
//!
//! Prerequisites, which `.ci/run` installs: `/usr/bin/chromium` (`apt-get install -y
//! chromium`) and `npm ci` in `tests/console` (run here when `node_modules` is missing).

#[allow(dead_code)]
#[path = "../e2e/support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::json;
use support::{ADMIN_TOKEN, Receiver, TestRouter, WAIT, fixture, route};

const CHROMIUM: &str = "/usr/bin/chromium";

fn console_dir() -> PathBuf {
    support::plugins::repo_root().join("tests/console")
}

/// Fails with the fix when a prerequisite is missing; runs `npm ci` once if needed.
fn prerequisites() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: the console test drives Debian's Chromium. Install it with \
         `apt-get install -y chromium` (.ci/run does)"
    );
    let dir = console_dir();
    if !dir.join("node_modules/playwright-core").exists() {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .status()
            .unwrap_or_else(|e| panic!("running `npm ci` in {}: {e} (is Node.js installed?)", dir.display()));
        assert!(status.success(), "`npm ci` in {} failed", dir.display());
    }
}

/// Waits until the tenant has a dead letter and returns its id.
async fn dead_letter(r: &TestRouter, tenant: &str) -> String {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let page = r.get(&format!("/v1/tenants/{tenant}/deliveries?status=dead")).await;
        if let Some(d) = page["deliveries"].as_array().and_then(|a| a.first()) {
            return d["id"].as_str().unwrap().to_owned();
        }
        assert!(tokio::time::Instant::now() < deadline, "no delivery went dead");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_replays_a_dead_letter_and_dry_runs_a_plugin_in_the_browser() {
    prerequisites();
    let r = TestRouter::start().await;
    let rx = Receiver::start().await;
    // Three attempts (the test schedule) refused: the first delivery goes dead.
    rx.respond_with(&[500, 500, 503]);
    for tenant in ["acme", "globex"] {
        r.tenant(tenant).await;
        r.source(tenant, "calls", "call-tracking", None).await;
    }
    r.plugin("acme", "call-outcome-tagger").await;
    // Two versions, so the routes page has a diff and a rollback target.
    r.routes(
        "acme",
        json!({"routes": [route("tag", "calls", &["call.outcome_tagged"], &["call-outcome-tagger"], &rx.url("hook"))]}),
    )
    .await;
    r.routes(
        "acme",
        json!({"routes": [route("tag", "calls", &["call.*"], &["call-outcome-tagger"], &rx.url("hook"))]}),
    )
    .await;

    let first = r.send("acme", "calls", &fixture("call-tracking/call_outcome_tagged.json")).await;
    let dead = dead_letter(&r, "acme").await;
    // A few that go through, for the chart.
    for name in ["call_ended", "conversation_created", "message_created"] {
        let id = r.send("acme", "calls", &fixture(&format!("call-tracking/{name}.json"))).await;
        r.processed("acme", &id).await;
    }
    assert!(
        rx.accepted().iter().all(|d| d.json()["data"]["classification"].is_null()),
        "the dead letter is not delivered yet"
    );
    let key = r.key("acme").await;

    let screenshot = match std::env::var_os("SWITCHYARD_UPDATE_SCREENSHOT") {
        Some(v) if v == "1" => support::plugins::repo_root().join("docs/console.png"),
        _ => Path::new(env!("CARGO_TARGET_TMPDIR")).join("console.png"),
    };
    let _ = std::fs::remove_file(&screenshot);
    let status = Command::new("node")
        .arg(console_dir().join("console.test.mjs"))
        .args([&r.base, ADMIN_TOKEN, &key, "acme", &first, &dead])
        .arg(&screenshot)
        .env("CHROMIUM", CHROMIUM)
        .status()
        .expect("running node (is Node.js installed?)");
    assert!(status.success(), "the browser test failed: {status}");

    // What the browser saw, checked from this side too: the replay reached the receiver.
    let replayed = rx.accepted().into_iter().filter(|d| d.header("webhook-id") == dead).count();
    assert_eq!(replayed, 1, "the replayed delivery reached the receiver once");
    assert!(screenshot.exists());
    r.stop().await;
}
