-- 0002: task leases (so several workers can share the table) and the indexes the hot queries need.

ALTER TABLE tasks ADD COLUMN lease_owner TEXT;
ALTER TABLE tasks ADD COLUMN lease_until REAL;

-- unfinished() and resume on start-up: only the few live tasks are indexed, however many are finished.
CREATE INDEX tasks_unfinished ON tasks (created_at)
    WHERE state IN ('queued', 'submitting', 'submitted', 'polling', 'delivering');
-- The per-user active limit in tasks.create and active_for_user: only live tasks, however long the history.
CREATE INDEX tasks_user_active ON tasks (user_id, created_at)
    WHERE state IN ('queued', 'submitting', 'submitted', 'polling', 'delivering');
-- recent_for_user.
CREATE INDEX tasks_user_created ON tasks (user_id, created_at);
-- The group daily cap in tasks.create.
CREATE INDEX tasks_charge_chat_created ON tasks (charge_chat_id, created_at) WHERE charge_chat_id IS NOT NULL;
-- Stats over finished tasks (latency, spent today).
CREATE INDEX tasks_finished ON tasks (finished_at) WHERE finished_at IS NOT NULL;
-- quotas.ledger(user) and check().
CREATE INDEX ledger_user ON ledger (user_id, id);
-- users.find("@name") is case-insensitive; stats count active users by last_seen.
CREATE INDEX users_username ON users (username COLLATE NOCASE);
CREATE INDEX users_last_seen ON users (last_seen);
