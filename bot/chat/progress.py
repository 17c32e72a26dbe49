"""The task's status message: edited as the job moves, without flooding Telegram.

Why a throttle with a trailing edit: stages can change several times a second (preparing -> submitting ->
in_queue), and Telegram allows about one message per second per chat (edits count). Dropping the extra
edits outright would leave a stale stage on screen for as long as the job stays there, so the latest text
is kept and written once the interval has passed ("trailing edge"). Final edits (done, stopped, retrying)
go out at once. "Message is not modified" is success: the text already says what we wanted.

The `upload_photo` chat action ("sending a photo…" in the chat header) is sent while generating and
sending; Telegram shows it for about 5 s, so it is repeated at most every ACTION_INTERVAL seconds.

Waiting in line: `queue_text` is the "#N in line, about M min" status. The handler posts it as the first
status text, and the runner's announcer (bot/jobs/announcer.py) decides when it is worth an edit, within
a global budget; the edit itself goes through `edit` like any other, so the per-chat interval holds too.

Groups: every edit and chat action counts against the group's ~20 messages a minute, so both use the
longer `group_interval` there (see bot/pacing.py), and edits take their turn in the chat's `ChatPacer`
with the results, so a status line never pushes a portrait into a 429.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Final

from telegram import Bot
from telegram.constants import ChatAction
from telegram.error import BadRequest, Forbidden, TelegramError

from api_client.clock import Clock, SystemClock
from bot.chat.pacing import ChatPacer, status_interval
from bot.jobs.notifier import RecipientGone, Stage
from bot.replies import t
from storage import QueueEntry, Task

__all__ = ["ACTION_INTERVAL", "CHAT_ACTIONS_KEPT", "StatusReporter", "queue_text", "status_text"]

#: What a status message belongs to: a task, or the light entry of one waiting in line.
Target = Task | QueueEntry

log = logging.getLogger(__name__)

ACTION_INTERVAL: Final = 4.5
#: Past this many chats, those whose last chat action is older than its interval are dropped (no change:
#: a missing entry means "send now", as an old one does).
CHAT_ACTIONS_KEPT: Final = 256
_ACTION_STAGES: Final = frozenset({"generating", "sending"})


def status_text(stage: str, lang: str, elapsed: float) -> str:
    """The status line for a stage (`status.<stage>` in the catalogue)."""
    return t(f"status.{stage}", lang, elapsed=max(0, round(elapsed)))


def queue_text(position: int, minutes: int, lang: str) -> str:
    """The waiting status: the place in line and the rough wait (`status.queued_place`)."""
    return t("status.queued_place", lang, position=position, minutes=minutes)


def is_not_modified(exc: BadRequest) -> bool:
    return "not modified" in exc.message.lower()


@dataclass
class _Message:
    """What one status message shows, and when it was last written (wall clock)."""

    text: str | None
    at: float
    pending: str | None = None
    flush: asyncio.Task[None] | None = None


class StatusReporter:
    """Throttled, idempotent edits of each task's status message, plus the chat action."""

    def __init__(
        self,
        bot: Bot,
        *,
        interval: float,
        group_interval: float = 0.0,
        clock: Clock | None = None,
        pacer: ChatPacer | None = None,
    ) -> None:
        """`group_interval` is the minimum in groups (the longer wins); `pacer` is shared with delivery."""
        self._bot = bot
        self._interval = interval
        self._group_interval = group_interval
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._pacer = pacer if pacer is not None else ChatPacer(0.0, clock=self._clock)
        self._messages: dict[int, _Message] = {}
        self._actions: dict[int, float] = {}  # chat id -> last chat action

    async def show(
        self, task: Task, stage: Stage, elapsed: float, *, lang: str, final: bool = False
    ) -> None:
        """Show `stage`; throttled unless `final`. Raises RecipientGone on 403, swallows other errors."""
        if stage in _ACTION_STAGES:
            await self._chat_action(task.chat_id)
        await self.edit(task, status_text(stage, lang, elapsed), final=final)

    async def edit(self, task: Target, text: str, *, final: bool = False) -> None:
        if task.status_message_id is None:
            return
        # The handler posted the first text when it created the task: that counts as the first write.
        message = self._messages.setdefault(task.id, _Message(text=None, at=task.created_at))
        if text == message.text:  # already on screen: nothing to write, nothing left to flush
            self._cancel_flush(message)
            if final:
                self._messages.pop(task.id, None)
            return
        wait = message.at + self._interval_for(task.chat_id) - self._clock.now()
        if final or wait <= 0:
            self._cancel_flush(message)
            await self._write(task, message, text)
            if final:
                self._messages.pop(task.id, None)
            return
        message.pending = text
        if message.flush is None or message.flush.done():
            message.flush = asyncio.create_task(self._flush_later(task, message, wait))

    def forget(self, task_id: int) -> None:
        """Drop a finished task's throttle state (and any edit still waiting)."""
        message = self._messages.pop(task_id, None)
        if message is not None:
            self._cancel_flush(message)

    async def _flush_later(self, task: Target, message: _Message, wait: float) -> None:
        """Write the latest pending text once the interval allows; loops if more arrived meanwhile."""
        try:
            while True:
                await self._clock.sleep(wait)
                text = message.pending
                if text is None or self._messages.get(task.id) is not message:
                    return
                await self._write(task, message, text)
                if message.pending is None:
                    return
                wait = message.at + self._interval_for(task.chat_id) - self._clock.now()
        except RecipientGone:
            log.info("status flush for task %d: chat is gone", task.id)

    async def _write(self, task: Target, message: _Message, text: str) -> None:
        message.pending = None
        message.at = self._clock.now()
        if text == message.text:
            return
        try:
            async with self._pacer.turn(task.chat_id):
                await self._bot.edit_message_text(
                    text, chat_id=task.chat_id, message_id=task.status_message_id
                )
        except Forbidden as exc:
            raise RecipientGone(task.chat_id) from exc
        except BadRequest as exc:
            if not is_not_modified(exc):
                log.warning("task %d: status edit refused: %s", task.id, exc.message)
        except TelegramError as exc:
            log.warning("task %d: status edit failed: %s", task.id, type(exc).__name__)
            return  # leave `text` unrecorded so the next call tries again
        message.text = text

    def _interval_for(self, chat_id: int) -> float:
        return status_interval(chat_id, interval=self._interval, group_interval=self._group_interval)

    async def _chat_action(self, chat_id: int) -> None:
        now = self._clock.now()
        every = status_interval(chat_id, interval=ACTION_INTERVAL, group_interval=self._group_interval)
        if now - self._actions.get(chat_id, float("-inf")) < every:
            return
        if chat_id not in self._actions and len(self._actions) >= CHAT_ACTIONS_KEPT:
            self._forget_old_actions(now)
        self._actions[chat_id] = now
        try:
            await self._bot.send_chat_action(chat_id, ChatAction.UPLOAD_PHOTO)
        except Forbidden as exc:
            raise RecipientGone(chat_id) from exc
        except TelegramError as exc:
            log.debug("chat action failed: %s", type(exc).__name__)

    def _forget_old_actions(self, now: float) -> None:
        """Drop chats whose last action has run out: bounded by the chats active within an interval."""
        longest = max(ACTION_INTERVAL, self._group_interval)
        for chat_id, at in list(self._actions.items()):
            if now - at >= longest:
                del self._actions[chat_id]

    @staticmethod
    def _cancel_flush(message: _Message) -> None:
        if message.flush is not None and not message.flush.done():
            message.flush.cancel()
        message.flush = None
        message.pending = None

    async def aclose(self) -> None:
        """Cancel edits still waiting (shutdown)."""
        flushes = [m.flush for m in self._messages.values() if m.flush is not None]
        for flush in flushes:
            flush.cancel()
        for flush in flushes:
            with contextlib.suppress(asyncio.CancelledError):
                await flush
