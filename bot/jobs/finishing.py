"""The job's last step: send the portrait at most once, then record DONE so nothing after the send can
fail (and refund) a task whose user has the photo.

Split from the runner, which decides when a task reaches this step; this keeps the delivery marks:
- `last_status="sending"` is written just before the photo request goes out, inside the chat's pacer turn
  (the notifier calls `on_send`), so a stop while waiting for the turn leaves nothing to refund. A task
  found delivering with that mark may have reached the user: it is refunded with a visible "may not have
  arrived" note, never resent.
- `last_status="send_deferred"`: Telegram said "later" (TryLater) before anything was sent. The runner
  backs off with this mark, and the next run fetches the result again and sends it.
- `last_status="sent:<file_id>"`: the photo went out, but the store refused DONE (SQLite locked by the
  admin CLI) through every retry. The next run finishes it to DONE with that file id, without sending.
"""

from __future__ import annotations

import logging
from typing import Final

from api_client.clock import Clock
from bot.jobs.notifier import Notifier
from bot.jobs.task_store import ShieldedTasks
from storage import IllegalTransition, Task, TaskState

__all__ = [
    "DEFERRED", "FINISH_ATTEMPTS", "FINISH_BACKOFF_SECONDS", "SENDING", "SENT_PREFIX", "Finisher",
]

log = logging.getLogger(__name__)

SENDING: Final = "sending"
DEFERRED: Final = "send_deferred"
SENT_PREFIX: Final = "sent:"
#: The DONE transition after a photo went out is tried this often, FINISH_BACKOFF_SECONDS apart, doubling.
FINISH_ATTEMPTS: Final = 4
FINISH_BACKOFF_SECONDS: Final = 0.5


class Finisher:
    """Sends a task's result and records DONE; knows which tasks are mid-send (stop() waits for those)."""

    def __init__(self, tasks: ShieldedTasks, notifier: Notifier, clock: Clock) -> None:
        self._tasks = tasks
        self._notifier = notifier
        self._clock = clock
        self.sending: set[int] = set()
        self._sent: dict[int, str] = {}  # delivered, DONE not recorded yet: task id -> file id

    def sent_file_id(self, task: Task) -> str | None:
        """The photo's file id when it already went out (recorded, remembered, or marked), else None."""
        if task.result_file_id:
            return task.result_file_id
        if task.id in self._sent:
            return self._sent[task.id]
        mark = task.last_status or ""
        return mark.removeprefix(SENT_PREFIX) if mark.startswith(SENT_PREFIX) else None

    async def deliver(self, task: Task, image: bytes, *, lang: str) -> None:
        """Send once and record DONE. TryLater (nothing sent) propagates: the caller backs off."""

        async def on_send() -> None:
            """Called by the notifier inside the chat's turn, just before the request: from here the photo
            may be out. Waiting for the turn before this is harmless to interrupt (nothing is marked)."""
            await self._tasks.update(task.id, last_status=SENDING)
            self.sending.add(task.id)  # stop() waits for it, recording DONE included

        try:
            file_id = await self._notifier.deliver(task, image, lang=lang, on_send=on_send)
            await self.finish(task, file_id)
        finally:
            self.sending.discard(task.id)

    async def finish(self, task: Task, file_id: str) -> None:
        """Record DONE for a photo that went out. Nothing raised here may reach the failing path: it would
        refund (and apologise for) a portrait the user has. A store that stays locked leaves the task
        delivering, marked SENT_PREFIX + file_id (and remembered here), so the next run finishes it."""
        for attempt in range(FINISH_ATTEMPTS):
            if attempt:
                await self._clock.sleep(FINISH_BACKOFF_SECONDS * 2 ** (attempt - 1))
            try:
                await self._tasks.transition(
                    task.id, TaskState.DONE, expect=TaskState.DELIVERING, result_file_id=file_id
                )
            except IllegalTransition:
                self._sent.pop(task.id, None)
                raise  # moved by someone else: the runner logs it, no failing path
            except Exception:
                log.warning("task %d: recording DONE failed (try %d)", task.id, attempt + 1, exc_info=True)
            else:
                self._sent.pop(task.id, None)
                self._notifier.forget(task.id)
                log.info("task %d done in %.1f s", task.id, self._clock.now() - task.created_at)
                return
        self._sent[task.id] = file_id
        try:
            await self._tasks.update(task.id, last_status=SENT_PREFIX + file_id)
        except Exception:
            log.exception("task %d: delivered, but neither DONE nor the mark was stored", task.id)
