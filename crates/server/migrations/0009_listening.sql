-- What listeners do in their players (issue 17, Subsonic): plays, stars and
-- playlists. Shown to Subsonic players and in the Studio.

-- One row per play a player reported (scrobble with submission).
CREATE TABLE plays (
    track_id  INTEGER NOT NULL REFERENCES tracks (id) ON DELETE CASCADE,
    played_at INTEGER NOT NULL
);
CREATE INDEX plays_by_track ON plays (track_id, played_at);

-- A star on exactly one of a track, an album or an artist (by name, as
-- artists have no table).
CREATE TABLE stars (
    track_id   INTEGER REFERENCES tracks (id) ON DELETE CASCADE,
    album_id   INTEGER REFERENCES albums (id) ON DELETE CASCADE,
    artist     TEXT,
    starred_at INTEGER NOT NULL,
    CHECK ((track_id IS NOT NULL) + (album_id IS NOT NULL) + (artist IS NOT NULL) = 1)
);
CREATE UNIQUE INDEX stars_track ON stars (track_id) WHERE track_id IS NOT NULL;
CREATE UNIQUE INDEX stars_album ON stars (album_id) WHERE album_id IS NOT NULL;
CREATE UNIQUE INDEX stars_artist ON stars (artist COLLATE NOCASE) WHERE artist IS NOT NULL;

-- AUTOINCREMENT: a playlist id is never given out twice (players keep them).
CREATE TABLE playlists (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT NOT NULL,
    comment    TEXT,
    public     INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    changed_at INTEGER NOT NULL
);

-- A playlist's entries in order; a track may appear more than once. A deleted
-- track leaves its playlists (the positions keep their order).
CREATE TABLE playlist_entries (
    playlist_id INTEGER NOT NULL REFERENCES playlists (id) ON DELETE CASCADE,
    position    INTEGER NOT NULL,
    track_id    INTEGER NOT NULL REFERENCES tracks (id) ON DELETE CASCADE,
    PRIMARY KEY (playlist_id, position)
);
