"""The ledger audit: re-derive every stored balance and reservation from the ledger and list disagreements.

Runs in one read snapshot, so a check during live traffic sees a consistent state. Each query returns only
the offending rows, so a healthy database with 100k tasks costs a few index scans, not a Python loop.
The queries are written in the SQL that SQLite and PostgreSQL share (no column alias in WHERE, no sum of a
comparison, CASE branches of one type), so the same check runs on both backends.
"""

from __future__ import annotations

from .config_keys import DEFAULT_ALLOWANCE_KEY
from .db import Session

_CREDITS = """
SELECT * FROM (
    SELECT a.user_id, a.credits,
           COALESCE((SELECT SUM(l.credits) FROM ledger l WHERE l.user_id = a.user_id), 0) AS derived
    FROM quota_accounts a
) x WHERE x.credits != x.derived
"""

_FREE = """
SELECT * FROM (
    SELECT a.user_id, a.free_day, a.free_used,
           COALESCE((SELECT SUM(l.free) FROM ledger l WHERE l.user_id = a.user_id AND l.day = a.free_day), 0)
               AS derived
    FROM quota_accounts a
) x WHERE x.free_used != x.derived
"""

# Allowances are never negative (a CHECK), so -1 stands for NULL ("the default") on both sides.
_ALLOWANCE = """
SELECT * FROM (
    SELECT a.user_id, a.daily_allowance,
           (SELECT l.allowance FROM ledger l WHERE l.user_id = a.user_id AND l.kind = 'daily'
            ORDER BY l.id DESC LIMIT 1) AS derived
    FROM quota_accounts a
) x WHERE COALESCE(x.daily_allowance, -1) != COALESCE(x.derived, -1)
"""

_ORPHANS = """
SELECT l.user_id FROM ledger l
WHERE l.user_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM quota_accounts a WHERE a.user_id = l.user_id)
GROUP BY l.user_id
"""

# A task's reservation must match its state and its ledger rows: one 'reserve' of the right unit, then a
# 'commit' iff done (or ended after the service accepted it: the unit is spent), a 'refund' (the exact
# opposite deltas, same day) iff failed/cancelled/expired.
_TASKS = """
SELECT t.id, t.state, t.reservation, t.quota_unit,
       r.id AS r_id, c.id AS c_id, f.id AS f_id
FROM tasks t
LEFT JOIN ledger r ON r.task_id = t.id AND r.kind = 'reserve'
LEFT JOIN ledger c ON c.task_id = t.id AND c.kind = 'commit'
LEFT JOIN ledger f ON f.task_id = t.id AND f.kind = 'refund'
WHERE NOT (
    r.id IS NOT NULL AND r.user_id = t.user_id AND r.day = t.quota_day
    AND ((t.quota_unit = 'free' AND r.free = 1 AND r.credits = 0)
         OR (t.quota_unit = 'credits' AND r.free = 0 AND r.credits = -1))
    AND CASE t.reservation
        WHEN 'held' THEN t.state IN ('queued', 'submitting', 'submitted', 'polling', 'delivering')
                         AND c.id IS NULL AND f.id IS NULL
        WHEN 'committed' THEN (t.state = 'done' OR (t.state IN ('failed', 'cancelled', 'expired')
                                                     AND t.upstream_task_id IS NOT NULL)) AND f.id IS NULL
                         AND c.id IS NOT NULL AND c.user_id = t.user_id AND c.free = 0 AND c.credits = 0
        WHEN 'refunded' THEN t.state IN ('failed', 'cancelled', 'expired') AND c.id IS NULL
                         AND f.id IS NOT NULL AND f.user_id = t.user_id AND f.day = t.quota_day
                         AND f.free = -r.free AND f.credits = -r.credits
        ELSE 1 = 0 END
)
ORDER BY t.id
"""

_STRAY = """
SELECT l.id, l.task_id, l.kind FROM ledger l
WHERE (l.kind IN ('reserve', 'commit', 'refund')) != (l.task_id IS NOT NULL)
   OR (l.kind IN ('purchase', 'purchase_refund', 'referral')) != (l.ref IS NOT NULL)
"""

# A payment must match its ledger: one 'purchase' of exactly its credits for its user, and a
# 'purchase_refund' taking back `reversed` iff it was refunded (reversed + shortfall = the pack's credits).
_PAYMENTS = """
SELECT p.charge_id, p.state, p.credits, p.reversed, p.shortfall, b.id AS b_id, r.id AS r_id
FROM payments p
LEFT JOIN ledger b ON b.kind = 'purchase' AND b.ref = p.charge_id
LEFT JOIN ledger r ON r.kind = 'purchase_refund' AND r.ref = p.charge_id
WHERE NOT (
    b.id IS NOT NULL AND b.user_id = p.user_id AND b.credits = p.credits AND b.free = 0
    AND CASE p.state
        WHEN 'paid' THEN r.id IS NULL AND p.reversed = 0 AND p.shortfall = 0
        WHEN 'refunded' THEN r.id IS NOT NULL AND r.user_id = p.user_id AND r.credits = -p.reversed
                             AND r.free = 0 AND p.reversed + p.shortfall = p.credits
        ELSE 1 = 0 END
)
"""

_PURCHASE_ROWS = """
SELECT l.id, l.kind, l.ref FROM ledger l
WHERE l.kind IN ('purchase', 'purchase_refund')
  AND NOT EXISTS (SELECT 1 FROM payments p WHERE p.charge_id = l.ref AND p.user_id = l.user_id)
"""

