//! The access token: generated on first run (shown once, stored as its SHA-256),
//! or set with `--token` / `SONANTICA_TOKEN` for scripted set-ups.
//!
//! A token is 32 random bytes, so a plain SHA-256 is enough to store it: there is
//! nothing to brute-force that a slow password hash would protect.

use rand::RngCore;
use sha2::{Digest, Sha256};

use std::sync::{Arc, Mutex};

use sqlx::SqlitePool;

use super::{AppError, AppResult};

const TOKEN_KEY: &str = "token_sha256";

fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    if s.len() != 64 {
        return None;
    }
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// A new random token: 32 bytes as 64 hex digits.
pub fn generate_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex(&bytes)
}

struct AuthInner {
    db: SqlitePool,
    token_hash: Mutex<[u8; 32]>,
}

/// The access token: who may use the station. Cheap to clone.
#[derive(Clone)]
pub struct Auth {
    inner: Arc<AuthInner>,
}

impl Auth {
    /// Loads the stored token hash, replacing it when `configured` is given, or
    /// generating a token on first run (returned so that it can be shown once).
    pub(crate) async fn open(
        db: SqlitePool,
        configured: Option<&str>,
    ) -> AppResult<(Auth, Option<String>)> {
        let auth = Auth {
            inner: Arc::new(AuthInner {
                db,
                token_hash: Mutex::new([0; 32]),
            }),
        };
        let shown = auth.setup_token(configured).await?;
        Ok((auth, shown))
    }

    async fn setup_token(&self, configured: Option<&str>) -> AppResult<Option<String>> {
        let stored: Option<(String,)> = sqlx::query_as("SELECT value FROM settings WHERE key = ?")
            .bind(TOKEN_KEY)
            .fetch_optional(&self.inner.db)
            .await?;
        let stored = stored.and_then(|(v,)| unhex(&v));
        let (digest, shown) = match (configured, stored) {
            (Some(t), _) => {
                if t.len() < 16 {
                    return Err(AppError::BadRequest(
                        "the access token must be at least 16 characters".into(),
                    ));
                }
                (hash(t), None)
            }
            (None, Some(d)) => (d, None),
            (None, None) => {
                let t = generate_token();
                (hash(&t), Some(t))
            }
        };
        if Some(digest) != stored {
            sqlx::query(
                "INSERT INTO settings (key, value) VALUES (?, ?)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )
            .bind(TOKEN_KEY)
            .bind(hex(&digest))
            .execute(&self.inner.db)
            .await?;
        }
        if let Ok(mut h) = self.inner.token_hash.lock() {
            *h = digest;
        }
        Ok(shown)
    }

    /// True when `token` is the access token. Compares the hashes in constant time.
    pub fn check_token(&self, token: &str) -> bool {
        let given = hash(token);
        let Ok(expected) = self.inner.token_hash.lock() else {
            return false;
        };
        given
            .iter()
            .zip(expected.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips() {
        let d = hash("abc");
        assert_eq!(unhex(&hex(&d)), Some(d));
        assert_eq!(unhex("zz"), None);
        assert_eq!(generate_token().len(), 64);
        assert_ne!(generate_token(), generate_token());
    }
}
