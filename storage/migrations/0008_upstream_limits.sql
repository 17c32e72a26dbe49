-- 0008: the upstream account's limits, shared by every process of the bot (storage/pg_limits.py). Only the
-- PostgreSQL backend uses these tables (its processes may be on several hosts); on SQLite they stay empty
-- and each process keeps its limits in memory, as before.
-- upstream_slots: one row per place of MAX_CONCURRENT_TASKS, leased by a process while a task holds it.
-- upstream_budget: a token bucket (UPSTREAM_QPS) every process draws each HTTP call from.

CREATE TABLE upstream_slots (
    slot   INTEGER PRIMARY KEY,
    holder TEXT,                                    -- WORKER_ID of the process holding it, NULL: free
    until  REAL NOT NULL DEFAULT 0                  -- the lease's end (Unix seconds); renewed while held
);
CREATE TABLE upstream_budget (
    name   TEXT PRIMARY KEY,                        -- 'qps'
    tokens REAL NOT NULL,
    at     REAL NOT NULL                            -- when `tokens` was last refilled (Unix seconds)
);
