-- 0010: who claimed an update, so that a handler cut off by a dead process can be replayed. The claim
-- ('started') now records the claiming process's WORKER_ID and, for the replay-safe kinds only
-- (bot/ops/dedupe.py: their every effect is idempotent), keeps the payload until 'handled'. A 'started'
-- row with a payload whose claimer is provably dead (its WORKER_ID restarted, or is not among the running
-- workers) goes back to 'received' and is handled again; every other 'started' row stays at most once.
-- Rows claimed before this migration have no claimer and no payload: never replayed.
-- (PostgreSQL spelling of migrations/0010_update_claimer.sql.)

ALTER TABLE processed_updates ADD COLUMN claimed_by TEXT;       -- the claimer's WORKER_ID
CREATE INDEX processed_updates_cut_off ON processed_updates (started_at)
    WHERE state = 'started' AND payload IS NOT NULL;
