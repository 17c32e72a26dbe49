"""The task-table calls the runner makes, each shielded from cancellation.

Why: the runner cancels its asyncio work on `stop()` and `cancel()`, at whatever await it has reached. A
storage call records something that already happened upstream or in the chat (the upstream task id after a
submit, the file id after a delivery). Cancelled half-way, the store would roll it back (storage/db.py makes
that safe for the connection), and the next start would no longer know the task was submitted: it would fail
and refund a generation the service is still making, or re-deliver a photo. Shielded, a started call runs to
its end in the background while the cancellation reaches the runner at once; `Store.close()` waits for it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Literal, TypeVar

from bot.ops import metrics
from storage import KEEP, Delivery, Keep, RetryReason, Store, Task, TaskState, User

T = TypeVar("T")


async def shielded(awaitable: Awaitable[T]) -> T:
    return await asyncio.shield(awaitable)


class ShieldedTasks:
    """`store.tasks` (the subset the runner uses) plus the user lookup, every call shielded."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def get(self, task_id: int) -> Task | None:
        return await shielded(self._store.tasks.get(task_id))

    async def unfinished(self) -> list[Task]:
        return await shielded(self._store.tasks.unfinished())

    async def transition(
        self,
        task_id: int,
        to: TaskState,
        *,
        expect: TaskState | None = None,
        upstream_task_id: str | None = None,
        error_code: str | None = None,
        result_file_id: str | None = None,
    ) -> Task:
        task = await shielded(
            self._store.tasks.transition(
                task_id, to, expect=expect, upstream_task_id=upstream_task_id, error_code=error_code,
                result_file_id=result_file_id,
            )
        )
        metrics.task_moved(task)
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
    ) -> Task:
        return await shielded(
            self._store.tasks.update(
                task_id, next_poll_at=next_poll_at, attempts_inc=attempts_inc, last_status=last_status,
                delivery=delivery, sent_file_id=sent_file_id, retry_reason=retry_reason,
                poll_started_at=poll_started_at,
            )
        )  # fmt: skip

    async def claim(self, task_id: int, owner: str, lease_seconds: float) -> bool:
        return await shielded(self._store.tasks.claim(task_id, owner, lease_seconds))

    async def release(self, task_id: int, owner: str) -> None:
        await shielded(self._store.tasks.release(task_id, owner))

    async def drop_image(self, user_id: int, which: Literal["selfie", "style"], file_id: str) -> bool:
        return await shielded(self._store.users.drop_image(user_id, which, file_id))

    async def user(self, user_id: int) -> User | None:
        return await shielded(self._store.users.get(user_id))
