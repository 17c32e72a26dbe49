"""Short alerts to the operators' chat (`ADMIN_CHAT_ID`) about failures that are ours to fix.

Why one sender with a per-kind limit: alerts come from the job runner (a task failed for a reason of ours)
and from the handlers' last-resort error handler. Each of those can be triggered by anyone who can send a
message, so without a limit one user repeating a message that hits a bug floods the admin chat (and spends
the bot's per-chat send budget there). At most one alert per kind goes out per `interval`; the next one
after a quiet spell says how many were held back, so nothing is hidden, only summarised. Every alert is
still logged in full.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Final

from telegram import Bot
from telegram.error import TelegramError

from api_client.clock import Clock
from bot.chat.pacing import ChatPacer

__all__ = ["AdminAlerts"]

log = logging.getLogger(__name__)

_MAX_ALERT_CHARS: Final = 3500
#: Kinds are remembered this long past their last alert, so the table cannot grow without bound.
_FORGET_AFTER_INTERVALS: Final = 10


@dataclass
class _Kind:
    last_sent: float
    held_back: int = 0


class AdminAlerts:
    """Sends operator alerts, at most one per kind per interval, with a count of those held back."""

    def __init__(
        self, bot: Bot, chat_id: int | None, *, interval: float, clock: Clock, pacer: ChatPacer
    ) -> None:
        self._bot = bot
        self._chat_id = chat_id
        self._interval = interval
        self._clock = clock
        self._pacer = pacer
        self._kinds: dict[str, _Kind] = {}

    async def send(self, text: str, *, kind: str) -> bool:
        """Alert now, or count it for the next alert of this kind; True when a message went out."""
        log.warning("admin alert [%s]: %s", kind, text)
        if self._chat_id is None:
            return False
        now = self._clock.now()
        self._forget_quiet_kinds(now)
        seen = self._kinds.get(kind)
        if seen is not None and now - seen.last_sent < self._interval:
            seen.held_back += 1
            return False
        held_back = seen.held_back if seen is not None else 0
        self._kinds[kind] = _Kind(last_sent=now)
        if held_back:
            text = f"{text}\n(+{held_back} more of this kind in the last {self._interval:g} s)"
        try:
            async with self._pacer.turn(self._chat_id):
                await self._bot.send_message(self._chat_id, text[:_MAX_ALERT_CHARS])
        except TelegramError as exc:
            log.error("admin alert could not be sent (%s): %s", type(exc).__name__, text)
            return False
        return True

    def _forget_quiet_kinds(self, now: float) -> None:
        horizon = self._interval * _FORGET_AFTER_INTERVALS
        for kind, seen in list(self._kinds.items()):
            if now - seen.last_sent > horizon:
                del self._kinds[kind]
