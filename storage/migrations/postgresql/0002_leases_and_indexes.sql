-- 0002 for PostgreSQL: as ../0002_leases_and_indexes.sql; the case-insensitive username index is on
-- lower(username), which is what storage/dialect.py turns `= ? COLLATE NOCASE` into.

ALTER TABLE tasks ADD COLUMN lease_owner TEXT;
ALTER TABLE tasks ADD COLUMN lease_until DOUBLE PRECISION;

CREATE INDEX tasks_unfinished ON tasks (created_at)
    WHERE state IN ('queued', 'submitting', 'submitted', 'polling', 'delivering');
CREATE INDEX tasks_user_active ON tasks (user_id, created_at)
    WHERE state IN ('queued', 'submitting', 'submitted', 'polling', 'delivering');
CREATE INDEX tasks_user_created ON tasks (user_id, created_at);
CREATE INDEX tasks_charge_chat_created ON tasks (charge_chat_id, created_at) WHERE charge_chat_id IS NOT NULL;
CREATE INDEX tasks_finished ON tasks (finished_at) WHERE finished_at IS NOT NULL;
CREATE INDEX ledger_user ON ledger (user_id, id);
CREATE INDEX users_username ON users (lower(username));
CREATE INDEX users_last_seen ON users (last_seen);