# A referral pays its bonus to exactly its two users, once each; every 'referral' entry has its referral.
_REFERRALS = """
SELECT * FROM (
    SELECT f.invitee_id, f.inviter_id,
           (SELECT COUNT(*) FROM ledger l WHERE l.kind = 'referral' AND l.ref = 'referral:' || f.invitee_id
                AND l.user_id IN (f.invitee_id, f.inviter_id) AND l.credits = f.bonus AND l.free = 0) AS paid,
           (SELECT COUNT(*) FROM ledger l WHERE l.kind = 'referral' AND l.ref = 'referral:' || f.invitee_id)
               AS entries
    FROM referrals f
) x WHERE x.paid != 2 OR x.entries != 2
"""

_REFERRAL_ROWS = """
SELECT l.id, l.ref FROM ledger l
WHERE l.kind = 'referral'
  AND NOT EXISTS (SELECT 1 FROM referrals f WHERE l.ref = 'referral:' || f.invitee_id)
"""

# A task is deleted (purge, /forgetme) only once it is settled, and its ledger rows stay: on their own they
# must show one reserve of one unit, then exactly one commit (no deltas) or refund (the exact opposite),
# all for one user and one quota day. A reservation still held for a task that is gone is a lost unit.
_GONE = """
SELECT l.task_id FROM ledger l
WHERE l.task_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.id = l.task_id)
GROUP BY l.task_id
HAVING NOT (
    SUM(CASE WHEN l.kind = 'reserve' THEN 1 ELSE 0 END) = 1
    AND SUM(CASE WHEN l.kind IN ('commit', 'refund') THEN 1 ELSE 0 END) = 1
    AND COUNT(l.user_id) = COUNT(*) AND COUNT(DISTINCT l.user_id) = 1
    AND COUNT(l.day) = COUNT(*) AND COUNT(DISTINCT l.day) = 1
    AND SUM(CASE WHEN l.kind = 'reserve'
                      AND ((l.free = 1 AND l.credits = 0) OR (l.free = 0 AND l.credits = -1))
                 THEN 1 ELSE 0 END) = 1
    AND SUM(CASE WHEN l.kind = 'commit' AND (l.free != 0 OR l.credits != 0) THEN 1 ELSE 0 END) = 0
    AND (SUM(CASE WHEN l.kind = 'commit' THEN 1 ELSE 0 END) = 1 OR (SUM(l.free) = 0 AND SUM(l.credits) = 0))
)
ORDER BY l.task_id
"""


async def find_problems(s: Session) -> list[str]:
    problems: list[str] = []
    for row in await s.all(_CREDITS):
        problems.append(f"user {row['user_id']}: credits {row['credits']} but ledger says {row['derived']}")
    for row in await s.all(_FREE):
        problems.append(
            f"user {row['user_id']}: {row['free_used']} free used on {row['free_day']} "
            f"but ledger says {row['derived']}"
        )
    for row in await s.all(_ALLOWANCE):
        problems.append(
            f"user {row['user_id']}: daily allowance {row['daily_allowance']} "
            f"but ledger says {row['derived']}"
        )
    for row in await s.all(_ORPHANS):
        problems.append(f"user {row['user_id']}: ledger rows without a quota account")
    for row in await s.all(_TASKS):
        problems.append(
            f"task {row['id']}: state {row['state']}, reservation {row['reservation']} ({row['quota_unit']}) "
            f"does not match its ledger (reserve={row['r_id']}, commit={row['c_id']}, refund={row['f_id']})"
        )
    for row in await s.all(_STRAY):
        problems.append(f"ledger {row['id']}: {row['kind']} with task {row['task_id']} is misplaced")
    problems.extend(await _payment_problems(s))
    for row in await s.all(_GONE):
        problems.append(f"task {row['task_id']}: deleted, but its ledger rows do not show it settled")
    latest_default = await s.value(
        "SELECT COALESCE(allowance, -1) FROM ledger WHERE user_id IS NULL AND kind = 'daily' "
        "ORDER BY id DESC LIMIT 1"
    )
    stored_default = await s.value(
        "SELECT CAST(value AS INTEGER) FROM config WHERE key = ?", (DEFAULT_ALLOWANCE_KEY,)
    )
    if latest_default != stored_default:
        problems.append(f"default daily allowance {stored_default} but ledger says {latest_default}")
    return problems


async def _payment_problems(s: Session) -> list[str]:
    """Purchases, their refunds and referral bonuses against the payments and referrals tables."""
    problems: list[str] = []
    for row in await s.all(_PAYMENTS):
        problems.append(
            f"payment {row['charge_id']}: {row['state']} ({row['credits']} credits, "
            f"reversed {row['reversed']}, shortfall {row['shortfall']}) does not match its ledger "
            f"(purchase={row['b_id']}, refund={row['r_id']})"
        )
    for row in await s.all(_PURCHASE_ROWS):
        problems.append(f"ledger {row['id']}: {row['kind']} of payment {row['ref']} that does not exist")
    for row in await s.all(_REFERRALS):
        problems.append(
            f"referral of {row['invitee_id']} by {row['inviter_id']}: {row['entries']} ledger entries, "
            f"{row['paid']} of them right (expected 2)"
        )
    for row in await s.all(_REFERRAL_ROWS):
        problems.append(f"ledger {row['id']}: {row['ref']} without a referral")
    return problems
