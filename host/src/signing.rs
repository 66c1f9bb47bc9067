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
    #[error("the signature header has more than {0} entries; the limit (ingest.max_signature_entries) is {0}")]
    TooManyEntries(usize),
}

/// The request-independent inputs of a signature check.
#[derive(Debug, Clone, Copy)]
pub struct Checks {
    /// Now, in unix seconds.
    pub now: i64,
    /// How far a signed timestamp may be from `now`, both ways (`ingest.signature_tolerance`).
    pub tolerance_secs: i64,
    /// Entries one signature header may carry (`ingest.max_signature_entries`).
    pub max_entries: usize,
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
    /// large body hash the body thousands of times before it was refused. (`verify` also
    /// bounds the number of entries before it gets here.)
    pub fn matches(&self, id: &str, timestamp: i64, body: &[u8], header: &str) -> bool {
        let expected = self.mac(id, timestamp, body).finalize().into_bytes();
        header.split_whitespace().filter_map(|sig| sig.strip_prefix("v1,")).any(|b64| {
            B64.decode(b64).is_ok_and(|bytes| bool::from(subtle::ConstantTimeEq::ct_eq(&expected[..], &bytes[..])))
        })
    }
}

/// Verifies an inbound message: at most `max_entries` signatures in the header, timestamp
/// within `tolerance_secs` of `now`, and a matching signature under `secret`.
pub fn verify(
    secret: &Secret,
    id: &str,
    timestamp: &str,
    signature_header: &str,
    body: &[u8],
    checks: &Checks,
) -> Result<(), SignatureError> {
    if signature_header.split_whitespace().nth(checks.max_entries).is_some() {
        return Err(SignatureError::TooManyEntries(checks.max_entries));
    }
    let ts: i64 = timestamp.trim().parse().map_err(|_| SignatureError::BadTimestamp)?;
    if checks.now.abs_diff(ts) > checks.tolerance_secs.unsigned_abs() {
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

    /// The checks at `now`, with a 300 s tolerance and the default entry bound.
    fn at(now: i64) -> Checks {
        Checks { now, tolerance_secs: 300, max_entries: 16 }
    }

    #[test]
    fn many_signature_entries_cost_one_mac() {
        let s = Secret::parse(SECRET).unwrap();
        let body = vec![b'x'; 1 << 20];
        let ts = TS.to_string();
        // What an attacker sends: thousands of empty entries, then perhaps a real one.
        let header = format!("{}{SIG}", "v1, ".repeat(20_000));
        MACS.with(|n| n.set(0));
        let unbounded = Checks { max_entries: usize::MAX, ..at(TS) };
        assert_eq!(verify(&s, ID, &ts, &header, &body, &unbounded), Err(SignatureError::NoMatch));
        assert_eq!(MACS.with(|n| n.get()), 1, "the body is hashed once, not once per entry");
        // With the bound, the same header is refused before any hashing, naming the limit.
        MACS.with(|n| n.set(0));
        let refused = verify(&s, ID, &ts, &header, &body, &at(TS)).unwrap_err();
        assert_eq!(refused, SignatureError::TooManyEntries(16));
        assert!(refused.to_string().contains("ingest.max_signature_entries"), "{refused}");
        assert_eq!(MACS.with(|n| n.get()), 0);
        // Up to the bound, a real signature among junk entries still counts.
        assert_eq!(verify(&s, ID, &ts, &format!("{}{SIG}", "v1, ".repeat(15)), BODY, &at(TS)), Ok(()));
        let over = format!("{}{SIG}", "v1, ".repeat(16));
        assert_eq!(verify(&s, ID, &ts, &over, BODY, &at(TS)), Err(SignatureError::TooManyEntries(16)));
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
        assert_eq!(verify(&s, ID, &ts, SIG, BODY, &at(TS + 299)), Ok(()));
        assert_eq!(verify(&s, ID, &ts, &format!("v1,bm9wZQ== {SIG}"), BODY, &at(TS)), Ok(()));
        assert_eq!(verify(&s, ID, &ts, SIG, BODY, &at(TS + 301)), Err(SignatureError::TimestampOutOfTolerance));
        assert_eq!(verify(&s, ID, &ts, SIG, b"{}", &at(TS)), Err(SignatureError::NoMatch));
        assert_eq!(verify(&s, ID, "x", SIG, BODY, &at(TS)), Err(SignatureError::BadTimestamp));
        assert_eq!(verify(&s, ID, &ts, "v2,abc", BODY, &at(TS)), Err(SignatureError::NoMatch));
    }

    #[test]
    fn rejects_bad_secrets() {
        assert!(Secret::parse("whsec_!!!").is_err());
        assert!(Secret::parse("whsec_c2hvcnQ=").is_err());
    }
}
