//! The access token: generated on first run (shown once, stored as its SHA-256),
//! or set with `--token` / `SONANTICA_TOKEN` for scripted set-ups; and browser
//! sessions: logging in with the token gives a random session id (the cookie),
//! stored only hashed, ended by logout, by its expiry, or by a new token.
//!
//! A token is 32 random bytes, so a plain SHA-256 is enough to store it: there is
//! nothing to brute-force that a slow password hash would protect.

use rand::RngCore;
use sha2::{Digest, Sha256};

use std::sync::{Arc, Mutex};

use sqlx::SqlitePool;

use super::{now_ms, AppError, AppResult};

/// How long a browser session lasts.
pub const SESSION_DAYS: i64 = 30;

/// Failed logins from one client allowed before it has to wait.
const FREE_FAILURES: u32 = 5;

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
    /// The hash of `--worker-token`, the only credential of the worker API.
    worker_hash: Option<[u8; 32]>,
    /// Failed logins per client: how many in a row, and when the last was.
    failures: Mutex<std::collections::HashMap<String, (u32, std::time::Instant)>>,
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
        worker_token: Option<&str>,
    ) -> AppResult<(Auth, Option<String>)> {
        let worker_hash = match worker_token {
            Some(t) if t.len() < 16 => {
                return Err(AppError::BadRequest(
                    "the worker token must be at least 16 characters".into(),
                ))
            }
            Some(t) if configured == Some(t) => {
                return Err(AppError::BadRequest(
                    "the worker token must differ from the access token: workers get a credential of their own".into(),
                ))
            }
            t => t.map(hash),
        };
        let auth = Auth {
            inner: Arc::new(AuthInner {
                db,
                token_hash: Mutex::new([0; 32]),
                worker_hash,
                failures: Mutex::new(std::collections::HashMap::new()),
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
            // A new token ends every session made with the old one.
            sqlx::query("DELETE FROM sessions")
                .execute(&self.inner.db)
                .await?;
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
        let Ok(expected) = self.inner.token_hash.lock() else {
            return false;
        };
        same_hash(&hash(token), &expected)
    }

    /// True when `token` is the worker token (never true without one).
    pub fn check_worker_token(&self, token: &str) -> bool {
        self.inner
            .worker_hash
            .is_some_and(|expected| same_hash(&hash(token), &expected))
    }
}

/// Compares two hashes in constant time.
fn same_hash(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Auth {
    /// Exchanges the access token for a new session: its id (for the cookie,
    /// never stored) and its lifetime in seconds. `client` names the caller for
    /// the back-off: after [`FREE_FAILURES`] wrong tokens in a row it must wait
    /// 2, 4, 8 … (at most 60) seconds between tries, and is told how long.
    pub async fn login(&self, token: &str, client: &str) -> AppResult<(String, i64)> {
        if let Some(wait) = self.backoff(client) {
            return Err(AppError::TooManyAttempts(wait.as_secs().max(1)));
        }
        if !self.check_token(token) {
            self.failed_attempt(client);
            return Err(AppError::Unauthorized);
        }
        self.successful_attempt(client);
        let id = generate_token();
        let now = now_ms();
        let lifetime = SESSION_DAYS * 24 * 3600;
        sqlx::query("INSERT INTO sessions (hash, created_at, expires_at) VALUES (?, ?, ?)")
            .bind(hex(&hash(&id)))
            .bind(now)
            .bind(now + lifetime * 1000)
            .execute(&self.inner.db)
            .await?;
        Ok((id, lifetime))
    }

    /// Counts a wrong credential from `client` (a login, or a Subsonic player
    /// under its own client key) towards its back-off.
    pub(crate) fn failed_attempt(&self, client: &str) {
        if let Ok(mut f) = self.inner.failures.lock() {
            let e = f
                .entry(client.to_owned())
                .or_insert((0, std::time::Instant::now()));
            e.0 += 1;
            e.1 = std::time::Instant::now();
            // Keep the table small: forget clients quiet for an hour.
            if f.len() > 10_000 {
                f.retain(|_, (_, at)| at.elapsed().as_secs() < 3600);
            }
        }
    }

    /// A right credential from `client`: its failures are forgotten.
    pub(crate) fn successful_attempt(&self, client: &str) {
        if let Ok(mut f) = self.inner.failures.lock() {
            f.remove(client);
        }
    }

    /// How long `client` must still wait before its next login attempt.
    pub(crate) fn backoff(&self, client: &str) -> Option<std::time::Duration> {
        let f = self.inner.failures.lock().ok()?;
        let (count, at) = f.get(client)?;
        if *count < FREE_FAILURES {
            return None;
        }
        let wait =
            std::time::Duration::from_secs((1u64 << (count - FREE_FAILURES + 1).min(6)).min(60));
        wait.checked_sub(at.elapsed())
    }

    /// True when `id` is a live session.
    pub async fn check_session(&self, id: &str) -> bool {
        sqlx::query_scalar::<_, i64>("SELECT 1 FROM sessions WHERE hash = ? AND expires_at > ?")
            .bind(hex(&hash(id)))
            .bind(now_ms())
            .fetch_optional(&self.inner.db)
            .await
            .is_ok_and(|r| r.is_some())
    }

    /// Ends a session (logout). Unknown ids are ignored.
    pub async fn logout(&self, id: &str) -> AppResult<()> {
        sqlx::query("DELETE FROM sessions WHERE hash = ? OR expires_at <= ?")
            .bind(hex(&hash(id)))
            .bind(now_ms())
            .execute(&self.inner.db)
            .await?;
        Ok(())
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
