//! The generic HMAC scheme: `header` carries one or more `<prefix><encoded MAC>` entries
//! (separated by commas or whitespace), the MAC of `signed_content` under `secret`.
//!
//! | sender  | header                  | algorithm | encoding | prefix    | signed content         |
//! |---------|-------------------------|-----------|----------|-----------|------------------------|
//! | GitHub  | `X-Hub-Signature-256`   | sha256    | hex      | `sha256=` | `{body}`               |
//! | Shopify | `X-Shopify-Hmac-Sha256` | sha256    | base64   |           | `{body}`               |
//! | Stripe  | `Stripe-Signature`      | sha256    | hex      | `v1=`     | `{timestamp}.{body}`, timestamp from the `t=` part |
//!
//! The MAC is computed once per request, whatever the header holds, and the header may carry
//! at most `ingest.max_signature_entries` entries: a header of thousands of entries is refused
//! before any hashing.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use http::HeaderMap;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use subtle::ConstantTimeEq;

use super::{AuthError, Checks, MIN_SECRET_LEN, header_name, header_str};

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HmacAuth {
    /// The shared secret, used as the key byte for byte (Stripe's `whsec_...` included).
    pub secret: String,
    /// The header carrying the signature(s).
    pub header: String,
    #[serde(default)]
    pub algorithm: Algorithm,
    #[serde(default)]
    pub encoding: Encoding,
    /// Text before each signature in the header (`sha256=`, `v1=`); entries without it are
    /// ignored (Stripe's `t=` and `v0=`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub prefix: String,
    /// What is signed: text with `{body}` (the raw body, exactly once) and optionally
    /// `{timestamp}`. Default `{body}`.
    #[serde(default = "body_only", skip_serializing_if = "is_body_only")]
    pub signed_content: String,
    /// Where `{timestamp}` comes from: a header of its own...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp_header: Option<String>,
    /// ...or the `<part>=` entry of the signature header (Stripe: `t`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp_part: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    Sha1,
    #[default]
    Sha256,
    Sha512,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    #[default]
    Hex,
    Base64,
}

fn body_only() -> String {
    "{body}".to_owned()
}

fn is_body_only(s: &str) -> bool {
    s == "{body}"
}

/// One piece of the signed content.
#[derive(Debug, PartialEq, Eq)]
enum Piece<'a> {
    Text(&'a str),
    Timestamp,
    Body,
}

/// `signed_content` split into its pieces: `{body}` exactly once, `{timestamp}` at most once,
/// no other braces.
fn pieces(template: &str) -> Result<Vec<Piece<'_>>, String> {
    let mut out = Vec::new();
    let mut rest = template;
    while !rest.is_empty() {
        match rest.find(['{', '}']) {
            Some(0) => {
                let (piece, len) = if rest.starts_with("{body}") {
                    (Piece::Body, 6)
                } else if rest.starts_with("{timestamp}") {
                    (Piece::Timestamp, 11)
                } else {
                    return Err("auth.signed_content: only {body} and {timestamp} may appear in braces".into());
                };
                if out.contains(&piece) {
                    return Err("auth.signed_content: {body} and {timestamp} may each appear once".into());
                }
                out.push(piece);
                rest = &rest[len..];
            }
            Some(i) => {
                out.push(Piece::Text(&rest[..i]));
                rest = &rest[i..];
            }
            None => {
                out.push(Piece::Text(rest));
                rest = "";
            }
        }
    }
    if !out.contains(&Piece::Body) {
        return Err("auth.signed_content must contain {body}".into());
    }
    Ok(out)
}

impl Encoding {
    fn decode(self, text: &str) -> Option<Vec<u8>> {
        match self {
            Encoding::Hex => hex::decode(text).ok(),
            Encoding::Base64 => B64.decode(text).ok(),
        }
    }
}

impl HmacAuth {
    pub(super) fn public_view(&self) -> Value {
        let mut v = serde_json::to_value(self).expect("plain data");
        let map = v.as_object_mut().expect("a struct");
        map.remove("secret");
        map.insert("type".into(), json!("hmac"));
        map.insert("algorithm".into(), json!(self.algorithm));
        map.insert("encoding".into(), json!(self.encoding));
        map.insert("signed_content".into(), json!(self.signed_content));
        v
    }

