-- The GPU engine (issue 19): where a job computes ("CPU", "GPU: <adapter>",
-- or the CPU after a GPU failure), as its worker reports it.
ALTER TABLE jobs ADD COLUMN device TEXT;
