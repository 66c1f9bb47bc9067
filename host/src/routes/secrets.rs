//! Destination secrets never leave the router through a route read. Every document the API
//! shows (the live one, a version, a diff, the answer to an apply or a rollback) carries a
//! fingerprint in place of each secret: `redacted:sha256:<12 hex digits>`. The fingerprint
//! changes when the secret does, so a diff still shows a rotation, and twelve hex digits of a
//! hash of a high-entropy key say nothing usable about it.
//!
//! A tenant may apply a document it read back, fingerprints and all: a fingerprint that
//! matches the secret stored for that destination URL stands for that secret. One that
//! matches nothing is refused, naming where, rather than guessed at.

use sha2::{Digest, Sha256};

use super::{ApplyError, Problem, RouteDocument};
use crate::event::TenantId;
use crate::store::Store;

const PREFIX: &str = "redacted:sha256:";

/// What a read shows in place of `secret`.
pub fn fingerprint(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    format!("{PREFIX}{}", &hex::encode(digest)[..12])
}

/// `doc` with every destination secret replaced by its fingerprint.
pub fn redacted(doc: &RouteDocument) -> RouteDocument {
    let mut doc = doc.clone();
    for d in doc.routes.iter_mut().flat_map(|r| r.destinations.iter_mut()) {
        d.secret = fingerprint(&d.secret);
    }
    doc
}

/// `doc` with each fingerprint replaced by the stored secret it stands for, or the problems
/// of those that match none. A document without fingerprints is returned as it is.
pub async fn restore(doc: &RouteDocument, tenant: &TenantId, store: &Store) -> Result<RouteDocument, ApplyError> {
    let mut doc = doc.clone();
    let mut problems = Vec::new();
    for (i, route) in doc.routes.iter_mut().enumerate() {
        for (j, d) in route.destinations.iter_mut().enumerate() {
            if !d.secret.starts_with(PREFIX) {
                continue;
            }
            let stored = store.destination(tenant, &d.url).await?;
            match stored.filter(|s| fingerprint(&s.secret) == d.secret) {
                Some(s) => d.secret = s.secret,
                None => problems.push(Problem {
                    path: format!("routes[{i}].destinations[{j}].secret"),
                    message: "is a redacted secret that matches no secret stored for this URL; give the secret itself"
                        .into(),
                }),
            }
        }
    }
    if problems.is_empty() { Ok(doc) } else { Err(ApplyError::Invalid(problems)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_hide_the_secret_and_follow_its_changes() {
        let a = fingerprint("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        assert!(a.starts_with(PREFIX) && a.len() == PREFIX.len() + 12, "{a}");
        assert!(!a.contains("MfKQ9r8"));
        assert_eq!(a, fingerprint("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"));
        assert_ne!(a, fingerprint("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
    }
}
