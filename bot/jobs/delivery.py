"""The job's last step: send the portrait at most once, then record DONE, so nothing after the send can
fail (and refund) a task whose user has the photo. It is also the one place that decides how a task found
mid-delivery after a restart goes on (`plan`).

The typed `Task.delivery` column (migration 0003) is the recovery state:
- `sending` is written just before the photo request goes out, inside the chat's pacer turn (the notifier
  calls `on_send`), so a stop while waiting for the turn leaves nothing to refund. It is written together
  with the move to `delivering` (one commit: the task stays `submitted` until then, and a stop before it
  polls again and sends, see bot.jobs.lifecycle). A task found delivering with it may have reached the
  user: it ends unconfirmed (below), never resent.
- `deferred`: Telegram said "later" (TryLater) before anything was sent. The lifecycle backs off with it,
  and the next run fetches the result again and sends it.
- `sent` (+ `sent_file_id`): the photo went out, but the store refused DONE (SQLite locked by the admin CLI)
  through every retry. The next run finishes it to DONE with that file id, without sending.

DONE itself is committed without an fsync (storage.db `durable=False`): lost to a power cut, the task is
found delivering with `sending` and ends unconfirmed, never with a second photo or a second charge. Any
later durable commit makes it durable.

Unconfirmed: the photo may be out, or may not (a kill after the `sending` mark, a takeover, a power cut,
or a sendPhoto that timed out: DeliveryUncertain, bot.jobs.outcomes). The service made and billed the
portrait and most of the time the photo did arrive, so the unit is spent, not refunded (a refund made
each such crash a portrait for free): the task ends DONE, its reservation committed as for a delivered
one (the ledger check needs no exception), with error_code `delivery_uncertain` (storage.UNCONFIRMED),
`delivery` left at `sending` and no `result_file_id`. That needs no new state or migration: DONE is the
only terminal state that spends, and the missing file id is what "not confirmed" means. It is never resent
on our own (at most once): the user gets a note with "Send it again", which fetches the result again by
its upstream id and sends it, free, once per press, only for the requester, while the service keeps it
(12 h). The rules of the button are in bot.jobs.resend.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Final

from bot.jobs.deps import JobDeps
from bot.jobs.notifier import DeliveryUncertain
from storage import Delivery, IllegalTransition, Task, TaskState

__all__ = ["FINISH_ATTEMPTS", "FINISH_BACKOFF_SECONDS", "AlreadySent", "ResultDelivery", "Send"]

log = logging.getLogger(__name__)

#: The DONE transition after a photo went out is tried this often, FINISH_BACKOFF_SECONDS apart, doubling.
FINISH_ATTEMPTS: Final = 4
FINISH_BACKOFF_SECONDS: Final = 0.5


@dataclass(frozen=True)
class AlreadySent:
    """The photo is out (recorded, remembered, or marked `sent`): only DONE is left to record."""

    file_id: str


@dataclass(frozen=True)
class Send:
    """Nothing went out yet (or Telegram refused it for now): fetch the result if needed and send it."""


class ResultDelivery:
    """Sends a task's result and records DONE; knows which tasks are mid-send (stop() waits for those)."""

    def __init__(self, deps: JobDeps) -> None:
        self._deps = deps
        self.sending: set[int] = set()
        self._sent: dict[int, str] = {}  # delivered, DONE not recorded yet: task id -> file id

    def plan(self, task: Task) -> AlreadySent | Send:
        """How a delivering task goes on. Raises DeliveryUncertain when its photo may already be out (the
        task then ends unconfirmed: spent, with "Send it again")."""
        if task.result_file_id:
            return AlreadySent(task.result_file_id)
        if task.id in self._sent:
            return AlreadySent(self._sent[task.id])
        if task.delivery is Delivery.SENT and task.sent_file_id:
            return AlreadySent(task.sent_file_id)
        if task.delivery is Delivery.SENDING:
            raise DeliveryUncertain(f"task {task.id} was being sent when the last run stopped")
        return Send()

    async def deliver(self, task: Task, image: bytes, *, lang: str) -> None:
        """Send once and record DONE. TryLater (nothing sent) propagates: the caller backs off."""
        tasks = self._deps.tasks
        state = task.state

        async def on_send() -> None:
            """Called by the notifier inside the chat's turn, just before the request: from here the photo
            may be out. Waiting for the turn before this is harmless to interrupt (nothing is marked).
            Called again for a fallback send (document, the group instead of a private chat)."""
            nonlocal state
            if state is TaskState.DELIVERING:
                await tasks.update(task.id, delivery=Delivery.SENDING)
            else:  # the move and the mark in one commit
                await tasks.transition(task.id, TaskState.DELIVERING, expect=state, delivery=Delivery.SENDING)
                state = TaskState.DELIVERING
            self.sending.add(task.id)  # stop() waits for it, recording DONE included

        async def on_sent(file_id: str) -> None:
            """The photo is accepted: record DONE now, before the optional extras, so a stop during those
            can never refund a portrait the user already has."""
            await self.finish(task, file_id)

        try:
            await self._deps.tasks.hold(task.id)  # a worker that lost its lease must not send
            await self._deps.notifier.deliver(task, image, lang=lang, on_send=on_send, on_sent=on_sent)
        finally:
            self.sending.discard(task.id)

    async def finish(self, task: Task, file_id: str) -> None:
        """Record DONE for a photo that went out. Nothing raised here may reach the failing path: it would
        refund (and apologise for) a portrait the user has. A store that stays locked leaves the task
        delivering, marked `sent` with the file id (and remembered here), so the next run finishes it."""
        clock = self._deps.clock
        for attempt in range(FINISH_ATTEMPTS):
            if attempt:
                await clock.sleep(FINISH_BACKOFF_SECONDS * 2 ** (attempt - 1))
            try:
                await self._deps.tasks.transition(
                    task.id,
                    TaskState.DONE,
                    expect=TaskState.DELIVERING,
                    result_file_id=file_id,
                    durable=False,
                )
            except IllegalTransition:
                self._sent.pop(task.id, None)
                current = await self._deps.tasks.get(task.id)
                if current is not None and current.state is TaskState.DONE:
                    return  # recorded already (a retry after a lost reply): done is done
                raise  # moved by someone else: the runner logs it, no failing path
            except Exception:
                log.warning("task %d: recording DONE failed (try %d)", task.id, attempt + 1, exc_info=True)
            else:
                self._sent.pop(task.id, None)
                self._deps.notifier.forget(task.id)
                log.info("task %d done in %.1f s", task.id, clock.now() - task.created_at)
                return
        self._sent[task.id] = file_id
        try:
            await self._deps.tasks.update(task.id, delivery=Delivery.SENT, sent_file_id=file_id)
        except Exception:
            log.exception("task %d: delivered, but neither DONE nor the mark was stored", task.id)
