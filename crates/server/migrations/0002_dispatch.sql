-- With a Redis queue, a job row is the truth and the Redis message only its
-- delivery: `dispatched` is set once the message is on Redis, and cleared when a
-- job must be delivered again (handed back by a worker, or lost with one).
ALTER TABLE jobs ADD COLUMN dispatched INTEGER NOT NULL DEFAULT 0;
