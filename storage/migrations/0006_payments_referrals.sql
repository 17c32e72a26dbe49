-- 0006: Telegram Stars purchases and their refunds, invite codes and referrals, and the ledger kinds for them.
--
-- The ledger's kind CHECK cannot be altered in SQLite, so the table is rebuilt (create, copy, drop, rename,
-- re-index) with three more kinds and a `ref` column: the outside key of an entry that has no task
-- (a purchase's telegram_payment_charge_id, 'referral:<invitee id>'), unique per kind and user so a
-- redelivered payment or a repeated /start can never write its entry twice.

CREATE TABLE ledger_new (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id   INTEGER REFERENCES users (id),
    task_id   INTEGER,                               -- a plain number since 0005: tasks may be purged
    kind      TEXT NOT NULL CHECK (kind IN ('grant', 'adjust', 'reserve', 'commit', 'refund', 'daily', 'reset',
                                            'purchase', 'purchase_refund', 'referral')),
    free      INTEGER NOT NULL DEFAULT 0,
    credits   INTEGER NOT NULL DEFAULT 0,
    day       TEXT,
    allowance INTEGER,
    actor     INTEGER,
    reason    TEXT NOT NULL DEFAULT '',
    at        REAL NOT NULL,
    ref       TEXT
);
INSERT INTO ledger_new (id, user_id, task_id, kind, free, credits, day, allowance, actor, reason, at)
    SELECT id, user_id, task_id, kind, free, credits, day, allowance, actor, reason, at FROM ledger;
DROP TABLE ledger;
ALTER TABLE ledger_new RENAME TO ledger;
CREATE UNIQUE INDEX ledger_task_effect ON ledger (task_id, kind) WHERE task_id IS NOT NULL;
CREATE INDEX ledger_user ON ledger (user_id, id);
CREATE UNIQUE INDEX ledger_ref_effect ON ledger (kind, ref, user_id) WHERE ref IS NOT NULL;

-- One row per successful Stars payment, keyed by Telegram's charge id: the exactly-once key for crediting.
CREATE TABLE payments (
    charge_id          TEXT PRIMARY KEY,             -- telegram_payment_charge_id
    user_id            INTEGER NOT NULL REFERENCES users (id),
    provider_charge_id TEXT NOT NULL DEFAULT '',
    credits            INTEGER NOT NULL CHECK (credits > 0),
    stars              INTEGER NOT NULL CHECK (stars > 0),
    currency           TEXT NOT NULL,
    payload            TEXT NOT NULL,
    state              TEXT NOT NULL DEFAULT 'paid' CHECK (state IN ('paid', 'refunded')),
    reversed           INTEGER NOT NULL DEFAULT 0 CHECK (reversed >= 0),   -- credits taken back on refund
    shortfall          INTEGER NOT NULL DEFAULT 0 CHECK (shortfall >= 0),  -- credits already spent by then
    paid_at            REAL NOT NULL,
    refunded_at        REAL,
    refunded_by        INTEGER
);
CREATE INDEX payments_user ON payments (user_id, paid_at);

-- Each user's invite code (the `ref_<code>` of their /start link); random, so ids are not guessable.
CREATE TABLE referral_codes (
    user_id    INTEGER PRIMARY KEY REFERENCES users (id),
    code       TEXT NOT NULL UNIQUE,
    created_at REAL NOT NULL
);

-- Who brought whom: one row per invited user at most, never oneself.
CREATE TABLE referrals (
    invitee_id INTEGER PRIMARY KEY REFERENCES users (id),
    inviter_id INTEGER NOT NULL REFERENCES users (id),
    bonus      INTEGER NOT NULL CHECK (bonus > 0),
    at         REAL NOT NULL,
    CHECK (invitee_id != inviter_id)
);
CREATE INDEX referrals_inviter ON referrals (inviter_id);
