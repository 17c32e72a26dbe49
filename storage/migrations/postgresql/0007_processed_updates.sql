-- 0007: the Telegram updates already taken, by update_id, so an update delivered twice (a webhook retried
-- after a slow answer, the same update sent to two processes, getUpdates after a crash) is handled once,
-- whichever process gets it. Rows older than a day are pruned: Telegram stops re-delivering long before.
-- (PostgreSQL spelling of migrations/0007_processed_updates.sql.)

CREATE TABLE processed_updates (
    update_id BIGINT PRIMARY KEY,
    at        DOUBLE PRECISION NOT NULL              -- when it was first taken (Unix seconds)
);
CREATE INDEX processed_updates_at ON processed_updates (at);
