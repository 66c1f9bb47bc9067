//! `GET /v1/openapi.json`: public, OpenAPI 3.1, and the errors it promises are the ones the
//! router gives, even for requests axum refuses before a handler runs (a path that is not
//! UTF-8, a query that does not parse). The full contract is checked by `.ci/schemathesis`.

use reqwest::StatusCode;
use serde_json::Value;

use crate::support::{ADMIN_TOKEN, TestRouter};

#[tokio::test]
async fn the_document_is_public_and_describes_the_api() {
    let r = TestRouter::start().await;
    let resp = r.http.get(format!("{}/v1/openapi.json", r.base)).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let doc: Value = resp.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1."), "{}", doc["openapi"]);
    assert!(doc["paths"]["/v1/ingest/{tenant}/{source}"]["post"].is_object());
    assert!(doc["paths"]["/v1/tenants/{tenant}/routes"]["put"].is_object());
    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    r.stop().await;
}

#[tokio::test]
async fn requests_refused_before_a_handler_get_the_documented_error_body() {
    let r = TestRouter::start().await;
    r.tenant("acme").await;
    for path in ["/v1/tenants/%FF/events", "/v1/tenants/acme/routes/diff", "/v1/tenants/acme/routes/diff?from=1&x=2"] {
        let resp = r.http.get(format!("{}{path}", r.base)).bearer_auth(ADMIN_TOKEN).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(resp.headers()["content-type"], "application/json", "{path}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], "bad_request", "{path}: {body}");
    }
    r.stop().await;
}
