//! Secrets at rest: source secrets, destination signing secrets (in their rows, in the
//! deliveries that copy them, and inside stored route documents) are sealed with an AEAD
//! before they reach the database, so a copy of the database file (a backup, a disk image)
//! gives none of them away without the key.
//!
//! A sealed value is `sy1:<key id>:<base64 of nonce and ciphertext>`, XChaCha20-Poly1305
//! (RustCrypto's `chacha20poly1305`). The nonce is derived from the key and the plaintext
//! (HMAC-SHA256, the SIV construction), so sealing is deterministic: the same secret under the
//! same key gives the same text, and the store can compare sealed values in SQL (a changed
//! destination secret starts a rotation). What that reveals is only which stored secrets are
//! equal.
//!
//! The key comes from `secrets.key` (or `SWITCHYARD_SECRETS__KEY`), else from a key file the
//! router generates in the data directory. Rotating: set the new key, move the old one to
//! `secrets.previous_keys`; start-up re-seals every value under the new key
//! (`Store::reseal_secrets`), after which the old key can go. Values stored before encryption
//! existed (no `sy1:` prefix) are read as they are and sealed by that same pass.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use std::path::Path;

use super::dialect::Dialect;
use super::{Store, StoreError};

const PREFIX: &str = "sy1:";

/// Why a key or a sealed value could not be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretsError {
    #[error("a secrets key must be 32 bytes, base64-encoded (e.g. `openssl rand -base64 32`)")]
    BadKey,
    #[error("a stored secret is sealed with key {0}, which is neither secrets.key nor one of secrets.previous_keys")]
    UnknownKey(String),
    #[error("a stored secret does not open with its key: the value or the key is damaged")]
    Damaged,
}

/// One 32-byte key and its id (the first 8 hex digits of its SHA-256).
#[derive(Clone)]
struct Key {
    id: String,
    bytes: [u8; 32],
}

impl Key {
    fn parse(b64: &str) -> Result<Self, SecretsError> {
        let bytes: [u8; 32] =
            B64.decode(b64.trim()).ok().and_then(|v| v.try_into().ok()).ok_or(SecretsError::BadKey)?;
        Ok(Self { id: hex::encode(&Sha256::digest(bytes)[..4]), bytes })
    }
}

/// The current key, which seals, and earlier ones, which still open.
#[derive(Clone)]
pub struct Keyring {
    current: Key,
    previous: Vec<Key>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Keyring(current {}, {} previous)", self.current.id, self.previous.len())
    }
}

impl Keyring {
    /// `current` and `previous` are base64 keys of 32 bytes.
    pub fn new(current: &str, previous: &[String]) -> Result<Self, SecretsError> {
        Ok(Self {
            current: Key::parse(current)?,
            previous: previous.iter().map(|k| Key::parse(k)).collect::<Result<_, _>>()?,
        })
    }

    /// A fresh random key, base64.
    pub fn generate_key() -> String {
        B64.encode(rand::random::<[u8; 32]>())
    }

    /// The `sy1:<id>:` prefix of values sealed under the current key.
    pub fn current_prefix(&self) -> String {
        format!("{PREFIX}{}:", self.current.id)
    }

