-- 0001: users, chats, quota accounts and their ledger, tasks, the admin audit log.
-- Times are epoch seconds (REAL) from the store's injected clock. Quota days are ISO dates in the quota
-- time zone ('2026-11-26').

CREATE TABLE users (
    id          INTEGER PRIMARY KEY,                 -- Telegram user id
    username    TEXT,
    first_name  TEXT NOT NULL DEFAULT '',
    language    TEXT,
    role        TEXT NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin', 'owner')),
    banned      INTEGER NOT NULL DEFAULT 0 CHECK (banned IN (0, 1)),
    ban_reason  TEXT,
    settings    TEXT NOT NULL DEFAULT '{}',          -- JSON of UserSettings, incl. pending image file ids
    first_seen  REAL NOT NULL,
    last_seen   REAL NOT NULL
);

CREATE TABLE chats (
    id              INTEGER PRIMARY KEY,             -- Telegram chat id
    type            TEXT NOT NULL,                   -- private | group | supergroup | channel
    title           TEXT NOT NULL DEFAULT '',
    enabled         INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    daily_cap       INTEGER CHECK (daily_cap IS NULL OR daily_cap >= 0),
    results_private INTEGER NOT NULL DEFAULT 0 CHECK (results_private IN (0, 1)),
    active          INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    created_at      REAL NOT NULL,
    updated_at      REAL NOT NULL
);

-- Store-wide settings changed at run time, e.g. the default daily allowance set by an admin.
CREATE TABLE config (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- The stored balances. Every change to them has a ledger row; quotas.check() re-derives them from it.
CREATE TABLE quota_accounts (
    user_id         INTEGER PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    daily_allowance INTEGER CHECK (daily_allowance IS NULL OR daily_allowance >= 0),  -- NULL: the default
    credits         INTEGER NOT NULL DEFAULT 0 CHECK (credits >= 0),                  -- never expire
    free_day        TEXT NOT NULL DEFAULT '',        -- the quota day free_used counts
    free_used       INTEGER NOT NULL DEFAULT 0 CHECK (free_used >= 0)
);

CREATE TABLE tasks (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id            INTEGER NOT NULL REFERENCES users (id),
    chat_id            INTEGER NOT NULL,
    charge_chat_id     INTEGER,                      -- the group whose daily cap this task counts against
    origin_key         TEXT NOT NULL UNIQUE,         -- dedupes a redelivered update / double tap
    request_message_id INTEGER,
    status_message_id  INTEGER,
    face_file_id       TEXT NOT NULL,
    style_file_id      TEXT,
    params             TEXT NOT NULL DEFAULT '{}',
    state              TEXT NOT NULL CHECK (state IN ('queued', 'submitting', 'submitted', 'polling',
                                         'delivering', 'done', 'failed', 'cancelled', 'expired')),
    upstream_task_id   TEXT,
    error_code         TEXT,
    attempts           INTEGER NOT NULL DEFAULT 0,
    last_status        TEXT,
    result_file_id     TEXT,
    next_poll_at       REAL,
    quota_day          TEXT NOT NULL,                -- the quota day the reserved unit belongs to
    quota_unit         TEXT NOT NULL CHECK (quota_unit IN ('free', 'credits')),
    reservation        TEXT NOT NULL DEFAULT 'held' CHECK (reservation IN ('held', 'committed', 'refunded')),
    created_at         REAL NOT NULL,
    updated_at         REAL NOT NULL,
    finished_at        REAL
);

-- free / credits are deltas: free is the change to the day's used free units, credits the change to the
-- credit balance. allowance is the new daily allowance of a 'daily' row (NULL: back to the default).
CREATE TABLE ledger (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id   INTEGER REFERENCES users (id),         -- NULL: the default allowance for everyone
    task_id   INTEGER REFERENCES tasks (id),
    kind      TEXT NOT NULL CHECK (kind IN ('grant', 'adjust', 'reserve', 'commit', 'refund', 'daily', 'reset')),
    free      INTEGER NOT NULL DEFAULT 0,
    credits   INTEGER NOT NULL DEFAULT 0,
    day       TEXT,
    allowance INTEGER,
    actor     INTEGER,
    reason    TEXT NOT NULL DEFAULT '',
    at        REAL NOT NULL
);

-- The exactly-once guarantee in the schema itself: one reserve, at most one commit and one refund per task.
CREATE UNIQUE INDEX ledger_task_effect ON ledger (task_id, kind) WHERE task_id IS NOT NULL;

CREATE TABLE audit_log (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    actor   INTEGER NOT NULL,
    action  TEXT NOT NULL,
    target  TEXT,
    details TEXT NOT NULL DEFAULT '',
    at      REAL NOT NULL
);
