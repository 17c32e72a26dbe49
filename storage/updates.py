"""Telegram updates already taken, so that each is handled once across processes.

Why in the database: with several processes behind one webhook (or a poller restarted after a crash) the
same update_id can arrive twice, at two processes at once. The first INSERT wins; the loser sees that no
row was inserted. The statements are plain SQL that SQLite and PostgreSQL both run as they are
(`INSERT ... ON CONFLICT DO NOTHING`), so another backend can take this module over unchanged.
"""

from __future__ import annotations

from .context import StoreContext

#: Telegram gives up re-delivering an update after 24 hours; a row older than that can never matter again.
KEEP_SECONDS = 24 * 3600.0


class UpdatesRepo:
    def __init__(self, ctx: StoreContext) -> None:
        self._ctx = ctx

    async def first_seen(self, update_id: int) -> bool:
        """Record `update_id`; True the first time (handle it), False for every later delivery (drop it)."""
        async with self._ctx.db.transaction() as tx:
            inserted = await tx.execute(
                "INSERT INTO processed_updates (update_id, at) VALUES (?, ?) ON CONFLICT DO NOTHING",
                (update_id, self._ctx.now()),
            )
        return inserted == 1

    async def prune(self, keep_seconds: float = KEEP_SECONDS) -> int:
        """Forget updates taken more than `keep_seconds` ago; returns how many rows went."""
        if keep_seconds < 0:
            raise ValueError("keep_seconds cannot be negative")
        async with self._ctx.db.transaction() as tx:
            return await tx.execute(
                "DELETE FROM processed_updates WHERE at < ?", (self._ctx.now() - keep_seconds,)
            )

    async def count(self) -> int:
        """How many updates are remembered (tests, `/metrics`)."""
        async with self._ctx.db.read() as r:
            return int(await r.value("SELECT COUNT(*) FROM processed_updates") or 0)
