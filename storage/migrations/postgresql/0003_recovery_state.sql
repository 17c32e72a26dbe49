-- 0003 for PostgreSQL: as ../0003_recovery_state.sql (typed recovery state), with the same data moves.

ALTER TABLE tasks ADD COLUMN delivery TEXT NOT NULL DEFAULT 'none'
    CHECK (delivery IN ('none', 'deferred', 'sending', 'sent'));
ALTER TABLE tasks ADD COLUMN sent_file_id TEXT;
ALTER TABLE tasks ADD COLUMN retry_reason TEXT
    CHECK (retry_reason IN ('rate_limited', 'upstream_busy', 'telegram_busy'));
ALTER TABLE tasks ADD COLUMN poll_started_at DOUBLE PRECISION;

UPDATE tasks SET delivery = 'sending' WHERE state = 'delivering' AND last_status = 'sending';
UPDATE tasks SET delivery = 'deferred' WHERE state = 'delivering' AND last_status = 'send_deferred';
UPDATE tasks SET delivery = 'sent', sent_file_id = substr(last_status, 6)
    WHERE state = 'delivering' AND last_status LIKE 'sent:%';
UPDATE tasks SET retry_reason = 'rate_limited' WHERE state = 'submitting' AND last_status = 'rate_limited';
UPDATE tasks SET poll_started_at = COALESCE(next_poll_at, created_at) WHERE state IN ('submitted', 'polling');
UPDATE tasks SET last_status = NULL
    WHERE last_status IN ('sending', 'send_deferred', 'rate_limited', 'resubmitting')
       OR last_status LIKE 'sent:%';
