"""The "Send it again" button: the one way a portrait whose delivery Telegram never confirmed reaches its
user.

Such a task ended DONE with its unit spent (bot.jobs.delivery): the service made and billed the portrait,
and most of the time the photo did arrive, so refunding would give it away. It is never resent on our own
either (at most once). The note about it carries a button; a press fetches the result again from the
service by the stored upstream id (it keeps results 12 hours) and sends it, free, where the first one
went, replying to the request.

Rules:
- Only the requester's press counts, in a group too (as for "Again"): the portrait is theirs, and anyone
  else's press would only put a photo the requester may already have in front of the group once more.
  Admins get no exception: they can ask the user to press it.
- One send per press, and none while another is under way: `TasksRepo.claim_resend` is one conditional
  update on the task (two presses, two processes: one wins). A claim runs out after HOLD_SECONDS, so a
  process killed mid-send leaves the button working again; a timeout (unconfirmed again) or a failure of
  the service or Telegram gives the claim back at once. Once a resent photo is accepted its file id is
  recorded (/history then lists the task as delivered) and further presses say it was sent already: no
  button to spam.
- Too late (12 h after the submit, or the service answers not_found) is answered politely, and not
  refunded: the unit paid for a generation that happened and was billed, the note said how to get it, and a
  refund for waiting would make "wait 12 hours, then press" a way to keep a portrait for nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from api_client.client import PortraitClient
from api_client.errors import PortraitAPIError, TaskNotFound
from api_client.models import TaskStatus
from bot.jobs.fault_hooks import scaled
from bot.jobs.notifier import DeliveryUncertain, Notifier, RecipientGone, TryLater
from bot.jobs.params import watermark_for
from bot.jobs.upstream import first_image
from storage import Resend, Store, Task

__all__ = ["HOLD_SECONDS", "Pressed", "Resender", "Resent"]

log = logging.getLogger(__name__)

#: How long a press's claim keeps other presses off: longer than a fetch and an upload take.
HOLD_SECONDS: Final = scaled(120.0)


class Resent(StrEnum):
    """How a press ended, as the presser is told (`resend.<value>` in the catalogues)."""

    SENDING = "sending"  # claimed: this press sends it now
    SENT = "sent"  # this press delivered it
    ALREADY = "already"  # sent again before
    BUSY = "busy"  # another press is sending it
    TOO_LATE = "too_late"  # the service no longer keeps it
    NOT_YOURS = "not_yours"  # someone else's portrait
    STALE = "stale"  # no such task (deleted), or nothing to send again
    TRY_LATER = "try_later"  # the service or Telegram failed for now; nothing was sent
    UNCONFIRMED = "unconfirmed"  # timed out again: it may have arrived this time


@dataclass(frozen=True)
class Pressed:
    """A press checked and, when `outcome` is SENDING, claimed as `owner`."""

    outcome: Resent
    task: Task | None = None
    owner: str = ""


_CLAIMS: Final = {
    Resend.SENT: Resent.ALREADY,
    Resend.BUSY: Resent.BUSY,
    Resend.TOO_LATE: Resent.TOO_LATE,
    Resend.NOT_OFFERED: Resent.STALE,
}


class Resender:
    """Claims a press, then fetches and sends once. Two steps, so the button is answered at once."""

    def __init__(self, store: Store, client: PortraitClient, notifier: Notifier) -> None:
        self._store = store
        self._client = client
        self._notifier = notifier

    async def press(self, task_id: int, user_id: int, press_id: str) -> Pressed:
        """Check who pressed, then claim the send for this press (`press_id`: the callback query's id)."""
        task = await self._store.tasks.get(task_id)
        if task is None:
            return Pressed(Resent.STALE)
        if task.user_id != user_id:
            return Pressed(Resent.NOT_YOURS, task)
        owner = f"resend:{press_id}"
        found, claimed = await self._store.tasks.claim_resend(task_id, owner, HOLD_SECONDS)
        if found is Resend.CLAIMED and claimed is not None:
            return Pressed(Resent.SENDING, claimed, owner)
        return Pressed(_CLAIMS.get(found, Resent.STALE), claimed)

    async def send(self, pressed: Pressed, *, lang: str) -> Resent:
        """Fetch the result by its upstream id and send it once; the claim is given back unless the photo
        was accepted (then its file id is recorded instead)."""
        task = pressed.task
        assert pressed.outcome is Resent.SENDING and task is not None and task.upstream_task_id is not None
        recorded = False

        async def on_sent(file_id: str) -> None:
            nonlocal recorded
            recorded = True
            try:
                await self._store.tasks.record_resend(task.id, file_id)
            except Exception:  # the photo is out: the claim runs out, a later press may send it again
                log.exception("task %d: sent again, but its file id was not stored", task.id)

        try:
            watermark = watermark_for(task.params)
            result = await self._client.get_result(task.upstream_task_id, watermark=watermark)
            if result.status is TaskStatus.NOT_FOUND:
                return Resent.TOO_LATE
            if result.status is not TaskStatus.DONE:  # cannot happen to a finished task; nothing sent
                log.warning("task %d: the service says %s for a finished task", task.id, result.status)
                return Resent.TRY_LATER
            await self._notifier.deliver(task, first_image(result), lang=lang, on_sent=on_sent)
            log.info("task %d sent again on request", task.id)
            return Resent.SENT
        except TaskNotFound:
            return Resent.TOO_LATE
        except DeliveryUncertain:
            log.info("task %d: sending it again was not confirmed either", task.id)
            return Resent.UNCONFIRMED
        except (PortraitAPIError, TryLater, RecipientGone) as exc:
            log.warning("task %d: sending it again failed for now: %s", task.id, type(exc).__name__)
            return Resent.TRY_LATER
        finally:
            if not recorded:
                await self._store.tasks.release(task.id, pressed.owner)
