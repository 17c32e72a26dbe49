"""One process's side of the durable inbox (storage/updates.py): store, feed, claim, replay.

Why: Telegram forgets an update once it is confirmed (the next getUpdates, or the webhook's 200). PTB's
Updater confirms what it has only queued in memory, and a webhook that answers before storing does the
same, so a process killed then loses the update: no task, no reply, nothing reserved. Here an update is
first stored (`receive`, one transaction per batch, fsynced), and only then confirmed and fed to the
Application's queue. The update-once gate (dedupe.py) claims each before any handler runs; the
Application's update processor (`InboxProcessor`) notes when its handlers are done; the handled mark is
written with the next claim (or within REPLAY_EVERY), not in a commit of its own, except for a
replay-safe update's, written at once (see `Inbox.finished`).

A row nobody claimed (its receiver died with it queued) is replayed through the same claim: on start-up
every such row, then every `REPLAY_EVERY` seconds those older than `STALE_SECONDS` (a live process claims
what it fed long before that; if it has not, the claim still lets only one process handle it). An update
whose handler had started when its process died is replayed only if it is replay-safe (the gate decides
at the claim: bot/ops/dedupe.py) and its claimer is provably dead: this process's own WORKER_ID at
start-up, when it holds that id's lock (one live process per id), or another id whose lock no live
process holds (`Claimers.running`), once the claim is `STALE_SECONDS` old. Every other `started` row
stays as it is: at most once, as commands that cost must never run twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any, Final

from telegram import Bot, Update
from telegram.ext import SimpleUpdateProcessor

from bot.ops import metrics
from storage import Received, Store

log = logging.getLogger(__name__)

#: A received row this old that no process claimed is taken to be a dead process's.
STALE_SECONDS: Final = 10.0
#: How often a process looks for such rows.
REPLAY_EVERY: Final = 5.0
#: bot_data key of the process's Inbox (the webhook receiver stores through it).
INBOX_KEY: Final = "inbox"
#: As PTB's default for concurrent_updates=True.
MAX_CONCURRENT_UPDATES: Final = 256


@dataclass(frozen=True)
class Claimers:
    """Who claims updates here, and which claimers are alive: what replaying a cut-off handler asks."""

    me: str  # this process's WORKER_ID, recorded with each claim
    exclusive: Callable[[], bool]  # this process holds `me`'s lock: no other live process has that id
    running: Callable[[Collection[str]], Awaitable[set[str]]]  # those of the ids a live process holds


class Inbox:
    """Stores updates before they are confirmed, feeds them to the Application, replays what the dead
    left. Built before the Application (its processor needs it), `attach`ed to it once built, `open`ed
    in post_init and `close`d in post_stop. Without `claimers`, claims name nobody and a handler that
    was cut off is never replayed."""

    def __init__(self, claimers: Claimers | None = None) -> None:
        self._claimers = claimers
        self._bot: Bot | None = None
        self._queue: asyncio.Queue[object] | None = None
        self._store: Store | None = None
        self._fed: set[int] = set()  # in this process's queue, not yet claimed
        self._claimed: set[int] = set()  # claimed here, handlers not done yet
        self._kept: set[int] = set()  # of those, the replay-safe ones (their payload kept for a replay)
        self._done: list[int] = []  # handlers done, mark not yet written (goes with the next claim)
        self._replaying: asyncio.Task[None] | None = None
        self._own_released = False  # an earlier process's claims under this WORKER_ID were looked at

    def attach(self, bot: Bot, queue: asyncio.Queue[object]) -> None:
        """The Application's bot (replayed updates are bound to it) and its update queue."""
        self._bot, self._queue = bot, queue

    @property
    def store(self) -> Store:
        if self._store is None:
            raise RuntimeError("the inbox is not open (post_init has not run)")
        return self._store

    async def open(self, store: Store) -> None:
        """Start replaying: every unclaimed row now, then the stale ones periodically. "Every" whatever its
        stored time: that is its receiver's clock, which may have been ahead of this one (stepped, or
        another host's), and a row stamped in our future would otherwise wait until our clock passed it."""
        self._store = store
        try:
            await self.replay(older_than=None)
        except Exception:  # the loop below tries again
            log.warning("replaying unclaimed updates at start-up failed", exc_info=True)
        self._replaying = asyncio.create_task(self._replay_loop(), name="inbox-replay")

    async def close(self) -> None:
        """Stop replaying and write the last handled marks (after the Application stopped)."""
        if self._replaying is not None:
            self._replaying.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._replaying
            self._replaying = None
        if self._done:
            await self._mark_handled()

    # -- in ----------------------------------------------------------------------------------------------

    async def receive(self, batch: Sequence[tuple[Update, str]]) -> None:
        """Store a getUpdates batch (each update parsed, and its JSON as Telegram sent it), then queue what
        still waits for a handler. Raises when the store fails: the caller must then not confirm the batch
        (Telegram sends it again)."""
        waiting = set(await self.store.updates.receive([Received(u.update_id, body) for u, body in batch]))
        for update, _ in batch:
            if update.update_id in waiting:
                await self.feed(update)

    async def receive_raw(self, update: Update, body: str) -> bool:
        """Store one webhook delivery (its body as Telegram sent it), then queue it; False: some process
        already took it (a duplicate: answer 200, handle nothing)."""
        if await self.store.updates.receive([Received(update.update_id, body)]):
            return await self.feed(update)
        _dropped(update.update_id)
        return False

    async def feed(self, update: Update) -> bool:
        """Queue a stored update for the Application, unless this process has it queued or running
        (False: a duplicate, dropped)."""
        if update.update_id in self._fed or update.update_id in self._claimed:
            _dropped(update.update_id)
            return False
        if self._queue is None:
            raise RuntimeError("the inbox is not attached to an Application")
        self._fed.add(update.update_id)
        await self._queue.put(update)
        return True

    # -- the gate and the end ----------------------------------------------------------------------------

    async def claim(self, update_id: int, *, replayable: bool = False) -> bool:
        """The update-once gate's question: may this process handle `update_id`? True exactly once.
        `replayable`: handling it again is harmless (the gate's rule), so it is kept for a replay should
        this process die mid-handler. The handled marks waiting since the last claim ride along in its
        transaction."""
        self._fed.discard(update_id)
        done, self._done = self._done, []
        by = self._claimers.me if self._claimers is not None else None
        try:
            taken = await self.store.updates.claim(
                update_id, handled=done, by=by, keep=replayable and by is not None
            )
        except BaseException:
            self._done = done + self._done
            raise
        if taken:
            self._claimed.add(update_id)
            if replayable and by is not None:
                self._kept.add(update_id)
        return taken

    async def finished(self, update: object) -> None:
        """Its handlers are done. Most marks ride with the next claim, or go within REPLAY_EVERY: for an
        update that is never replayed only a report reads them. A replay-safe update's mark is written at
        once (one unsynced commit): until then a kill would replay it, and a replayed `/anime` that had
        been refused (no units left, too many tasks) could become a task after all, later, when the user
        had been told no."""
        if not isinstance(update, Update) or update.update_id not in self._claimed:
            return
        self._claimed.discard(update.update_id)
        self._done.append(update.update_id)
        if update.update_id in self._kept:
            self._kept.discard(update.update_id)
            await self._mark_handled()

    async def _mark_handled(self) -> None:
        done, self._done = self._done, []
        try:
            await self.store.updates.handled(done)
        except Exception:  # tried again later: until then a replay-safe row keeps its payload
            self._done = done + self._done
            log.warning("marking %d update(s) handled failed", len(done), exc_info=True)

    # -- replay ------------------------------------------------------------------------------------------

    async def replay(self, *, older_than: float | None = STALE_SECONDS) -> int:
        """Queue the rows received `older_than` seconds ago (None: whenever) that nobody claimed, and the
        replay-safe ones whose claimer died mid-handler; returns how many."""
        count = 0
        rows = await self._release_cut_off()
        rows += await self.store.updates.unclaimed(older_than=older_than)
        for row in rows:
            if row.update_id in self._fed or row.update_id in self._claimed:
                continue
            try:
                update = Update.de_json(json.loads(row.payload), self._bot)
            except (ValueError, TypeError, KeyError, AttributeError):
                log.warning("stored update %d is not an update; claimed and dropped", row.update_id)
                await self.claim(row.update_id)
                continue
            await self.feed(update)
            count += 1
        if count:
            metrics.updates_replayed(count)
            log.warning("replaying %d update(s) a stopped process had received but not handled", count)
        return count

    async def _release_cut_off(self) -> list[Received]:
        """Give back to the inbox the replay-safe updates whose claimer is dead; the released rows. This
        process's own id's claims count until one pass went through (at start-up, normally): holding the
        id's lock, those it did not make itself are an earlier process's, dead."""
        if self._claimers is None:
            return []
        me = self._claimers.me
        mine = me if not self._own_released and self._claimers.exclusive() else None
        here = self._fed | self._claimed | set(self._done)
        try:
            claims = await self.store.updates.cut_off(older_than=STALE_SECONDS, mine=mine)
            claims = [c for c in claims if c.update_id not in here]
            others = {c.claimed_by for c in claims if c.claimed_by != me}
            alive = await self._claimers.running(others) if others else set()
            dead = [c for c in claims if c.claimed_by == mine or c.claimed_by not in {me, *alive}]
            released = [Received(c.update_id, c.payload) for c in dead if await self.store.updates.release(c)]
        except Exception:  # the unclaimed rows are still replayed; this is tried again next time
            log.warning("looking for handlers cut off by a dead process failed", exc_info=True)
            return []
        self._own_released = True
        if released:
            log.warning("replaying %d update(s) whose handler a dead process had started", len(released))
        return released

    async def _replay_loop(self) -> None:
        while True:
            await asyncio.sleep(REPLAY_EVERY)
            if self._done:
                await self._mark_handled()
            try:
                await self.replay()
            except Exception:
                log.warning("replaying unclaimed updates failed; trying again later", exc_info=True)


def _dropped(update_id: int) -> None:
    metrics.duplicate_update()
    log.info("update %d was already taken; dropped", update_id)


class InboxProcessor(SimpleUpdateProcessor):
    """PTB's default processor (concurrent, unbounded order) that tells the inbox when an update's
    handlers are done: the one point that sees the end of every update, whichever handler stopped it."""

    def __init__(self, inbox: Inbox, max_concurrent_updates: int = MAX_CONCURRENT_UPDATES) -> None:
        super().__init__(max_concurrent_updates)
        self._inbox = inbox

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        await coroutine
        await self._inbox.finished(update)
