"""The durable inbox of Telegram updates: stored before Telegram is told they arrived, handled once.

Why in the database: Telegram forgets an update once the next getUpdates confirms it (or the webhook
answered 200), so an update only queued in memory is lost with a killed process. Each row goes
received -> started -> handled:

- `receive` stores the raw update before it is confirmed (one transaction per getUpdates batch). A
  second delivery of the same update_id changes nothing (`ON CONFLICT DO NOTHING`).
- `claim` is the one door to the handlers: received -> started (or a fresh row straight to started, for
  an update that came in no other way), in one statement, so of two processes holding the same update
  exactly one gets True. It records the claimer (`claimed_by`, its WORKER_ID). The payload is cleared
  there, unless the caller says the update is replay-safe (bot/ops/dedupe.py): then it stays until the
  handled mark, so that a handler cut off by a dead process can run again. The user's words are kept no
  longer than needed.
- `handled` marks the end (and clears a kept payload), usually inside the next `claim`'s transaction; a
  row left `started` was cut off mid-handler.
- `unclaimed` lists what a dead process received and nobody claimed, for a replay through `claim`.
- `cut_off` lists `started` rows that kept their payload (replay-safe) and whose handler has not ended;
  the caller decides whose claimer is dead and `release`s those (started -> received, one statement, only
  while the row is still that claim), after which they are replayed as unclaimed rows are.

The statements are plain SQL that SQLite and PostgreSQL both run as they are (`INSERT ... ON CONFLICT`),
so another backend can take this module over unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from .context import StoreContext
from .db import Session

#: Telegram gives up re-delivering an update after 24 hours; a row older than that can never matter again.
KEEP_SECONDS = 24 * 3600.0
#: Statement size guard: getUpdates returns at most 100 updates anyway.
BATCH: Final = 100


@dataclass(frozen=True)
class Received:
    """One stored update still waiting for a handler: its id and the JSON Telegram sent."""

    update_id: int
    payload: str


@dataclass(frozen=True)
class CutOff:
    """A replay-safe update whose handler started and has not ended: one claim of it, by `claimed_by`,
    and the update's JSON (to replay it once the claim is released)."""

    update_id: int
    claimed_by: str
    started_at: float
    payload: str


