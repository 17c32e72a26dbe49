"""Deleting data: one user's on request (/forgetme), and old finished tasks for everyone (purge).

What is personal here: Telegram file ids (they fetch the user's selfie and portraits), prompts and settings
(in `users.settings` and `tasks.params`), names, and the history of what the user made. What accounting
needs: the user id (balances and the ledger are keyed by it), the quota account, and the ledger's numbers.

So forgetting a user deletes their tasks, clears the user row down to a tombstone (id, role, ban, first and
last seen, `forgotten_at`), and empties the `reason` text of their ledger rows (an admin may have written
a name there); the rows themselves stay, so `quotas.check()` still adds up. Purging deletes finished tasks
older than a cutoff. Neither touches an unfinished task: its reservation is still held and a runner may be
working on it. A deleted task's ledger rows stay; the ledger check verifies them on their own (a reserve,
then exactly one commit or refund). (A group's daily cap counts today's tasks, so a user who forgets
today's group tasks frees their share of that cap for the rest of the day.)

Purge works in batches of short transactions, so a running bot is never kept waiting for the write lock
for long.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from .audit import write_audit
from .context import StoreContext
from .errors import HasActiveTasks, NotFound

_TERMINAL_SQL = "('done', 'failed', 'cancelled', 'expired')"
_UNFINISHED_SQL = "('queued', 'submitting', 'submitted', 'polling', 'delivering')"
PURGE_BATCH = 500


@dataclass(frozen=True)
class Forgotten:
    user_id: int
    tasks_deleted: int
    ledger_rows_anonymised: int


@dataclass(frozen=True)
class Purged:
    cutoff: float  # tasks that finished before this (epoch seconds) were deleted
    tasks_deleted: int
    by_state: Mapping[str, int] = field(default_factory=dict)
    unfinished_kept: int = 0  # unfinished tasks created before the cutoff, left alone


class PrivacyRepo:
    """`store.privacy`."""

    def __init__(self, ctx: StoreContext) -> None:
        self._ctx = ctx

    async def forget_user(self, user_id: int, *, actor: int | None = None, reason: str = "") -> Forgotten:
        """Delete the user's tasks, settings, images and names; keep the anonymised accounting. One
        transaction, so a task started at the same moment either blocks it (HasActiveTasks) or is deleted.
        `actor` is who asked (default: the user, through /forgetme; an operator for a request by mail)."""
        now = self._ctx.now()
        async with self._ctx.db.transaction() as tx:
            if await tx.value("SELECT 1 FROM users WHERE id = ?", (user_id,)) is None:
                raise NotFound(f"user {user_id}")
            active = await tx.value(
                f"SELECT COUNT(*) FROM tasks WHERE user_id = ? AND state IN {_UNFINISHED_SQL}", (user_id,)
            )
            if active:
                raise HasActiveTasks(user_id, int(active))
            tasks = await tx.execute("DELETE FROM tasks WHERE user_id = ?", (user_id,))
            await tx.execute(
                "UPDATE users SET username = NULL, first_name = '', language = NULL, settings = '{}', "
                "forgotten_at = ? WHERE id = ?",
                (now, user_id),
            )
            ledger = await tx.execute(
                "UPDATE ledger SET reason = '' WHERE user_id = ? AND reason != ''", (user_id,)
            )
            details = f"{tasks} tasks deleted, {ledger} ledger reasons cleared" + (
                f": {reason}" if reason else ""
            )
            await write_audit(
                tx, actor=user_id if actor is None else actor, action="forget", target=str(user_id),
                details=details, at=now,
            )  # fmt: skip
        return Forgotten(user_id, tasks, ledger)

    async def purge_finished(self, older_than: float, *, actor: int, reason: str = "") -> Purged:
        """Delete tasks that finished more than `older_than` seconds ago; audited with the counts."""
        if older_than <= 0:
            raise ValueError("older_than must be positive")
        now = self._ctx.now()
        cutoff = now - older_than
        states: Counter[str] = Counter()
        while True:
            async with self._ctx.db.transaction() as tx:
                rows = await tx.all(
                    "DELETE FROM tasks WHERE id IN (SELECT id FROM tasks WHERE finished_at < ? "
                    f"AND state IN {_TERMINAL_SQL} LIMIT ?) RETURNING state",
                    (cutoff, PURGE_BATCH),
                )
            states.update(row["state"] for row in rows)
            if len(rows) < PURGE_BATCH:
                break
        async with self._ctx.db.transaction() as tx:
            kept = await tx.value(
                f"SELECT COUNT(*) FROM tasks WHERE created_at < ? AND state IN {_UNFINISHED_SQL}", (cutoff,)
            )
            total = sum(states.values())
            details = f"{total} finished tasks older than {older_than / 86400:g} days deleted"
            await write_audit(
                tx, actor=actor, action="purge", target=None,
                details=details + (f": {reason}" if reason else ""), at=now,
            )  # fmt: skip
        return Purged(cutoff, total, dict(states), int(kept))
