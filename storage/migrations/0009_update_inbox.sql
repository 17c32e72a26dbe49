-- 0009: processed_updates becomes the durable inbox. An update is stored (its raw JSON in `payload`,
-- state 'received') before Telegram is told it arrived: before the next getUpdates confirms it, before the
-- webhook answers 200. Handling claims it ('started', payload cleared: the message text is kept no longer
-- than needed) and marks it 'handled' at the end. A 'received' row a dead process left behind is replayed
-- by any process; a 'started' one never is (at most once: its handler may have reserved or sent).
-- Rows taken before this migration count as handled.

ALTER TABLE processed_updates ADD COLUMN state TEXT NOT NULL DEFAULT 'handled'
    CHECK (state IN ('received', 'started', 'handled'));
ALTER TABLE processed_updates ADD COLUMN payload TEXT;          -- the update's JSON while 'received'
ALTER TABLE processed_updates ADD COLUMN started_at REAL;       -- when a handler claimed it (Unix seconds)
CREATE INDEX processed_updates_received ON processed_updates (at) WHERE state = 'received';
