-- OpenSubsonic API keys (issue 17): made and revoked in the Studio, each a
-- random key shown once and stored as its SHA-256.
CREATE TABLE api_keys (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    name         TEXT NOT NULL,
    hash         TEXT NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER
);
