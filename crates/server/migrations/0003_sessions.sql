-- Browser sessions: the login cookie carries a random session id, stored here
-- only as its SHA-256; logout deletes the row, and a new access token deletes
-- them all.
CREATE TABLE sessions (
    hash       TEXT PRIMARY KEY,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
