-- 0008: the upstream account's limits, shared by every process of the bot (storage/pg_limits.py). Only the
-- PostgreSQL backend uses these tables (its processes may be on several hosts); on SQLite they stay empty
-- and each process keeps its limits in memory, as before.
-- (PostgreSQL spelling of migrations/0008_upstream_limits.sql.)
-- upstream_slots: one row per place of MAX_CONCURRENT_TASKS, leased by a process while a task holds it.
-- upstream_budget: a token bucket (UPSTREAM_QPS) every process draws each HTTP call from.

CREATE TABLE upstream_slots (
    slot   INTEGER PRIMARY KEY,
    holder TEXT,                                    -- WORKER_ID of the process holding it, NULL: free
    until  DOUBLE PRECISION NOT NULL DEFAULT 0      -- the lease's end (Unix seconds); renewed while held
);
CREATE TABLE upstream_budget (
    name   TEXT PRIMARY KEY,                        -- 'qps'
    tokens DOUBLE PRECISION NOT NULL,
    at     DOUBLE PRECISION NOT NULL                -- when `tokens` was last refilled (Unix seconds)
);
