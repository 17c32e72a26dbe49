"""The task-table calls a worker makes: each shielded from cancellation, each write fenced by its lease.

Shielded: the runner cancels its asyncio work on `stop()` and `cancel()`, at whatever await it has reached.
A storage call records something that already happened upstream or in the chat (the upstream task id after
a submit, the file id after a delivery). Cancelled half-way, the store would roll it back, and the next
start would no longer know the task was submitted: it would fail and refund a generation the service is
still making, or re-deliver a photo. Shielded, a started call runs to its end in the background while the
cancellation reaches the runner at once; `Store.close()` waits for it.

Fenced: every move and mark a worker writes names the worker (`owner`), and the store refuses it unless
that worker holds an unexpired lease, in the same statement (storage raises LeaseLost). So a worker that
froze past its lease (a paused container, a VM stall) or whose wall clock stepped wakes up to find its
writes refused instead of submitting or sending a second time. Leases are kept alive here too: `hold()`
renews one whose last renewal is older than RENEW_AFTER_SECONDS on the *monotonic* clock (which a wall
clock step does not move), and is called before every fenced write and before every irreversible call
(a submit, a send). `hold()` failing means another worker has the task: stop at once.

Few commits: a queued task's lease is taken by its move to `submitting` (`transition(claim=True)`), a
lease that a terminal move already cleared is not released again, and renewals are not fsynced (storage).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any, Final, Literal, TypeVar

from api_client.clock import Clock
from bot.ops import metrics
from storage import (
    KEEP,
    TERMINAL,
    Delivery,
    Keep,
    LeaseLost,
    QueueEntry,
    RetryReason,
    Store,
    Task,
    TaskState,
    User,
)

T = TypeVar("T")
log = logging.getLogger(__name__)

#: A lease is renewed by the work itself once its last renewal is this old (the runner's idle loop also
#: renews every few seconds); well inside the lease, so a renewal never races its expiry.
RENEW_AFTER_SECONDS: Final = 20.0


async def shielded(awaitable: Awaitable[T]) -> T:
    """Run a storage call to its end even if the caller is cancelled (a stopped job, a stopping process).

    Why the callback: once the caller is gone nobody awaits the call, so a failure at its end (another
    process moved the task on first) would surface as asyncio's "exception was never retrieved" error with
    a traceback. It is an expected end of a race the fencing already settled: logged here as such.
    """
    inner = asyncio.ensure_future(awaitable)
    try:
        return await asyncio.shield(inner)
    except asyncio.CancelledError:
        inner.add_done_callback(_note_orphaned_failure)
        raise


def _note_orphaned_failure(call: asyncio.Future[Any]) -> None:
    if not call.cancelled() and (exc := call.exception()) is not None:
        log.info("a storage call finished after its job was stopped, and failed: %s", exc)


class ShieldedTasks:
    """`store.tasks` (the subset the runner uses) and the user lookups, shielded; a worker's writes fenced."""

    def __init__(self, store: Store, *, owner: str, lease_seconds: float, clock: Clock) -> None:
        self._store = store
        self.owner = owner
        self.lease_seconds = lease_seconds
        self._clock = clock
        self._renewed: dict[int, float] = {}  # task id -> monotonic time of our last successful claim

    # -- leases ------------------------------------------------------------------------------------------

    async def claim(self, task_id: int) -> bool:
        """Take (or extend) our lease; False when another worker holds a live one."""
        taken = await shielded(self._store.tasks.claim(task_id, self.owner, self.lease_seconds))
        if taken:
            self._renewed[task_id] = self._clock.monotonic()
        else:
            self._renewed.pop(task_id, None)
        return taken

    async def hold(self, task_id: int) -> None:
        """Make sure we still hold the task's lease, renewing it when it is getting old; LeaseLost if not."""
        renewed = self._renewed.get(task_id)
        renew_after = min(RENEW_AFTER_SECONDS, self.lease_seconds / 3)  # short leases (tests) renew sooner
        if renewed is not None and self._clock.monotonic() - renewed < renew_after:
            return
        if not await self.claim(task_id):
            raise LeaseLost(task_id, self.owner, None)

    async def release(self, task_id: int) -> None:
        """Give our lease back; nothing to write when we hold none (never claimed, lost, or cleared by the
        task's terminal move)."""
        if self._renewed.pop(task_id, None) is None:
            return
        await shielded(self._store.tasks.release(task_id, self.owner))

    def holds(self, task_id: int) -> bool:
        return task_id in self._renewed

    # -- reads -------------------------------------------------------------------------------------------

    async def get(self, task_id: int) -> Task | None:
        return await shielded(self._store.tasks.get(task_id))

    async def unfinished(self) -> list[Task]:
        return await shielded(self._store.tasks.unfinished())

    async def queue_entries(self) -> list[QueueEntry]:
        return await shielded(self._store.tasks.queue_entries())

    async def next_runnable(self, limit: int) -> list[QueueEntry]:
        return await shielded(self._store.tasks.next_runnable(limit, owner=self.owner))

    async def user(self, user_id: int) -> User | None:
        return await shielded(self._store.users.get(user_id))

    # -- writes ------------------------------------------------------------------------------------------

    async def transition(
        self,
        task_id: int,
        to: TaskState,
        *,
        expect: TaskState | None = None,
        upstream_task_id: str | None = None,
        error_code: str | None = None,
        result_file_id: str | None = None,
        spend: bool = False,
        fenced: bool = True,
        claim: bool = False,
        poll_started_at: float | None = None,
        delivery: Delivery | None = None,
        durable: bool = True,
    ) -> Task:
        """A move of the worker's (fenced), or with `fenced=False` one a person asked for (/cancel).
        `claim=True` takes the lease in the same statement instead of a separate claim first."""
        if fenced and not claim:
            await self.hold(task_id)
        task = await shielded(
            self._store.tasks.transition(
                task_id, to, expect=expect, upstream_task_id=upstream_task_id, error_code=error_code,
                result_file_id=result_file_id, owner=self.owner if fenced else None, spend=spend,
                lease_seconds=self.lease_seconds if fenced and claim else None,
                poll_started_at=poll_started_at, delivery=delivery, durable=durable,
            )
        )  # fmt: skip
        metrics.task_moved(task)
        if task.state in TERMINAL:
            self._renewed.pop(task_id, None)  # the terminal move cleared the lease
        elif fenced and claim:
            self._renewed[task_id] = self._clock.monotonic()
        return task

    async def update(
        self,
        task_id: int,
        *,
        next_poll_at: float | None = None,
        attempts_inc: bool = False,
        last_status: str | None = None,
        delivery: Delivery | None = None,
        sent_file_id: str | None = None,
        retry_reason: RetryReason | Keep | None = KEEP,
        poll_started_at: float | None = None,
        durable: bool = True,
    ) -> Task:
        await self.hold(task_id)
        return await shielded(
            self._store.tasks.update(
                task_id, next_poll_at=next_poll_at, attempts_inc=attempts_inc, last_status=last_status,
                delivery=delivery, sent_file_id=sent_file_id, retry_reason=retry_reason,
                poll_started_at=poll_started_at, owner=self.owner, durable=durable,
            )
        )  # fmt: skip

    async def drop_image(self, user_id: int, which: Literal["selfie", "style"], file_id: str) -> bool:
        return await shielded(self._store.users.drop_image(user_id, which, file_id))
