-- 0003: typed recovery state. Until now `last_status` mixed what the user sees (the upstream status) with
-- recovery marks, and `next_poll_at` meant both "back off until" and "polling started at". Each gets a
-- column of its own; `last_status` is display only from here on.

-- Where the result's delivery stands: none (not tried), deferred (Telegram said "later" before anything
-- went out), sending (the photo request may be out: never resent), sent (the photo went out; DONE not yet
-- recorded: finished without resending, with sent_file_id).
ALTER TABLE tasks ADD COLUMN delivery TEXT NOT NULL DEFAULT 'none'
    CHECK (delivery IN ('none', 'deferred', 'sending', 'sent'));
ALTER TABLE tasks ADD COLUMN sent_file_id TEXT;
-- Why the task waits for `next_poll_at`: rate_limited (a submit the service definitely refused: safe to
-- send again), upstream_busy (polling failed for now), telegram_busy (a download or send failed for now).
ALTER TABLE tasks ADD COLUMN retry_reason TEXT
    CHECK (retry_reason IN ('rate_limited', 'upstream_busy', 'telegram_busy'));
-- When the poll window opened (the submit, or the end of the last back-off): the task deadline counts
-- from here, so time spent waiting for an upstream slot never shortens polling.
ALTER TABLE tasks ADD COLUMN poll_started_at REAL;

UPDATE tasks SET delivery = 'sending' WHERE state = 'delivering' AND last_status = 'sending';
UPDATE tasks SET delivery = 'deferred' WHERE state = 'delivering' AND last_status = 'send_deferred';
UPDATE tasks SET delivery = 'sent', sent_file_id = substr(last_status, 6)
    WHERE state = 'delivering' AND last_status LIKE 'sent:%';
UPDATE tasks SET retry_reason = 'rate_limited' WHERE state = 'submitting' AND last_status = 'rate_limited';
UPDATE tasks SET poll_started_at = COALESCE(next_poll_at, created_at) WHERE state IN ('submitted', 'polling');
UPDATE tasks SET last_status = NULL
    WHERE last_status IN ('sending', 'send_deferred', 'rate_limited', 'resubmitting')
       OR last_status LIKE 'sent:%';
