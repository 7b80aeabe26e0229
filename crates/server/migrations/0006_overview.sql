-- A compact picture of each track for the Studio's seek bar (issue 14): its
-- envelope, clipped spots and short-term loudness, as JSON
-- (sonantica_meter::Overview), written by the analysis.
ALTER TABLE tracks ADD COLUMN overview TEXT;

-- Tracks analysed before this version are analysed again in the background
-- to get one; their stored figures stay until then.
UPDATE tracks SET analysis_status = 'pending' WHERE analysis_status = 'done';
