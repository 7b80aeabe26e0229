-- The library: tracks, their stems, separation jobs, and settings.
-- Times are milliseconds since the Unix epoch.

CREATE TABLE settings (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);

CREATE TABLE tracks (
    id              INTEGER PRIMARY KEY,
    -- 'upload': the file lives in media/uploads/; 'library': in the read-only
    -- library folder, at `path` relative to it.
    origin          TEXT NOT NULL CHECK (origin IN ('upload', 'library')),
    path            TEXT NOT NULL,
    file_size       INTEGER NOT NULL,
    file_mtime      INTEGER NOT NULL,
    original_name   TEXT,
    title           TEXT NOT NULL,
    artist          TEXT,
    album           TEXT,
    codec           TEXT NOT NULL,
    sample_rate     INTEGER NOT NULL,
    channels        INTEGER NOT NULL,
    layout          TEXT NOT NULL,
    bits_per_sample INTEGER,
    duration_s      REAL,
    tags            TEXT NOT NULL DEFAULT '{}',
    -- 'pending' until the background analysis has run, then 'done' or 'failed'.
    analysis_status TEXT NOT NULL DEFAULT 'pending'
                    CHECK (analysis_status IN ('pending', 'done', 'failed')),
    analysis        TEXT,
    analysis_error  TEXT,
    created_at      INTEGER NOT NULL,
    UNIQUE (origin, path)
);

CREATE TABLE stems (
    track_id INTEGER NOT NULL REFERENCES tracks (id) ON DELETE CASCADE,
    model    TEXT NOT NULL,
    source   TEXT NOT NULL,
    -- Relative to media/.
    path     TEXT NOT NULL,
    PRIMARY KEY (track_id, model, source)
);

CREATE TABLE jobs (
    id          INTEGER PRIMARY KEY,
    track_id    INTEGER NOT NULL REFERENCES tracks (id) ON DELETE CASCADE,
    model       TEXT NOT NULL,
    status      TEXT NOT NULL
                CHECK (status IN ('queued', 'running', 'done', 'failed', 'cancelled')),
    -- Higher runs first: interactive requests over library-wide batches.
    priority    INTEGER NOT NULL,
    progress    REAL NOT NULL DEFAULT 0,
    eta_s       REAL,
    error       TEXT,
    -- The worker holding the job and until when; a running job whose lease has
    -- expired is taken by the next worker that asks.
    worker      TEXT,
    lease_until INTEGER,
    attempts    INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL,
    started_at  INTEGER,
    finished_at INTEGER
);

-- One active job per track and model.
CREATE UNIQUE INDEX jobs_one_active ON jobs (track_id, model)
    WHERE status IN ('queued', 'running');
CREATE INDEX jobs_by_status ON jobs (status, priority DESC, id);
