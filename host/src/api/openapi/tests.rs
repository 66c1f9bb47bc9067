//! The document covers the router: every `.route(...)` in the API's modules, with each of its
//! methods, is an operation of the document, and the document has no operation the router
//! does not serve. The routes are read from the modules' source, because axum cannot list a
//! router's routes.

use std::collections::BTreeSet;

use super::document;

/// Every API module that adds routes.
const SOURCES: &[&str] = &[
    include_str!("../deliveries.rs"),
    include_str!("../destinations.rs"),
    include_str!("../events.rs"),
    include_str!("../fixtures.rs"),
    include_str!("../health.rs"),
    include_str!("../ingest.rs"),
    include_str!("../keys.rs"),
    include_str!("../metrics.rs"),
    include_str!("../openapi.rs"),
    include_str!("../plugins.rs"),
    include_str!("../routes.rs"),
    include_str!("../stats.rs"),
    include_str!("../tenants.rs"),
];

/// Every module of the API, so that a new one cannot be left out of `SOURCES` unnoticed.
/// The console serves web pages, not the API: it is not in the document.
const MODULES: &[&str] = &[
    "auth.rs",
    "console",
    "deliveries.rs",
    "destinations.rs",
    "error.rs",
    "events.rs",
    "fixtures.rs",
    "health.rs",
    "ingest.rs",
    "keys.rs",
    "metrics.rs",
    "mod.rs",
    "openapi",
    "openapi.rs",
    "pages.rs",
    "plugins.rs",
    "routes.rs",
    "server.rs",
    "stats.rs",
    "tenants.rs",
];

#[test]
fn every_api_module_is_read_for_routes() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/api");
    let mut found: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    found.sort();
    assert_eq!(found, MODULES, "a module was added to src/api: if it adds routes, add it to SOURCES too");
}

const METHODS: &[&str] = &["get", "post", "put", "delete", "patch"];

/// `(METHOD, path)` of every `.route("path", method(handler).method(handler)...)`.
fn routed() -> BTreeSet<(String, String)> {
    let mut found = BTreeSet::new();
    for source in SOURCES {
        for (start, _) in source.match_indices(".route(") {
            let call = source[start + ".route(".len()..].trim_start();
            let (path, rest) = match call.strip_prefix('"') {
                Some(quoted) => quoted.split_once('"').expect("a closing quote"),
                // The one route named by a constant: the document's own.
                None => (super::PATH, call.strip_prefix("PATH,").expect("a path literal, or PATH")),
            };
            // The method router runs to the parenthesis that closes `.route(`.
            let mut depth = 1;
            let end = rest
                .char_indices()
                .find_map(|(i, c)| {
                    depth += i32::from(c == '(') - i32::from(c == ')');
                    (depth == 0).then_some(i)
                })
                .expect("a closing parenthesis");
            let methods = &rest[..end];
            let before = |i: usize| methods[..i].chars().next_back();
            for method in METHODS {
                for (i, _) in methods.match_indices(&format!("{method}(")) {
                    // `get(` or `.get(`, not `forget(`.
                    if before(i).is_none_or(|c| !c.is_alphanumeric() && c != '_') {
                        found.insert((method.to_uppercase(), path.to_owned()));
                    }
                }
            }
        }
    }
    found
}

fn documented() -> BTreeSet<(String, String)> {
    let doc = document();
    let mut found = BTreeSet::new();
    for (path, item) in &doc.paths.paths {
        for (method, op) in [
            ("GET", &item.get),
            ("POST", &item.post),
            ("PUT", &item.put),
            ("DELETE", &item.delete),
            ("PATCH", &item.patch),
        ] {
            if op.is_some() {
                found.insert((method.to_owned(), path.clone()));
            }
        }
    }
    found
}

#[test]
fn every_route_is_documented_and_every_operation_routed() {
    let (routed, documented) = (routed(), documented());
    assert!(routed.len() > 30, "the route scan found too little: {routed:?}");
    let missing: Vec<_> = routed.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&routed).collect();
    assert!(missing.is_empty(), "routes missing from the OpenAPI document: {missing:?}");
    assert!(extra.is_empty(), "documented operations no route serves: {extra:?}");
}

#[test]
fn the_document_is_openapi_3_1_with_bearer_auth_and_the_error_body() {
    let doc: serde_json::Value = serde_json::from_str(&document().to_json().unwrap()).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{}", doc["openapi"]);
    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
    // Public operations say so; the rest inherit the bearer requirement.
    assert_eq!(doc["paths"]["/v1/ingest/{tenant}/{source}"]["post"]["security"], serde_json::json!([{}]));
    let tenants = &doc["paths"]["/v1/tenants"]["post"];
    assert!(tenants.get("security").is_none());
    for status in ["401", "403", "422", "500"] {
        assert!(tenants["responses"][status].is_object(), "POST /v1/tenants lacks {status}");
    }
}
