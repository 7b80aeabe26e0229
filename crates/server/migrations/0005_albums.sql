-- Albums and the tags that order them, and search by words (issue 14).

-- An album groups the tracks that share an album title and an album artist
-- (else, for files in the library folder, a folder; else the track artist).
-- AUTOINCREMENT: an album id is never given out twice (the Studio's links
-- name albums by id).
CREATE TABLE albums (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    -- What groups the tracks (see app/catalog.rs), lowercased.
    key        TEXT NOT NULL UNIQUE,
    title      TEXT NOT NULL,
    -- The album artist tag, when the tracks have one.
    artist     TEXT,
    -- The cover cached under media/ (`covers/{id}.jpg`): NULL until looked
    -- for, '' when there is none.
    cover      TEXT,
    created_at INTEGER NOT NULL
);

ALTER TABLE tracks ADD COLUMN album_id INTEGER REFERENCES albums (id) ON DELETE SET NULL;
ALTER TABLE tracks ADD COLUMN album_artist TEXT;
ALTER TABLE tracks ADD COLUMN genre TEXT;
ALTER TABLE tracks ADD COLUMN year INTEGER;
ALTER TABLE tracks ADD COLUMN disc_no INTEGER;
ALTER TABLE tracks ADD COLUMN track_no INTEGER;
-- 0 for tracks added before this version: their tags are read into the
-- columns above at the next start.
ALTER TABLE tracks ADD COLUMN catalogued INTEGER NOT NULL DEFAULT 0;

CREATE INDEX tracks_by_album ON tracks (album_id, disc_no, track_no);

-- Search: every word of a query, in any order, as a prefix of a word in the
-- title, artist, album artist, album, genre or file name; ranked by bm25.
CREATE VIRTUAL TABLE tracks_fts USING fts5 (
    title, artist, album_artist, album, genre, file,
    tokenize = 'unicode61 remove_diacritics 2'
);

INSERT INTO tracks_fts (rowid, title, artist, album_artist, album, genre, file)
    SELECT id, title, artist, album_artist, album, genre, COALESCE(original_name, path)
    FROM tracks;

CREATE TRIGGER tracks_fts_insert AFTER INSERT ON tracks BEGIN
    INSERT INTO tracks_fts (rowid, title, artist, album_artist, album, genre, file)
    VALUES (NEW.id, NEW.title, NEW.artist, NEW.album_artist, NEW.album, NEW.genre,
            COALESCE(NEW.original_name, NEW.path));
END;

CREATE TRIGGER tracks_fts_delete AFTER DELETE ON tracks BEGIN
    DELETE FROM tracks_fts WHERE rowid = OLD.id;
END;

CREATE TRIGGER tracks_fts_update
AFTER UPDATE OF title, artist, album_artist, album, genre, path, original_name ON tracks BEGIN
    DELETE FROM tracks_fts WHERE rowid = OLD.id;
    INSERT INTO tracks_fts (rowid, title, artist, album_artist, album, genre, file)
    VALUES (NEW.id, NEW.title, NEW.artist, NEW.album_artist, NEW.album, NEW.genre,
            COALESCE(NEW.original_name, NEW.path));
END;