    /// Seals `plaintext` under the current key (deterministically; see the module docs).
    pub fn seal(&self, plaintext: &str) -> String {
        let key = &self.current;
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key.bytes).expect("HMAC takes any key length");
        mac.update(b"switchyard secret nonce\0");
        mac.update(plaintext.as_bytes());
        let nonce = XNonce::clone_from_slice(&mac.finalize().into_bytes()[..24]);
        let cipher = XChaCha20Poly1305::new((&key.bytes).into());
        let sealed = cipher.encrypt(&nonce, plaintext.as_bytes()).expect("encrypting in memory cannot fail");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        format!("{PREFIX}{}:{}", key.id, B64.encode(out))
    }

    /// The plaintext of a stored value: opened with the key it names, or, for a value from
    /// before encryption (no prefix), the value itself.
    pub fn open(&self, stored: &str) -> Result<String, SecretsError> {
        let Some(rest) = stored.strip_prefix(PREFIX) else { return Ok(stored.to_owned()) };
        let (id, body) = rest.split_once(':').ok_or(SecretsError::Damaged)?;
        let key = std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|k| k.id == id)
            .ok_or_else(|| SecretsError::UnknownKey(id.to_owned()))?;
        let bytes = B64.decode(body).map_err(|_| SecretsError::Damaged)?;
        if bytes.len() < 24 {
            return Err(SecretsError::Damaged);
        }
        let (nonce, sealed) = bytes.split_at(24);
        let plain = XChaCha20Poly1305::new((&key.bytes).into())
            .decrypt(XNonce::from_slice(nonce), sealed)
            .map_err(|_| SecretsError::Damaged)?;
        String::from_utf8(plain).map_err(|_| SecretsError::Damaged)
    }

    /// Whether `stored` is sealed under the current key (nothing to re-seal).
    pub fn is_current(&self, stored: &str) -> bool {
        stored.starts_with(&self.current_prefix())
    }

    /// `stored` opened and sealed again under the current key, or None if it already is.
    pub fn reseal(&self, stored: &str) -> Result<Option<String>, SecretsError> {
        if self.is_current(stored) { Ok(None) } else { Ok(Some(self.seal(&self.open(stored)?))) }
    }

    /// A route document (JSON) with every destination secret sealed, or opened: route
    /// documents are stored whole, and their secrets must not be stored in the clear.
    pub fn map_document(
        &self,
        document: &str,
        f: impl Fn(&Self, &str) -> Result<String, SecretsError>,
    ) -> Result<String, SecretsError> {
        let Ok(mut doc) = serde_json::from_str::<serde_json::Value>(document) else {
            // Not ours to judge here: the reader reports an unreadable document.
            return Ok(document.to_owned());
        };
        let routes = doc.get_mut("routes").and_then(|r| r.as_array_mut());
        for route in routes.into_iter().flatten() {
            let destinations = route.get_mut("destinations").and_then(|d| d.as_array_mut());
            for d in destinations.into_iter().flatten() {
                if let Some(serde_json::Value::String(secret)) = d.get_mut("secret") {
                    *secret = f(self, secret)?;
                }
            }
        }
        Ok(doc.to_string())
    }

    pub fn seal_document(&self, document: &str) -> String {
        self.map_document(document, |k, s| Ok(k.seal(s))).expect("sealing cannot fail")
    }

    pub fn open_document(&self, document: &str) -> Result<String, SecretsError> {
        self.map_document(document, |k, s| k.open(s))
    }
}

/// Where the generated key is kept when `secrets.key` is not set.
pub const KEY_FILE: &str = "secrets-key";

/// The keyring: `configured` (with `previous` still opening), or else the key in
/// `<dir>/secrets-key`, created (0600) on first use. A key kept beside the database protects
/// copies of the database file alone; set `secrets.key` from the environment to keep the two
/// apart.
pub fn keyring(dir: &Path, configured: Option<&str>, previous: &[String]) -> Result<Keyring, StoreError> {
    if let Some(key) = configured {
        return Ok(Keyring::new(key, previous)?);
    }
    let path = dir.join(KEY_FILE);
    let io = |e: std::io::Error| StoreError::Io(format!("{}: {e}", path.display()));
    let key = match std::fs::read_to_string(&path) {
        Ok(key) => key,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = Keyring::generate_key();
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            options.open(&path).and_then(|mut f| std::io::Write::write_all(&mut f, key.as_bytes())).map_err(io)?;
            key
        }
        Err(e) => return Err(io(e)),
    };
    Ok(Keyring::new(&key, previous)?)
}