class UpdatesRepo:
    def __init__(self, ctx: StoreContext) -> None:
        self._ctx = ctx

    async def receive(self, updates: Sequence[Received]) -> list[int]:
        """Store `updates` durably in one transaction; returns the ids still waiting for a handler (new
        ones, and earlier deliveries nobody claimed yet), in update_id order. Only after this returns may
        the updates be confirmed to Telegram."""
        if not updates:
            return []
        now = self._ctx.now()
        # One update twice in a statement: PostgreSQL refuses to upsert a row twice. The first one counts.
        updates = list({u.update_id: u for u in reversed(updates)}.values())
        chunks = [_receiving(updates[start : start + BATCH], now) for start in range(0, len(updates), BATCH)]
        if len(chunks) == 1:  # what a long poll brings but in a burst: one statement, one commit
            rows = await self._ctx.db.write_one(*chunks[0])
        else:
            async with self._ctx.db.transaction() as tx:
                rows = [row for sql, params in chunks for row in await tx.all(sql, params)]
        return sorted(int(row[0]) for row in rows)

    async def claim(
        self, update_id: int, *, handled: Sequence[int] = (), by: str | None = None, keep: bool = False
    ) -> bool:
        """Take `update_id` for handling: True once (handle it), False for every later try (drop it).
        `handled`: earlier claims whose handlers are done, marked in the same transaction (one commit per
        update instead of two). `by`: the claiming process's WORKER_ID. `keep`: the update is replay-safe,
        so its payload stays until it is handled (a dead claimer's row can then be replayed).

        Not fsynced, on purpose: a kill loses no commit either way, and after a power loss the claim is
        gone only together with everything the handler wrote after it (the log is flushed in order, so
        its first durable commit, a reservation, carries the claim to disk). The update is then handled
        again as if for the first time; at worst a reply that was sent goes out twice. It saves the
        fsync the inbox's `receive` added, and shortens the handler's run, the at-most-once window."""
        now = self._ctx.now()
        payload = "processed_updates.payload" if keep else "NULL"
        take = (
            "INSERT INTO processed_updates (update_id, at, state, started_at, claimed_by) "
            "VALUES (?, ?, 'started', ?, ?) ON CONFLICT (update_id) DO UPDATE SET state = 'started', "
            f"started_at = excluded.started_at, claimed_by = excluded.claimed_by, payload = {payload} "
            "WHERE processed_updates.state = 'received' RETURNING 1"
        )
        if not handled:
            return len(await self._ctx.db.write_one(take, (update_id, now, now, by), durable=False)) == 1
        async with self._ctx.db.transaction(durable=False) as tx:
            taken = len(await tx.all(take, (update_id, now, now, by)))
            await _mark_handled(tx, handled)
        return taken == 1

    async def handled(self, update_ids: Sequence[int]) -> int:
        """Mark claimed updates as handled to the end. Not fsynced: losing the mark loses only a report."""
        if not update_ids:
            return 0
        return len(await self._ctx.db.write_one(*_marking_handled(update_ids), durable=False))

    async def unclaimed(self, *, older_than: float | None, limit: int = BATCH) -> list[Received]:
        """Updates received at least `older_than` seconds ago that no handler claimed, oldest first;
        `older_than=None`: every one, whatever its time. Why that exists: `at` is the receiver's clock,
        and a receiver whose clock was ahead of ours wrote times that are still in our future."""
        since = "" if older_than is None else "AND at <= ? "
        params: list[object] = [] if older_than is None else [self._ctx.now() - older_than]
        async with self._ctx.db.read() as r:
            rows = await r.all(
                f"SELECT update_id, payload FROM processed_updates WHERE state = 'received' {since}"
                "AND payload IS NOT NULL ORDER BY update_id LIMIT ?",
                [*params, limit],
            )
        return [Received(int(row[0]), str(row[1])) for row in rows]

    async def cut_off(
        self, *, older_than: float, mine: str | None = None, limit: int = BATCH
    ) -> list[CutOff]:
        """Replay-safe claims not handled yet: those claimed at least `older_than` seconds ago, and those of
        `mine` (a WORKER_ID whose earlier process is known to be dead) of any age; oldest update first.
        Only the claim is listed: whether its claimer is dead is the caller's question."""
        async with self._ctx.db.read() as r:
            rows = await r.all(
                "SELECT update_id, claimed_by, started_at, payload FROM processed_updates "
                "WHERE state = 'started' AND payload IS NOT NULL AND claimed_by IS NOT NULL "
                "AND (started_at <= ? OR claimed_by = ?) ORDER BY update_id LIMIT ?",
                (self._ctx.now() - older_than, mine, limit),
            )
        return [CutOff(int(row[0]), str(row[1]), float(row[2]), str(row[3])) for row in rows]

    async def release(self, claim: CutOff) -> bool:
        """Give a dead claimer's update back to the inbox (started -> received, payload kept): True once,
        and only while the row is still that claim (a restarted claimer may have claimed it again)."""
        async with self._ctx.db.transaction() as tx:
            released = await tx.execute(
                "UPDATE processed_updates SET state = 'received', claimed_by = NULL, started_at = NULL "
                "WHERE update_id = ? AND state = 'started' AND claimed_by = ? AND started_at = ? "
                "AND payload IS NOT NULL",
                (claim.update_id, claim.claimed_by, claim.started_at),
            )
        return released == 1

    async def states(self) -> dict[str, int]:
        """How many rows are in each state (reports, `/metrics`, tests)."""
        async with self._ctx.db.read() as r:
            rows = await r.all("SELECT state, COUNT(*) FROM processed_updates GROUP BY state")
        return {str(row[0]): int(row[1]) for row in rows}

    async def prune(self, keep_seconds: float = KEEP_SECONDS) -> int:
        """Forget updates received more than `keep_seconds` ago; returns how many rows went."""
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


def _receiving(chunk: Sequence[Received], now: float) -> tuple[str, list[object]]:
    """One INSERT of `chunk` that returns the ids still waiting for a handler: the new rows, and the rows
    already there and still `received` (their no-op update makes RETURNING list them); a row another
    process has claimed or handled matches the WHERE of neither, so it is not listed."""
    rows = ", ".join(["(?, ?, 'received', ?)"] * len(chunk))
    params: list[object] = []
    for update in chunk:
        params += [update.update_id, now, update.payload]
    sql = (
        f"INSERT INTO processed_updates (update_id, at, state, payload) VALUES {rows} "
        "ON CONFLICT (update_id) DO UPDATE SET state = 'received' WHERE processed_updates.state = 'received' "
        "RETURNING update_id"
    )
    return sql, params


def _marking_handled(update_ids: Sequence[int]) -> tuple[str, list[object]]:
    marks = ", ".join(["?"] * len(update_ids))
    sql = (
        f"UPDATE processed_updates SET state = 'handled', payload = NULL WHERE state = 'started' "
        f"AND update_id IN ({marks}) RETURNING 1"
    )
    return sql, list(update_ids)


async def _mark_handled(tx: Session, update_ids: Sequence[int]) -> int:
    return len(await tx.all(*_marking_handled(update_ids)))
