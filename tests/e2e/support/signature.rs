//! Standard Webhooks verification written independently of the router's signer, so a bug
//! there cannot hide itself in the tests.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::receiver::Delivery;

/// Panics unless the delivery carries a valid `v1` signature under `secret`.
pub fn assert_signed(d: &Delivery, secret: &str) {
    let id = d.header("webhook-id");
    let ts = d.header("webhook-timestamp");
    assert!(id.starts_with("dlv_"), "webhook-id {id:?}");
    let ts_num: i64 = ts.parse().expect("webhook-timestamp is unix seconds");
    assert!((chrono::Utc::now().timestamp() - ts_num).abs() < 300, "timestamp is current");
    let key = STANDARD.decode(secret.strip_prefix("whsec_").unwrap()).unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{ts}.").as_bytes());
    mac.update(&d.body);
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    let header = d.header("webhook-signature");
    assert!(header.split(' ').any(|s| s == expected), "signature {header:?} does not match {expected:?}");
}

/// Svix-style headers for an inbound message, as a Svix sender would compute them.
pub fn svix_headers(secret: &str, msg_id: &str, timestamp: i64, body: &[u8]) -> Vec<(String, String)> {
    let key = STANDARD.decode(secret.strip_prefix("whsec_").unwrap()).unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{msg_id}.{timestamp}.").as_bytes());
    mac.update(body);
    let sig = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    vec![
        ("svix-id".into(), msg_id.into()),
        ("svix-timestamp".into(), timestamp.to_string()),
        ("svix-signature".into(), sig),
    ]
}
