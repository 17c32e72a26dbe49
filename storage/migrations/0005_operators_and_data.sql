-- 0005: operators and data. Finished tasks can be deleted (purge, /forgetme) while the ledger rows that
-- accounted for them stay, and a user who asked to be forgotten is marked.

-- The ledger outlives the tasks it accounts for, so its task_id becomes a plain number: a foreign key would
-- forbid deleting a finished task. (Task ids are AUTOINCREMENT: a deleted task's id is never reused.)
-- The ledger check verifies a deleted task's rows on their own: one reserve, then exactly one commit or
-- refund. SQLite cannot drop a foreign key, so the table is rebuilt as lang_altertable.html describes.
CREATE TABLE ledger_new (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id   INTEGER REFERENCES users (id),         -- NULL: the default allowance for everyone
    task_id   INTEGER,                               -- the task this row accounts for (it may be deleted)
    kind      TEXT NOT NULL CHECK (kind IN ('grant', 'adjust', 'reserve', 'commit', 'refund', 'daily', 'reset')),
    free      INTEGER NOT NULL DEFAULT 0,
    credits   INTEGER NOT NULL DEFAULT 0,
    day       TEXT,
    allowance INTEGER,
    actor     INTEGER,
    reason    TEXT NOT NULL DEFAULT '',
    at        REAL NOT NULL
);
INSERT INTO ledger_new (id, user_id, task_id, kind, free, credits, day, allowance, actor, reason, at)
    SELECT id, user_id, task_id, kind, free, credits, day, allowance, actor, reason, at FROM ledger;
DROP TABLE ledger;
ALTER TABLE ledger_new RENAME TO ledger;
CREATE UNIQUE INDEX ledger_task_effect ON ledger (task_id, kind) WHERE task_id IS NOT NULL;
CREATE INDEX ledger_user ON ledger (user_id, id);

-- When the user last had their data deleted with /forgetme (NULL: never). The row itself stays: balances
-- and the ledger refer to the user id.
ALTER TABLE users ADD COLUMN forgotten_at REAL;