    pub(super) fn validate(&self) -> Result<(), String> {
        if self.secret.len() < MIN_SECRET_LEN {
            return Err(format!("auth.secret must be at least {MIN_SECRET_LEN} bytes"));
        }
        header_name("auth.header", &self.header)?;
        if !self.prefix.bytes().all(|b| b.is_ascii_graphic() && b != b',') {
            return Err("auth.prefix must be visible ASCII without commas or spaces".into());
        }
        let signs_timestamp = pieces(&self.signed_content)?.contains(&Piece::Timestamp);
        match (&self.timestamp_header, &self.timestamp_part) {
            (Some(_), Some(_)) => return Err("auth: give timestamp_header or timestamp_part, not both".into()),
            (Some(h), None) => header_name("auth.timestamp_header", h)?,
            (None, Some(p)) if p.is_empty() || !p.bytes().all(|b| b.is_ascii_alphanumeric()) => {
                return Err("auth.timestamp_part must be letters or digits, like Stripe's \"t\"".into());
            }
            _ => {}
        }
        let has_timestamp = self.timestamp_header.is_some() || self.timestamp_part.is_some();
        if signs_timestamp != has_timestamp {
            return Err(
                "auth: a timestamp needs both {timestamp} in signed_content (so it is signed) and timestamp_header or timestamp_part (where to read it)"
                    .into(),
            );
        }
        Ok(())
    }

    pub(super) fn check(&self, headers: &HeaderMap, body: &[u8], checks: &Checks) -> Result<(), AuthError> {
        let value = header_str(headers, &self.header).ok_or_else(|| AuthError::MissingHeader(self.header.clone()))?;
        let entries = || value.split(|c: char| c == ',' || c.is_ascii_whitespace()).filter(|e| !e.is_empty());
        // Bounded before anything else is done with the header.
        if entries().nth(checks.max_entries).is_some() {
            return Err(AuthError::TooManyEntries { header: self.header.clone(), limit: checks.max_entries });
        }
        let timestamp = match (&self.timestamp_header, &self.timestamp_part) {
            (Some(name), _) => {
                Some(header_str(headers, name).ok_or_else(|| AuthError::MissingHeader(name.clone()))?.trim())
            }
            (None, Some(part)) => Some(
                entries()
                    .find_map(|e| e.strip_prefix(part.as_str()).and_then(|v| v.strip_prefix('=')))
                    .ok_or_else(|| AuthError::MissingPart { header: self.header.clone(), part: part.clone() })?,
            ),
            (None, None) => None,
        };
        if let Some(ts) = timestamp {
            let ts: i64 = ts.parse().map_err(|_| AuthError::BadTimestamp)?;
            if checks.now.abs_diff(ts) > checks.tolerance_secs.unsigned_abs() {
                return Err(AuthError::TimestampOutOfTolerance);
            }
        }
        let pieces = pieces(&self.signed_content).map_err(|_| AuthError::Undeclared)?;
        let expected = self.mac(&pieces, timestamp.unwrap_or_default(), body);
        let matched = entries()
            .filter_map(|e| e.strip_prefix(self.prefix.as_str()))
            .any(|sig| self.encoding.decode(sig).is_some_and(|given| bool::from(expected.as_slice().ct_eq(&given))));
        if matched { Ok(()) } else { Err(AuthError::NoMatch(self.header.clone())) }
    }

    /// The expected MAC: computed once per request.
    fn mac(&self, pieces: &[Piece], timestamp: &str, body: &[u8]) -> Vec<u8> {
        #[cfg(test)]
        super::tests::MACS.with(|n| n.set(n.get() + 1));
        match self.algorithm {
            Algorithm::Sha1 => digest::<Hmac<sha1::Sha1>>(self.secret.as_bytes(), pieces, timestamp, body),
            Algorithm::Sha256 => digest::<Hmac<sha2::Sha256>>(self.secret.as_bytes(), pieces, timestamp, body),
            Algorithm::Sha512 => digest::<Hmac<sha2::Sha512>>(self.secret.as_bytes(), pieces, timestamp, body),
        }
    }
}

fn digest<M: Mac + KeyInit>(key: &[u8], pieces: &[Piece], timestamp: &str, body: &[u8]) -> Vec<u8> {
    let mut mac = <M as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    for piece in pieces {
        match piece {
            Piece::Text(t) => mac.update(t.as_bytes()),
            Piece::Timestamp => mac.update(timestamp.as_bytes()),
            Piece::Body => mac.update(body),
        }
    }
    mac.finalize().into_bytes().to_vec()
}

#[cfg(test)]
mod template_tests {
    use super::*;

    #[test]
    fn signed_content_templates() {
        assert_eq!(pieces("{body}").unwrap(), [Piece::Body]);
        assert_eq!(pieces("{timestamp}.{body}").unwrap(), [Piece::Timestamp, Piece::Text("."), Piece::Body]);
        assert_eq!(
            pieces("v0:{timestamp}:{body}").unwrap(),
            [Piece::Text("v0:"), Piece::Timestamp, Piece::Text(":"), Piece::Body]
        );
        assert!(pieces("{timestamp}").unwrap_err().contains("must contain {body}"));
        assert!(pieces("{body}{body}").is_err());
        assert!(pieces("{id}.{body}").is_err());
        assert!(pieces("{body").is_err());
        assert!(pieces("body}").is_err());
    }
}
