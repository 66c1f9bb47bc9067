//! The web console at `/console`: static HTML, CSS and JavaScript modules, embedded in the
//! binary, so it works with no internet and needs no build step.
//!
//! The assets hold no data and need no token: the page asks for the admin token or a tenant
//! API key, keeps it in `sessionStorage`, and calls the same `/v1` API with it as a bearer
//! token, so the console sees exactly what the API lets that token see. Every response
//! carries a strict Content-Security-Policy (scripts and styles from this origin only, no
//! inline script, no framing), so data rendered from events cannot run as code even if a bug
//! put it into markup (the scripts only ever set `textContent`).

use std::sync::OnceLock;

use axum::Router;
use axum::extract::Path;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};

use super::{ApiError, AppState};

/// Scripts, styles, images and API calls from this origin only; nothing inline, no plugins,
/// no framing, no form posts elsewhere.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; \
    frame-ancestors 'none'";

macro_rules! assets {
    ($($name:literal => $mime:literal,)*) => {
        &[$(($name, $mime, include_bytes!(concat!("assets/", $name)) as &[u8]),)*]
    };
}

/// `(path under /console/, content type, bytes)`.
const ASSETS: &[(&str, &str, &[u8])] = assets! {
    "index.html" => "text/html; charset=utf-8",
    "style.css" => "text/css; charset=utf-8",
    "favicon.svg" => "image/svg+xml",
    "app.js" => "text/javascript; charset=utf-8",
    "api.js" => "text/javascript; charset=utf-8",
    "dom.js" => "text/javascript; charset=utf-8",
    "chart.js" => "text/javascript; charset=utf-8",
    "pages/overview.js" => "text/javascript; charset=utf-8",
    "pages/events.js" => "text/javascript; charset=utf-8",
    "pages/event.js" => "text/javascript; charset=utf-8",
    "pages/dead.js" => "text/javascript; charset=utf-8",
    "pages/destinations.js" => "text/javascript; charset=utf-8",
    "pages/routes.js" => "text/javascript; charset=utf-8",
    "pages/plugins.js" => "text/javascript; charset=utf-8",
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console", get(|h: HeaderMap| async move { serve("index.html", &h) }))
        .route("/console/", get(|h: HeaderMap| async move { serve("index.html", &h) }))
        .route("/console/{*path}", get(|Path(path): Path<String>, h: HeaderMap| async move { serve(&path, &h) }))
}

/// Content hashes, computed once: the ETag of each asset, so a browser revalidates cheaply
/// (`Cache-Control: no-cache`) and never runs a stale script after an upgrade.
fn etags() -> &'static [String] {
    static ETAGS: OnceLock<Vec<String>> = OnceLock::new();
    ETAGS.get_or_init(|| {
        ASSETS.iter().map(|(_, _, bytes)| format!("\"{}\"", &hex::encode(Sha256::digest(bytes))[..16])).collect()
    })
}

fn serve(path: &str, request: &HeaderMap) -> Response {
    let Some(i) = ASSETS.iter().position(|(name, _, _)| *name == path) else {
        return ApiError::NotFound(format!("the console has no file {path:?}")).into_response();
    };
    let (_, mime, bytes) = ASSETS[i];
    let etag = &etags()[i];
    let fresh = request
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(mime));
    headers.insert(ETAG, HeaderValue::from_str(etag).expect("hex is a valid header"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers
        .insert(HeaderName::from_static("content-security-policy"), HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(HeaderName::from_static("x-content-type-options"), HeaderValue::from_static("nosniff"));
    headers.insert(HeaderName::from_static("x-frame-options"), HeaderValue::from_static("DENY"));
    headers.insert(HeaderName::from_static("referrer-policy"), HeaderValue::from_static("no-referrer"));
    if fresh {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    (StatusCode::OK, headers, bytes).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_is_served_with_its_type_and_the_policy() {
        for (name, mime, _) in ASSETS {
            let r = serve(name, &HeaderMap::new());
            assert_eq!(r.status(), StatusCode::OK, "{name}");
            assert_eq!(r.headers()[CONTENT_TYPE], *mime);
            assert_eq!(r.headers()["content-security-policy"], CONTENT_SECURITY_POLICY);
        }
        assert_eq!(serve("../Cargo.toml", &HeaderMap::new()).status(), StatusCode::NOT_FOUND);
    }

    #[test]
    fn a_known_etag_answers_304() {
        let etag = serve("app.js", &HeaderMap::new()).headers()[ETAG].clone();
        let mut h = HeaderMap::new();
        h.insert(IF_NONE_MATCH, etag);
        assert_eq!(serve("app.js", &h).status(), StatusCode::NOT_MODIFIED);
    }

    #[test]
    fn no_inline_script_or_style_in_the_page() {
        let html = std::str::from_utf8(ASSETS[0].2).unwrap();
        assert!(!html.contains("<script>") && !html.contains("style="), "the CSP would block it");
    }
}
