"""Several polling processes on one PostgreSQL database: exactly one polls, elected by an advisory lock.

Telegram lets one getUpdates run per bot token (a second one ends the first with 409 Conflict), so of the
`portrait-bot run` processes sharing a database one holds the poller lock (storage/pg_leader.py, named by
the bot's id: the token's numeric prefix, never the token) and polls; the others run jobs only and try the
lock again every `RETRY_SECONDS`. When the poller dies, PostgreSQL drops its lock with its session and the
next try of another process takes over (within RETRY_SECONDS). A poller whose lock connection ends, or
stops answering within the lock's timeout (checked every `CHECK_SECONDS`), stops polling at once: another
process may already hold the lock. Updates it fetched but did not confirm are fetched again by the next
poller; the inbox (inbox.py) knows those it had stored, and the gate (dedupe.py) lets each be handled once.

On SQLite there is no election: the one polling process polls, as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from bot.ops import metrics
from storage.pg_leader import PgLeaderLock

log = logging.getLogger(__name__)

RETRY_SECONDS = 2.0
CHECK_SECONDS = 2.0


def poller_lock_name(token: str) -> str:
    """The lock's name for a bot: its numeric id (the part of the token before ':')."""
    return f"poller:{token.split(':', 1)[0]}"


class PollerElection:
    """Polls while it holds the lock: `await election.start()` (one try at once), `await election.stop()`."""

    def __init__(
        self,
        lock: PgLeaderLock,
        start_polling: Callable[[], Awaitable[None]],
        stop_polling: Callable[[], Awaitable[None]],
        *,
        retry: float = RETRY_SECONDS,
        check: float = CHECK_SECONDS,
    ) -> None:
        self.lock = lock
        self._start_polling = start_polling
        self._stop_polling = stop_polling
        self.retry = retry
        self.check = check
        self.leading = False
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Try once now (a lone process polls before it is ready), then keep trying in the background."""
        await self._try_to_lead()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="poller-election")

    async def _run(self) -> None:
        while True:
            if not self.leading:
                await asyncio.sleep(self.retry)
                await self._try_to_lead()
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.lock.lost.wait(), self.check)
            if self.lock.lost.is_set() or not await self.lock.check():
                log.warning("lost the poller lock (its database connection ended): polling stops")
                await self._step_down()

    async def _try_to_lead(self) -> None:
        if not await self.lock.try_acquire():
            return
        try:
            await self._start_polling()
        except Exception:
            log.exception("polling did not start; giving the poller lock up")
            await self.lock.release()
            return
        self.leading = True
        metrics.POLLER.set(1)
        log.info("elected poller: this process takes the Telegram updates")

    async def _step_down(self) -> None:
        self.leading = False
        metrics.POLLER.set(0)
        try:
            await self._stop_polling()
        finally:
            await self.lock.release()

    async def stop(self) -> None:
        """Stop trying, stop polling if this process polls, give the lock up."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._step_down()  # stop_polling does nothing when this process does not poll
