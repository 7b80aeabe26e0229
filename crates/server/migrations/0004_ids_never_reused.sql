-- Track and job ids are never given out twice: a client that kept the id of a
-- deleted track must not reach another one. SQLite reuses the highest rowid once
-- that row is gone, so the highest id ever deleted is remembered here and new
-- rows are numbered past it (see the INSERTs in app/library.rs and app/jobs.rs).
CREATE TABLE id_high_water (
    tbl TEXT PRIMARY KEY NOT NULL,
    id  INTEGER NOT NULL
);

CREATE TRIGGER tracks_remember_id AFTER DELETE ON tracks BEGIN
    INSERT INTO id_high_water (tbl, id) VALUES ('tracks', OLD.id)
    ON CONFLICT (tbl) DO UPDATE SET id = MAX(id, excluded.id);
END;

CREATE TRIGGER jobs_remember_id AFTER DELETE ON jobs BEGIN
    INSERT INTO id_high_water (tbl, id) VALUES ('jobs', OLD.id)
    ON CONFLICT (tbl) DO UPDATE SET id = MAX(id, excluded.id);
END;
