//! A thin reqwest wrapper for the admin API: one base URL, one bearer token, and the API's
//! error format turned into [`CliError`] so every command reports failures the same way.

use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use reqwest::{Method, StatusCode, header};
use serde_json::Value;
use url::Url;

/// Why a command failed; decides the exit code.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The router answered with an error.
    #[error("{}", api_message(.status, .message, .details, .retry_after))]
    Api { status: StatusCode, message: String, details: Vec<(String, String)>, retry_after: Option<String> },
    /// No answer at all: connection refused, DNS, TLS or timeout.
    #[error("cannot reach the router at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    /// Arguments that parsed but make no sense together (exit code 2, like clap's own errors).
    #[error("{0}")]
    Usage(String),
    /// Everything else on this side: a file that cannot be read, an unexpected answer.
    #[error("{0}")]
    Local(String),
}

impl CliError {
    pub fn exit_code(&self) -> ExitCode {
        match self {
            CliError::Api { .. } | CliError::Local(_) => ExitCode::from(1),
            CliError::Usage(_) => ExitCode::from(2),
            CliError::Unreachable { .. } => ExitCode::from(3),
        }
    }
}

fn api_message(status: &StatusCode, message: &str, details: &[(String, String)], retry: &Option<String>) -> String {
    let mut out = format!("{message} (HTTP {})", status.as_u16());
    if let Some(after) = retry {
        let _ = write!(out, "; retry after {after} s");
    }
    if *status == StatusCode::UNAUTHORIZED {
        out.push_str("\nhint: pass --token, set SWITCHYARD_TOKEN, or put `token` in the CLI config file");
    }
    for (path, message) in details {
        let _ = write!(out, "\n  {path}: {message}");
    }
    out
}

pub type Result<T, E = CliError> = std::result::Result<T, E>;

