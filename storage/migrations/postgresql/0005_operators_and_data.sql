-- 0005 for PostgreSQL: as ../0005_operators_and_data.sql. The ledger's task_id loses its foreign key (a
-- finished task may be deleted while its ledger rows stay); PostgreSQL drops it in place, no rebuild.

ALTER TABLE ledger DROP CONSTRAINT ledger_task_id_fkey;
ALTER TABLE users ADD COLUMN forgotten_at DOUBLE PRECISION;
