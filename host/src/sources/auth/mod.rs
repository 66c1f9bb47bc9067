//! How a source's senders prove who they are, for the formats that carry no signature of their
//! own (Standard Webhooks has its `whsec_` signature, see `crate::signing`). Declared with the
//! source and checked on every ingest before the body is parsed and before the tenant's rate
//! limit is touched: a stranger can neither spend the tenant's quota nor post an event's id
//! first so that the vendor's real event is taken for a duplicate.
//!
//! The declaration is data, not code: a bearer token, basic credentials, or an HMAC of the
//! request under a shared secret described by header, algorithm, encoding, prefix and signed
//! content (enough for GitHub, Stripe, Shopify and most others), or an explicit `none`.
//! Pure functions, no I/O.

mod hmac_auth;
#[cfg(test)]
mod tests;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use http::{HeaderMap, HeaderName};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub use hmac_auth::{Algorithm, Encoding, HmacAuth};

pub use crate::signing::Checks;

/// Shortest token, password or HMAC secret accepted: the only thing between a stranger and
/// the tenant's ingest.
pub const MIN_SECRET_LEN: usize = 16;

/// How senders to one source authenticate.
///
/// Serialises *with* its secrets, for the database only: the API shows [`SourceAuth::public_view`].
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum SourceAuth {
    /// Anyone may post. An explicit opt-out, recorded and shown when the source is read.
    /// (Braces so that `deny_unknown_fields` applies: `{"type": "none", "token": ...}` is a
    /// mistake to report, not an open source.)
    None {},
    /// `Authorization: Bearer <token>`, or the whole value of `header` when one is named
    /// (GitLab's `X-Gitlab-Token`, for instance).
    Bearer {
        token: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        header: Option<String>,
    },
    /// `Authorization: Basic base64(username:password)`.
    Basic { username: String, password: String },
    /// A MAC of the request under a shared secret, sent in a header.
    Hmac(HmacAuth),
}

impl std::fmt::Debug for SourceAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SourceAuth({})", self.public_view())
    }
}

/// Why a request was not let in. Never names a secret or echoes what the sender sent.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("missing {0} header")]
    MissingHeader(String),
    #[error("the Authorization header does not carry {0} credentials")]
    WrongScheme(&'static str),
    #[error("the credentials do not match")]
    WrongCredentials,
    #[error("the {header} header has more than {limit} entries; the limit (ingest.max_signature_entries) is {limit}")]
    TooManyEntries { header: String, limit: usize },
    #[error("the {header} header has no {part}= part")]
    MissingPart { header: String, part: String },
    #[error("the signature timestamp is not a unix time in seconds")]
    BadTimestamp,
    #[error("the signature timestamp is outside the allowed tolerance")]
    TimestampOutOfTolerance,
    #[error("no signature in the {0} header matches")]
    NoMatch(String),
    /// A source row without a declaration (fail closed; the API never writes one).
    #[error("this source declares no way to authenticate senders")]
    Undeclared,
}

impl SourceAuth {
    /// False only for the explicit opt-out.
    pub fn is_authenticated(&self) -> bool {
        !matches!(self, SourceAuth::None {})
    }

    /// The type name, as declared.
    pub fn kind(&self) -> &'static str {
        match self {
            SourceAuth::None {} => "none",
            SourceAuth::Bearer { .. } => "bearer",
            SourceAuth::Basic { .. } => "basic",
            SourceAuth::Hmac(_) => "hmac",
        }
    }

    /// What the API shows: the declaration without its secrets (the token, the password, the
    /// HMAC secret, and the basic username too, which is often a second secret).
    pub fn public_view(&self) -> Value {
        match self {
            SourceAuth::None {} | SourceAuth::Basic { .. } => json!({ "type": self.kind() }),
            SourceAuth::Bearer { header, .. } => {
                json!({ "type": "bearer", "header": header.as_deref().unwrap_or("Authorization") })
            }
            SourceAuth::Hmac(h) => h.public_view(),
        }
    }

    /// Checks a declaration before it is stored; the message names the field (`auth.<field>`).
    pub fn validate(&self) -> Result<(), String> {
        match self {
            SourceAuth::None {} => Ok(()),
            SourceAuth::Bearer { token, header } => {
                header_safe_secret("auth.token", token)?;
                header.as_deref().map_or(Ok(()), |h| header_name("auth.header", h))
            }
            SourceAuth::Basic { username, password } => {
                if username.is_empty() || username.contains(':') || username.chars().any(char::is_control) {
                    return Err("auth.username must be non-empty, without ':' or control characters".into());
                }
                if password.chars().count() < MIN_SECRET_LEN || password.chars().any(char::is_control) {
                    return Err(format!(
                        "auth.password must be at least {MIN_SECRET_LEN} characters, without control characters"
                    ));
                }
                Ok(())
            }
            SourceAuth::Hmac(h) => h.validate(),
        }
    }

    /// Lets the request in, or says why not. Reads headers and, for an HMAC, the body once.
    pub fn check(&self, headers: &HeaderMap, body: &[u8], checks: &Checks) -> Result<(), AuthError> {
        match self {
            SourceAuth::None {} => Ok(()),
            SourceAuth::Bearer { token, header } => {
                let given = match header {
                    Some(name) => header_str(headers, name).ok_or_else(|| AuthError::MissingHeader(name.clone()))?,
                    None => credentials(headers, "Bearer")?,
                };
                if same(given.as_bytes(), token.as_bytes()) { Ok(()) } else { Err(AuthError::WrongCredentials) }
            }
            SourceAuth::Basic { username, password } => {
                let encoded = credentials(headers, "Basic")?;
                let decoded = B64.decode(encoded).map_err(|_| AuthError::WrongScheme("Basic"))?;
                let colon = decoded.iter().position(|&b| b == b':').ok_or(AuthError::WrongScheme("Basic"))?;
                let (user, pass) = (&decoded[..colon], &decoded[colon + 1..]);
                // Both compared, always: which half was wrong is not told by the time taken.
                let ok = same(user, username.as_bytes()) & same(pass, password.as_bytes());
                if ok { Ok(()) } else { Err(AuthError::WrongCredentials) }
            }
            SourceAuth::Hmac(h) => h.check(headers, body, checks),
        }
    }
}

/// Constant-time equality that also hides the expected length: both sides are hashed first.
fn same(given: &[u8], expected: &[u8]) -> bool {
    bool::from(Sha256::digest(given).ct_eq(&Sha256::digest(expected)))
}

/// One header as text; a value that is not visible ASCII counts as absent.
fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The credentials of an `Authorization: <scheme> <credentials>` header.
fn credentials<'h>(headers: &'h HeaderMap, scheme: &'static str) -> Result<&'h str, AuthError> {
    let value = header_str(headers, "authorization").ok_or_else(|| AuthError::MissingHeader("Authorization".into()))?;
    match value.trim().split_once(' ') {
        Some((s, rest)) if s.eq_ignore_ascii_case(scheme) => Ok(rest.trim()),
        _ => Err(AuthError::WrongScheme(scheme)),
    }
}

fn header_name(field: &str, name: &str) -> Result<(), String> {
    HeaderName::from_bytes(name.as_bytes()).map(|_| ()).map_err(|_| format!("{field}: {name:?} is not a header name"))
}

/// A secret a sender puts in a header: long enough, and visible ASCII (a header value that is
/// not could never match).
fn header_safe_secret(field: &str, secret: &str) -> Result<(), String> {
    if secret.len() < MIN_SECRET_LEN || !secret.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!("{field} must be at least {MIN_SECRET_LEN} characters of visible ASCII"));
    }
    Ok(())
}
