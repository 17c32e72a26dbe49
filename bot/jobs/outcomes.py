"""How a task's ending reaches the database and the user: failure -> state + code + one catalogue message.

Split from the runner, which decides *when* a task ends; this decides *what that means*: failed or expired
(the transition refunds), which code is stored, what the user reads, whether the operators hear of it, and
which chats no longer take our messages (a 403 anywhere: nothing more is sent there for older tasks).
"""

from __future__ import annotations

import logging
from enum import StrEnum
from typing import Final

from api_client.errors import PollDeadlineExceeded, TaskNotFound
from bot.jobs.deps import JobDeps
from bot.jobs.notifier import DeliveryUncertain, RecipientGone
from bot.jobs.params import uses_style_image
from bot.jobs.upstream import StoredImageUnusable
from bot.replies import pick_language
from bot.replies.errors import CANCELLED, FriendlyError, describe, with_style_hint
from storage import ALLOWED, TERMINAL, IllegalTransition, RetryReason, Task, TaskState

__all__ = [
    "BANNED", "BAN_REASON", "GONE_TTL_SECONDS", "USER_REASON", "CancelOutcome", "Outcomes", "cancel_notice",
    "cancellable", "started",
]  # fmt: skip

log = logging.getLogger(__name__)

#: cancel(reason=BAN_REASON) is an admin's /ban: the user hears the BANNED text instead of "cancelled".
BAN_REASON: Final = "ban"
#: cancel(reason=USER_REASON) is the user's own /cancel.
USER_REASON: Final = "user"
BANNED: Final = "banned"
_EXPIRING = (TaskNotFound, PollDeadlineExceeded)
#: A chat that refused us is remembered this long: far past any task's life (the result lives 12 h upstream).
GONE_TTL_SECONDS: Final = 24 * 3600.0


def cancel_notice(reason: str) -> FriendlyError:
    """What a cancelled task's user reads. A ban is the reason itself, so its notice *is* the ban text
    (the gate's reply to anything they send later); "cancelled, refunded" on top would be a second,
    contradictory-sounding message ("try again?")."""
    if reason == BAN_REASON:
        return FriendlyError(BANNED)
    return FriendlyError(CANCELLED, retryable_by_user=True)


