//! Secrets stay where they belong: the router's own log (read by operators, shipped to log
//! stores) never shows a signing secret, a tenant key or the secret part of a destination URL.

use std::time::Duration;

use serde_json::json;

use crate::support::process::Process;
use crate::support::{ADMIN_TOKEN, SECRET, fixture};

#[tokio::test]
async fn the_log_shows_no_secret_and_no_secret_part_of_a_url() {
    let dir = crate::support::DataDir::new();
    let log = dir.path().join("router.log");
    let p = Process::start_logging(dir.path(), &[("SWITCHYARD_LOG", "debug".into())], &log).await;
    let http = reqwest::Client::new();
    let call = |method: reqwest::Method, path: &str, body: serde_json::Value| {
        http.request(method, format!("{}{path}", p.base)).bearer_auth(ADMIN_TOKEN).json(&body).send()
    };
    call(reqwest::Method::POST, "/v1/tenants", json!({"name": "acme"})).await.unwrap();
    call(reqwest::Method::PUT, "/v1/tenants/acme/sources/crm", json!({"format": "crm", "auth": {"type": "none"}}))
        .await
        .unwrap();
    let key = call(reqwest::Method::POST, "/v1/tenants/acme/keys", json!({"name": "k"})).await.unwrap();
    let key = key.json::<serde_json::Value>().await.unwrap()["key"].as_str().unwrap().to_owned();
    // Nothing listens on port 9: every attempt fails, the breaker opens and says so.
    let url = "http://127.0.0.1:9/services/T0PATHSECRET?token=QUERYSECRET";
    let doc = json!({"routes": [{"name": "all", "destinations": [{"url": url, "secret": SECRET}]}]});
    let applied = call(reqwest::Method::PUT, "/v1/tenants/acme/routes", doc).await.unwrap();
    assert!(applied.status().is_success());
    http.post(format!("{}/v1/ingest/acme/crm", p.base))
        .header("content-type", "application/json")
        .body(fixture("crm/lead_created.json"))
        .send()
        .await
        .unwrap();
    let attempts = async {
        loop {
            let list = call(reqwest::Method::GET, "/v1/tenants/acme/deliveries", json!({})).await.unwrap();
            let list: serde_json::Value = list.json().await.unwrap();
            if list["deliveries"][0]["attempts"].as_i64().unwrap_or(0) >= 6 {
                return list;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(30), attempts).await.expect("attempts were made");
    p.kill();

    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("circuit opened") && text.contains("http://127.0.0.1:9/..."), "{text}");
    for secret in ["T0PATHSECRET", "QUERYSECRET", SECRET.trim_start_matches("whsec_"), ADMIN_TOKEN, key.as_str()] {
        assert!(!text.contains(secret), "the log shows {secret:?}:\n{text}");
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn secrets_are_sealed_at_rest_and_the_key_rotates() {
    use crate::support::signature::assert_signed;
    use crate::support::{Receiver, TestRouter, WAIT};

    const DEST: &str = "whsec_ZGVzdGluYXRpb24tc2VjcmV0LTAxMjM0NTY3";
    const TOKEN: &str = "sender-bearer-token-0123456789";
    let rx = Receiver::start().await;
    let r = TestRouter::start().await;
    r.tenant("acme").await;
    r.source("acme", "svix", "standard-webhooks", Some(SECRET)).await;
    r.source("acme", "crm", "crm", None).await;
    r.source_with_auth("acme", "calls", "call-tracking", json!({"type": "bearer", "token": TOKEN})).await;
    let doc = json!({"routes": [{"name": "all", "destinations": [{"url": rx.url("hook"), "secret": DEST}]}]});
    r.routes("acme", doc).await;
    r.send("acme", "crm", &fixture("crm/lead_created.json")).await;
    assert_signed(&rx.wait_for("/hook", 1, WAIT).await[0], DEST);
    let dir = r.stop().await;
    let disk = crate::support::database::stored_bytes(dir.path()).await;
    for secret in [SECRET, DEST, TOKEN] {
        let key_material = secret.trim_start_matches("whsec_");
        assert!(!contains(&disk, key_material), "{secret} is stored in the clear");
    }

    // Rotation: a new key, the old one as previous. Start-up re-seals everything.
    let old_key = std::fs::read_to_string(dir.path().join("secrets-key")).unwrap();
    let new_key = switchyard::store::secrets::Keyring::generate_key();
    let (k1, k2) = (new_key.clone(), old_key.clone());
    let r = TestRouter::start_on(dir, move |c| {
        c.secrets.key = Some(k1);
        c.secrets.previous_keys = vec![k2];
    })
    .await;
    let dir = r.stop().await;

    // The old key is gone now: everything still opens, signs and verifies under the new one.
    let k1 = new_key.clone();
    let r = TestRouter::start_on(dir, move |c| c.secrets.key = Some(k1)).await;
    let shown = r.get("/v1/tenants/acme/routes").await;
    assert!(shown["document"]["routes"][0]["destinations"][0]["secret"].as_str().unwrap().starts_with("redacted:"));
    r.send("acme", "crm", &fixture("crm/deal_created.json")).await;
    assert_signed(&rx.wait_for("/hook", 2, WAIT).await[1], DEST);
    let svix = fixture("standard-webhooks/user_created.json");
    let now = chrono::Utc::now().timestamp();
    let headers = crate::support::signature::svix_headers(SECRET, "msg_rotation", now, &svix);
    let (status, body) = r.ingest("acme", "svix", &svix, &headers).await;
    assert_eq!(status, 202, "the source secret still verifies: {body}");
    let bearer = [("authorization".to_owned(), format!("Bearer {TOKEN}"))];
    let (status, body) = r.ingest("acme", "calls", &fixture("call-tracking/call_ended.json"), &bearer).await;
    assert_eq!(status, 202, "the bearer token still authenticates: {body}");
    let dir = r.stop().await;

    // A key that opens nothing stored is refused at start-up, naming the settings.
    let config = {
        let mut c = crate::support::test_config(dir.path()).await;
        c.secrets.key = Some(switchyard::store::secrets::Keyring::generate_key());
        c
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let err = switchyard::run(config, listener, tokio_util::sync::CancellationToken::new()).await.unwrap_err();
    assert!(format!("{err:#}").contains("secrets.previous_keys"), "{err:#}");
}
