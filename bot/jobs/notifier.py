"""What the job runner needs from the chat side, as a Protocol, so the runner never imports `telegram`.

The Telegram implementation is `bot.chat.notifier.TelegramNotifier`; tests use a recording fake. Two
exceptions cross the seam: `RecipientGone` (the user blocked the bot or left the chat: stop sending
there, refund) and `DeliveryUncertain` (a send timed out and may or may not have arrived: never resend
blindly; the user gets a "Send it again" button instead).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    from bot.replies.errors import FriendlyError
    from storage import QueueEntry, Task

__all__ = [
    "Closeable",
    "DeliveryUncertain",
    "Notifier",
    "OnSend",
    "OnSent",
    "RecipientGone",
    "Stage",
    "TryLater",
]

#: The hook `Notifier.deliver` awaits just before the result's request goes out.
OnSend = Callable[[], Awaitable[None]]
#: The hook `Notifier.deliver` awaits with the photo's file id as soon as Telegram accepted it, before any
#: extra (the full-size document, the final status edit): the job records DONE there.
OnSent = Callable[[str], Awaitable[None]]

#: The steps a user sees in the status message. "retrying" = busy or briefly down, retried automatically;
#: "stopped" = ended elsewhere (e.g. cancelled from the admin CLI), shown with final=True.
Stage = Literal[
    "queued", "preparing", "submitting", "in_queue", "generating", "retrying", "sending", "stopped"
]
STAGES: tuple[Stage, ...] = (
    "queued",
    "preparing",
    "submitting",
    "in_queue",
    "generating",
    "retrying",
    "sending",
    "stopped",
)


class RecipientGone(Exception):
    """The chat refuses our messages (403: blocked, kicked, deactivated). Not retryable."""

    def __init__(self, chat_id: int) -> None:
        self.chat_id = chat_id
        super().__init__(f"chat {chat_id} no longer accepts messages")


class DeliveryUncertain(Exception):
    """Sending the result timed out: it may have arrived. The runner ends the task done (the unit is
    spent: the service made the portrait) and offers "Send it again"; it never resends on its own."""


class TryLater(Exception):
    """Telegram failed for now and nothing happened: a 429 that outlasted the rate limiter's retries (the
    photo was definitely not sent), a network error fetching the user's file. The runner backs off and
    tries again; no refund, no admin alert (it ends the task only after its bounded retries)."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message)


class Notifier(Protocol):
    """Everything the runner tells (or fetches from) the user's chat. Any method may raise RecipientGone."""

    async def download(self, file_id: str) -> bytes:
        """The bytes of a file the user sent; ImageRejected("too_large") above the 20 MB Bot API limit."""
        ...

    async def status(
        self, task: Task, stage: Stage, elapsed: float, *, lang: str, final: bool = False
    ) -> None:
        """Show progress (throttled; `final` edits are never skipped). Cosmetic: failures are swallowed."""
        ...

    async def queue_place(self, task: QueueEntry, position: int, minutes: int, *, lang: str) -> None:
        """Show a waiting task's place in line and the rough wait in its status message. The runner's
        announcer decides when (sparingly, within a global budget); this edits at once."""
        ...

    async def deliver(
        self,
        task: Task,
        image: bytes,
        *,
        lang: str,
        on_send: OnSend | None = None,
        on_sent: OnSent | None = None,
    ) -> str:
        """Send the portrait; returns the photo's Telegram file_id. DeliveryUncertain after a timeout.

        `on_send` is awaited once per send attempt, after any wait for the chat's turn and just before the
        request goes out: the runner writes its "the photo may be out" mark there, not earlier. `on_sent`
        is awaited once the photo is accepted, before the optional extras, whose failures are only logged:
        the user has the portrait.
        """
        ...

    async def failed(self, task: Task, error: FriendlyError, lang: str) -> None:
        """Tell the user the task ended without a result, in catalogue words."""
        ...

    async def unconfirmed(self, task: Task, error: FriendlyError, lang: str) -> None:
        """Tell the user Telegram did not confirm their portrait, with the "Send it again" button (the task
        is done and its unit spent; the button fetches the result again, see bot.jobs.resend)."""
        ...

    async def admin_alert(self, text: str, *, kind: str = "other") -> None:
        """Tell the operators (settings.admin_chat_id) about something that is ours to fix. Alerts of one
        `kind` are rate-limited together (bot.chat.alerts)."""
        ...

    def forget(self, task_id: int) -> None:
        """The task ended (on any path): drop whatever was kept for it, e.g. status throttle state."""
        ...


@runtime_checkable
class Closeable(Protocol):
    """A notifier with background work of its own (throttled edits); JobRunner.stop() closes it."""

    async def aclose(self) -> None: ...
