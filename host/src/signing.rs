//! Standard Webhooks signatures (<https://www.standardwebhooks.com>), used both to verify
//! inbound Svix-style webhooks and to sign what we deliver. Pure functions, no I/O.
//!
//! The signed content is `"{id}.{timestamp}.{body}"`; the key is the base64 part of a
//! `whsec_` secret; the header value is `v1,<base64 HMAC-SHA256>`, several of them
//! space-separated while a secret is being rotated.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// A webhook signing secret: the decoded key of a `whsec_<base64>` string.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// Why a secret or a signature was not accepted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    #[error("secret must look like whsec_<base64> with at least 16 decoded bytes")]
    BadSecret,
    #[error("missing {0} header")]
    MissingHeader(&'static str),
    #[error("webhook timestamp is not a unix time in seconds")]
    BadTimestamp,
    #[error("webhook timestamp is outside the allowed tolerance")]
    TimestampOutOfTolerance,
    #[error("no signature matches")]
    NoMatch,
}

impl Secret {
    /// Parses `whsec_<base64>` (the prefix is optional, as in the Svix libraries).
    pub fn parse(s: &str) -> Result<Self, SignatureError> {
        let b64 = s.strip_prefix("whsec_").unwrap_or(s);
        let key = B64.decode(b64).map_err(|_| SignatureError::BadSecret)?;
        if key.len() < 16 {
            return Err(SignatureError::BadSecret);
        }
        Ok(Self(key))
    }

    fn mac(&self, id: &str, timestamp: i64, body: &[u8]) -> HmacSha256 {
        #[cfg(test)]
        tests::MACS.with(|n| n.set(n.get() + 1));
        let mut mac = HmacSha256::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }

    /// The `v1,<base64>` signature of one message.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        format!("v1,{}", B64.encode(self.mac(id, timestamp, body).finalize().into_bytes()))
    }

    /// True when any `v1,` entry of a (space-separated) signature header matches.
    /// Comparison is constant-time. The MAC is computed once, whatever the number of entries:
    /// computing it per entry let one request with thousands of empty `v1,` entries and a
    /// large body hash the body thousands of times before it was refused.
    pub fn matches(&self, id: &str, timestamp: i64, body: &[u8], header: &str) -> bool {
        let expected = self.mac(id, timestamp, body).finalize().into_bytes();
        header.split_whitespace().filter_map(|sig| sig.strip_prefix("v1,")).any(|b64| {
            B64.decode(b64).is_ok_and(|bytes| bool::from(subtle::ConstantTimeEq::ct_eq(&expected[..], &bytes[..])))
        })
    }
}

/// Verifies an inbound message: timestamp within `tolerance_secs` of `now`, and a matching
/// signature under `secret`.
pub fn verify(
    secret: &Secret,
    id: &str,
    timestamp: &str,
    signature_header: &str,
    body: &[u8],
    now: i64,
    tolerance_secs: i64,
) -> Result<(), SignatureError> {
    let ts: i64 = timestamp.trim().parse().map_err(|_| SignatureError::BadTimestamp)?;
    if (now - ts).abs() > tolerance_secs {
        return Err(SignatureError::TimestampOutOfTolerance);
    }
    if secret.matches(id, ts, body, signature_header) { Ok(()) } else { Err(SignatureError::NoMatch) }
}

#[cfg(test)]
mod tests {
    use super::*;

    thread_local! {
        /// MACs computed on this thread, to count the work one verification does.
        pub(super) static MACS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }

    #[test]
    fn many_signature_entries_cost_one_mac() {
        let s = Secret::parse(SECRET).unwrap();
        let body = vec![b'x'; 1 << 20];
        // What an attacker sends: thousands of empty entries, then perhaps a real one.
        let header = format!("{}{SIG}", "v1, ".repeat(20_000));
        MACS.with(|n| n.set(0));
        assert_eq!(verify(&s, ID, &TS.to_string(), &header, &body, TS, 300), Err(SignatureError::NoMatch));
        assert_eq!(MACS.with(|n| n.get()), 1, "the body is hashed once, not once per entry");
        let ts = TS.to_string();
        assert_eq!(verify(&s, ID, &ts, &format!("{}{SIG}", "v1, ".repeat(100)), BODY, TS, 300), Ok(()));
    }

    // The Standard Webhooks reference vector (DESIGN.md).
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TS: i64 = 1614265330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    #[test]
    fn signs_the_reference_vector() {
        assert_eq!(Secret::parse(SECRET).unwrap().sign(ID, TS, BODY), SIG);
    }

    #[test]
    fn verifies_with_tolerance_and_rotation() {
        let s = Secret::parse(SECRET).unwrap();
        let ts = TS.to_string();
        assert_eq!(verify(&s, ID, &ts, SIG, BODY, TS + 299, 300), Ok(()));
        assert_eq!(verify(&s, ID, &ts, &format!("v1,bm9wZQ== {SIG}"), BODY, TS, 300), Ok(()));
        assert_eq!(verify(&s, ID, &ts, SIG, BODY, TS + 301, 300), Err(SignatureError::TimestampOutOfTolerance));
        assert_eq!(verify(&s, ID, &ts, SIG, b"{}", TS, 300), Err(SignatureError::NoMatch));
        assert_eq!(verify(&s, ID, "x", SIG, BODY, TS, 300), Err(SignatureError::BadTimestamp));
        assert_eq!(verify(&s, ID, &ts, "v2,abc", BODY, TS, 300), Err(SignatureError::NoMatch));
    }

    #[test]
    fn rejects_bad_secrets() {
        assert!(Secret::parse("whsec_!!!").is_err());
        assert!(Secret::parse("whsec_c2hvcnQ=").is_err());
    }
}
