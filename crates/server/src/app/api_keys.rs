//! API keys for Subsonic players (OpenSubsonic's `apiKeyAuthentication`): the
//! owner makes one per player in the Studio and revokes it there. A key is 32
//! random bytes shown once; only its SHA-256 is stored (nothing to brute-force
//! that a slow hash would protect).

use sha2::{Digest, Sha256};
use sqlx::SqlitePool;

use super::auth::generate_token;
use super::{now_ms, AppError, AppResult};

/// A key as listed (the key itself is never shown again).
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ApiKey {
    /// Id.
    pub id: i64,
    /// What the owner called it (the player it is for).
    pub name: String,
    /// Made at, ms since the epoch.
    pub created_at: i64,
    /// Last used.
    pub last_used_at: Option<i64>,
}

fn hash(key: &str) -> String {
    Sha256::digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The station's API keys. Cheap to clone.
#[derive(Clone)]
pub struct ApiKeys {
    db: SqlitePool,
}

impl ApiKeys {
    pub(crate) fn new(db: SqlitePool) -> Self {
        Self { db }
    }

    /// A new key named `name`: the listing and the key (show it now, once).
    pub async fn create(&self, name: &str) -> AppResult<(ApiKey, String)> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
            return Err(AppError::BadRequest(
                "a key's name is one line of 1-100 characters (the player it is for)".into(),
            ));
        }
        let key = generate_token();
        let listed = sqlx::query_as(
            "INSERT INTO api_keys (name, hash, created_at) VALUES (?, ?, ?)
             RETURNING id, name, created_at, last_used_at",
        )
        .bind(name)
        .bind(hash(&key))
        .bind(now_ms())
        .fetch_one(&self.db)
        .await?;
        Ok((listed, key))
    }

    /// Every key, oldest first.
    pub async fn list(&self) -> AppResult<Vec<ApiKey>> {
        Ok(
            sqlx::query_as("SELECT id, name, created_at, last_used_at FROM api_keys ORDER BY id")
                .fetch_all(&self.db)
                .await?,
        )
    }

    /// Revokes key `id`: it opens nothing from now on.
    pub async fn revoke(&self, id: i64) -> AppResult<()> {
        let n = sqlx::query("DELETE FROM api_keys WHERE id = ?")
            .bind(id)
            .execute(&self.db)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(AppError::NotFound(format!("no API key {id}")));
        }
        Ok(())
    }

    /// Whether `key` is a live key (and notes its use).
    pub async fn check(&self, key: &str) -> AppResult<bool> {
        Ok(
            sqlx::query("UPDATE api_keys SET last_used_at = ? WHERE hash = ?")
                .bind(now_ms())
                .bind(hash(key))
                .execute(&self.db)
                .await?
                .rows_affected()
                == 1,
        )
    }
}