impl Store {
    /// Seals every stored secret under the current key: values from before encryption, and
    /// values sealed under a previous key (a rotation). Run at start-up, before anything
    /// reads them; one transaction, so a crash leaves the old state, which the next start
    /// re-seals again. Returns how many values changed.
    //
    // Other nodes may write while one starts. Rows are updated by physical key, which is what
    // keeps this safe on PostgreSQL: a row another node changed after this read has a new
    // `ctid`, so the write here matches nothing and the other node's value (sealed under the
    // shared key) stays. On SQLite there is one process.
    pub async fn reseal_secrets(&self) -> Result<usize, StoreError> {
        let keys = &self.keys;
        let prefix = format!("{}%", keys.current_prefix());
        let mut changed = 0;
        let mut tx = self.db.begin().await?;
        // Rows are found again by their physical key (see `Dialect`): not every table has a
        // one-column key.
        on_tx!(&mut tx, c => {
            let (key, key_is) = (<DB as Dialect>::ROW_KEY, <DB as Dialect>::ROW_KEY_IS_1);
            let rows: Vec<(String, String, Option<String>)> = sqlx::query_as(&format!(
                "SELECT {key}, secret, previous_secret FROM destinations
                 WHERE secret NOT LIKE $1 OR (previous_secret IS NOT NULL AND previous_secret NOT LIKE $1)"
            ))
            .bind(prefix.clone())
            .fetch_all(&mut **c)
            .await?;
            for (row, secret, previous) in rows {
                let secret = keys.reseal(&secret)?.unwrap_or(secret);
                let previous = match previous {
                    Some(p) => Some(keys.reseal(&p)?.unwrap_or(p)),
                    None => None,
                };
                sqlx::query(&format!("UPDATE destinations SET secret = $2, previous_secret = $3 WHERE {key_is}"))
                    .bind(row)
                    .bind(secret)
                    .bind(previous)
                    .execute(&mut **c)
                    .await?;
                changed += 1;
            }
            // Route documents: every destination secret inside them.
            let rows: Vec<(String, String)> =
                sqlx::query_as(&format!("SELECT {key}, document FROM route_sets")).fetch_all(&mut **c).await?;
            for (row, document) in rows {
                let resealed = keys.map_document(&document, |k, s| Ok(k.reseal(s)?.unwrap_or_else(|| s.to_owned())))?;
                if resealed != document {
                    sqlx::query(&format!("UPDATE route_sets SET document = $2 WHERE {key_is}"))
                        .bind(row)
                        .bind(resealed)
                        .execute(&mut **c)
                        .await?;
                    changed += 1;
                }
            }
            for (table, column) in [("sources", "secret"), ("sources", "auth"), ("deliveries", "secret")] {
                let rows: Vec<(String, String)> = sqlx::query_as(&format!(
                    "SELECT {key}, {column} FROM {table} WHERE {column} IS NOT NULL AND {column} != '' AND {column} NOT LIKE $1"
                ))
                .bind(prefix.clone())
                .fetch_all(&mut **c)
                .await?;
                for (row, value) in rows {
                    let sealed = keys.reseal(&value)?.unwrap_or(value);
                    sqlx::query(&format!("UPDATE {table} SET {column} = $2 WHERE {key_is}"))
                        .bind(row)
                        .bind(sealed)
                        .execute(&mut **c)
                        .await?;
                    changed += 1;
                }
            }
        });
        tx.commit().await?;
        Ok(changed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_opens_and_rotates() {
        let (old, new) = (Keyring::generate_key(), Keyring::generate_key());
        let before = Keyring::new(&old, &[]).unwrap();
        let sealed = before.seal("whsec_secret");
        assert!(sealed.starts_with("sy1:") && !sealed.contains("whsec"), "{sealed}");
        assert_eq!(before.seal("whsec_secret"), sealed, "deterministic: comparable in SQL");
        assert_eq!(before.open(&sealed).unwrap(), "whsec_secret");
        assert_eq!(before.open("whsec_legacy").unwrap(), "whsec_legacy", "values from before encryption");

        let after = Keyring::new(&new, std::slice::from_ref(&old)).unwrap();
        assert_eq!(after.open(&sealed).unwrap(), "whsec_secret", "the previous key still opens");
        let resealed = after.reseal(&sealed).unwrap().unwrap();
        assert!(after.is_current(&resealed) && after.reseal(&resealed).unwrap().is_none());
        let without_old = Keyring::new(&new, &[]).unwrap();
        assert!(matches!(without_old.open(&sealed), Err(SecretsError::UnknownKey(_))));
        assert_eq!(without_old.open(&resealed).unwrap(), "whsec_secret");

        let mut damaged = resealed.clone();
        damaged.replace_range(damaged.len() - 4.., "AAA=");
        assert_eq!(without_old.open(&damaged), Err(SecretsError::Damaged));
        assert_eq!(Keyring::new("c2hvcnQ=", &[]).unwrap_err(), SecretsError::BadKey);
    }

    #[test]
    fn documents_have_their_destination_secrets_sealed() {
        let ring = Keyring::new(&Keyring::generate_key(), &[]).unwrap();
        let doc = r#"{"routes":[{"name":"a","destinations":[{"url":"https://x","secret":"whsec_abc"}]}]}"#;
        let sealed = ring.seal_document(doc);
        assert!(!sealed.contains("whsec_abc") && sealed.contains("https://x"), "{sealed}");
        let opened: serde_json::Value = serde_json::from_str(&ring.open_document(&sealed).unwrap()).unwrap();
        assert_eq!(opened, serde_json::from_str::<serde_json::Value>(doc).unwrap());
    }
}