class Outcomes:
    """Ends tasks that went wrong and tells their users; remembers chats that refuse our messages."""

    def __init__(self, deps: JobDeps) -> None:
        self._tasks = deps.tasks
        self._notifier = deps.notifier
        self._clock = deps.clock
        self._gone: dict[int, float] = {}  # chat id -> when it refused our messages

    async def end(self, task_id: int, exc: BaseException) -> None:
        """Fail (or expire) the task with the code and message for `exc`; the transition refunds."""
        task = await self._tasks.get(task_id)
        if task is None or task.state in TERMINAL:
            return
        if isinstance(exc, DeliveryUncertain) and TaskState.DONE in ALLOWED[task.state]:
            await self._unconfirmed(task, exc)
            return
        target = TaskState.FAILED
        if isinstance(exc, _EXPIRING) and TaskState.EXPIRED in ALLOWED[task.state]:
            target = TaskState.EXPIRED
        described = describe(exc)
        code = described.code
        error = with_style_hint(described.reply, style_used=_style_used(task))
        try:
            # spend: a failure of the user's own doing (they blocked the bot) after the service accepted the
            # task does not give back a unit the service bills; ours and the service's failures do.
            task = await self._tasks.transition(
                task_id, target, expect=task.state, error_code=code, spend=not error.refund
            )
        except IllegalTransition:
            log.info("task %d finished elsewhere before it could be marked %s", task_id, code)
            return
        log.info("task %d %s: %s", task_id, target.value, code)
        try:
            if isinstance(exc, RecipientGone):
                self.mark_gone(exc.chat_id)
                return
            if isinstance(exc, StoredImageUnusable):
                await self._drop_image(task, exc)
            await self.tell(task, error)
            if error.alert_admins:
                name = type(exc).__name__
                text = f"task {task_id} (user {task.user_id}) failed: {code} ({name})"
                await self.alert(text, kind=f"task:{code}")
        finally:
            self.forget(task_id)

    async def _unconfirmed(self, task: Task, exc: DeliveryUncertain) -> None:
        """The photo may or may not have arrived: DONE, the unit spent (the service made and billed it),
        never resent on our own; the note offers "Send it again" (bot.jobs.resend), which fetches the
        result again and sends it once, for nothing. See bot.jobs.delivery.

        The note goes out before DONE is stored: a stop between the two finds the task delivering with
        `sending` again and repeats the note (its button still sends once), where the other order could
        leave a spent task whose user never got the button."""
        described = describe(exc)
        try:
            if not self.refused(task):
                await self._notifier.unconfirmed(task, described.reply, await self.lang(task))
        except RecipientGone as gone:
            self.mark_gone(gone.chat_id)
        except Exception:
            log.exception("task %d: telling the user failed", task.id)
        try:
            code = described.code
            await self._tasks.transition(task.id, TaskState.DONE, expect=task.state, error_code=code)
        except IllegalTransition:
            log.info("task %d finished elsewhere before it could be marked unconfirmed", task.id)
            return
        finally:
            self.forget(task.id)
        log.info("task %d done, delivery unconfirmed: %s", task.id, exc)

    async def _drop_image(self, task: Task, exc: StoredImageUnusable) -> None:
        """Forget the unusable picture, so the user's next /anime does not fail on it again."""
        try:
            dropped = await self._tasks.drop_image(task.user_id, exc.which, exc.file_id)
        except Exception:
            log.exception("task %d: could not drop the unusable %s image", task.id, exc.which)
            return
        if dropped:
            log.info("task %d: dropped user %d's unusable %s image", task.id, task.user_id, exc.which)

    async def ended_elsewhere(self, task: Task) -> None:
        """The task was ended by someone else (the admin CLI) while we worked on it: no transition (the one
        that ended it refunded), the status message ends on "stopped"."""
        log.info("task %d was ended elsewhere (%s); stopped here", task.id, task.state.value)
        try:
            if not self.refused(task):
                elapsed = self._clock.now() - task.created_at
                await self._notifier.status(task, "stopped", elapsed, lang=await self.lang(task), final=True)
        except RecipientGone as gone:
            self.mark_gone(gone.chat_id)
        except Exception:
            log.warning("task %d: status update failed", task.id, exc_info=True)
        finally:
            self.forget(task.id)

    async def crashed(self, task_id: int, exc: Exception) -> None:
        log.error("task %d crashed", task_id, exc_info=exc)
        try:
            await self.end(task_id, exc)
        except Exception:
            log.exception("task %d: could not record the crash", task_id)

    async def tell(self, task: Task, error: FriendlyError) -> None:
        if self.refused(task):
            return
        try:
            await self._notifier.failed(task, error, await self.lang(task))
        except RecipientGone as gone:
            self.mark_gone(gone.chat_id)
        except Exception:
            log.exception("task %d: telling the user failed", task.id)

    async def alert(self, text: str, *, kind: str) -> None:
        try:
            await self._notifier.admin_alert(text, kind=kind)
        except Exception:
            log.exception("admin alert failed")

    def forget(self, task_id: int) -> None:
        """The task ended: the chat side drops what it kept for it (status throttle, pending edits)."""
        try:
            self._notifier.forget(task_id)
        except Exception:
            log.exception("task %d: forgetting its progress state failed", task_id)

    def mark_gone(self, chat_id: int) -> None:
        now = self._clock.now()
        for old, since in list(self._gone.items()):
            if now - since > GONE_TTL_SECONDS:
                del self._gone[old]
        self._gone[chat_id] = now
        log.info("chat %d refuses messages; its pending tasks are refunded", chat_id)

    def refused(self, task: Task) -> bool:
        """Tasks made before the chat refused us are not sent; a newer task means the user is back."""
        since = self._gone.get(task.chat_id)
        return since is not None and task.created_at <= since

    async def lang(self, task: Task) -> str:
        return await self.lang_of(task.user_id)

    async def lang_of(self, user_id: int) -> str:
        user = await self._tasks.user(user_id)
        return pick_language(user.language if user is not None else None)


def _style_used(task: Task) -> bool:
    """Whether the task sent a style image: only then may a picture refusal be the style image's fault."""
    return uses_style_image(task.params) and task.style_file_id is not None


def cancellable(task: Task) -> bool:
    return TaskState.CANCELLED in ALLOWED[task.state]


def started(task: Task) -> bool:
    """The service has (or may have) the task: it was accepted, or its submit may be on the way. A submit
    the service definitely refused (rate limited, waiting to be resent) has not started anything."""
    if task.upstream_task_id is not None:
        return True
    return task.state is TaskState.SUBMITTING and task.retry_reason is not RetryReason.RATE_LIMITED


class CancelOutcome(StrEnum):
    CANCELLED = "cancelled"
    STARTED = "started"
    TOO_LATE = "too_late"