/// A request body.
pub enum Body {
    Empty,
    Json(Value),
    Raw { bytes: Vec<u8>, content_type: &'static str },
}

pub struct Client {
    http: reqwest::Client,
    base: Url,
    token: Option<String>,
}

impl Client {
    pub fn new(base: &str, token: Option<String>) -> Result<Self> {
        let base = Url::parse(base).map_err(|e| CliError::Usage(format!("--url {base:?}: {e}")))?;
        if base.cannot_be_a_base() || !matches!(base.scheme(), "http" | "https") {
            return Err(CliError::Usage(format!("--url {base}: expected http(s)://host[:port]")));
        }
        let http = reqwest::Client::builder()
            .user_agent(concat!("switchyard-cli/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(5))
            // Generous: a plugin upload is compiled before the router answers.
            .timeout(Duration::from_secs(300))
            .build()
            .map_err(|e| CliError::Local(format!("HTTP client: {e}")))?;
        Ok(Self { http, base, token })
    }

    /// The URL of `segments` under the base URL, each segment percent-encoded, so a name
    /// can never smuggle `/` or `?` into the path.
    pub fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        url.path_segments_mut().expect("checked in new()").pop_if_empty().extend(segments);
        url
    }

    pub async fn get(&self, segments: &[&str]) -> Result<Value> {
        self.send(Method::GET, self.url(segments), Body::Empty).await
    }

    pub async fn get_query(&self, segments: &[&str], query: &[(&str, String)]) -> Result<Value> {
        let mut url = self.url(segments);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        self.send(Method::GET, url, Body::Empty).await
    }

    pub async fn post(&self, segments: &[&str], body: Body) -> Result<Value> {
        self.send(Method::POST, self.url(segments), body).await
    }

    pub async fn put(&self, segments: &[&str], body: Body) -> Result<Value> {
        self.send(Method::PUT, self.url(segments), body).await
    }

    pub async fn delete(&self, segments: &[&str]) -> Result<Value> {
        self.send(Method::DELETE, self.url(segments), Body::Empty).await
    }

    /// Sends one request; a 2xx answer gives its JSON body (`Null` when empty), anything else
    /// a [`CliError`].
    pub async fn send(&self, method: Method, url: Url, body: Body) -> Result<Value> {
        let mut req = self.http.request(method, url.clone());
        if let Some(token) = &self.token {
            req = req.bearer_auth(token);
        }
        req = match body {
            Body::Empty => req,
            Body::Json(value) => req.json(&value),
            Body::Raw { bytes, content_type } => req.header(header::CONTENT_TYPE, content_type).body(bytes),
        };
        let unreachable = |e: reqwest::Error| CliError::Unreachable { url: self.base.to_string(), reason: cause(&e) };
        let resp = req.send().await.map_err(unreachable)?;
        let status = resp.status();
        let retry_after = resp.headers().get(header::RETRY_AFTER).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let text = resp.text().await.map_err(unreachable)?;
        if status.is_success() {
            if text.trim().is_empty() {
                return Ok(Value::Null);
            }
            return serde_json::from_str(&text)
                .map_err(|e| CliError::Local(format!("the router's answer to {url} is not JSON: {e}")));
        }
        Err(decode_error(status, &text, retry_after))
    }
}

/// The router's answer as the API's own response type (`api::types`): a field the API renames
/// or drops breaks this crate's build, or fails here with the field named, never prints an
/// empty column.
pub fn decode<T: serde::de::DeserializeOwned>(value: Value) -> Result<T> {
    serde_json::from_value(value).map_err(|e| CliError::Local(format!("unexpected answer from the router: {e}")))
}

/// The API's `{"error": {"message", "details": [{"path", "message"}]}}`, or the raw text when
/// something else (a proxy, an older router) answered.
fn decode_error(status: StatusCode, text: &str, retry_after: Option<String>) -> CliError {
    let body: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    let error = &body["error"];
    let message = match error["message"].as_str() {
        Some(m) => m.to_owned(),
        None if text.trim().is_empty() => status.canonical_reason().unwrap_or("error").to_owned(),
        None => text.trim().chars().take(500).collect(),
    };
    let details = error["details"]
        .as_array()
        .map(|ds| {
            ds.iter()
                .map(|d| (d["path"].as_str().unwrap_or("").to_owned(), d["message"].as_str().unwrap_or("").to_owned()))
                .collect()
        })
        .unwrap_or_default();
    CliError::Api { status, message, details, retry_after }
}

/// reqwest's top-level message ("error sending request") hides the useful part; the innermost
/// source says "Connection refused" or "dns error".
fn cause(e: &reqwest::Error) -> String {
    let mut source: &dyn std::error::Error = e;
    while let Some(next) = source.source() {
        source = next;
    }
    if e.is_timeout() { "timed out".to_owned() } else { source.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_are_encoded_under_the_base_path() {
        let c = Client::new("http://h:1/prefix/", None).unwrap();
        assert_eq!(c.url(&["v1", "tenants", "a/b?c"]).as_str(), "http://h:1/prefix/v1/tenants/a%2Fb%3Fc");
        let c = Client::new("http://h:1", None).unwrap();
        assert_eq!(c.url(&["v1", "tenants"]).as_str(), "http://h:1/v1/tenants");
    }

    #[test]
    fn api_errors_keep_message_and_details() {
        let text = r#"{"error":{"code":"unprocessable","message":"invalid route document",
            "details":[{"path":"routes[0].name","message":"required"}]}}"#;
        let e = decode_error(StatusCode::UNPROCESSABLE_ENTITY, text, None);
        assert_eq!(e.to_string(), "invalid route document (HTTP 422)\n  routes[0].name: required");
        let e =
            decode_error(StatusCode::TOO_MANY_REQUESTS, "{\"error\":{\"message\":\"slow down\"}}", Some("7".into()));
        assert_eq!(e.to_string(), "slow down (HTTP 429); retry after 7 s");
        let e = decode_error(StatusCode::BAD_GATEWAY, "<html>bad gateway</html>", None);
        assert_eq!(e.to_string(), "<html>bad gateway</html> (HTTP 502)");
    }
}
