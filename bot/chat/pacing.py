"""Group-friendly sending: a per-chat pacer for the job side's messages, and the group intervals.

Who enforces which Telegram limit (issue 6), decided after reading PTB's AIORateLimiter (v22):
- 30 messages/s overall and 20/minute per group: AIORateLimiter, installed in `bot.app` (bot/ops/ratelimit.py)
  with PTB's defaults, which *are* these limits (`FloodLimit.MESSAGES_PER_SECOND`,
  `MESSAGES_PER_MINUTE_PER_GROUP`; "group" = any negative chat id; the overall rate is TELEGRAM_SEND_RATE,
  30 by default, and on PostgreSQL shared by every process), plus up to 3 retries after a 429
  `retry_after`. It covers every request, the handlers' replies included, so it is not duplicated here
  (tests/bot/test_pacing.py checks it holds).
- About 1 message/s in one chat: AIORateLimiter has no per-chat limit. Its group bucket lets 20 messages
  out at once, and private chats only share the overall 30/s, so several results finishing together in
  one group would leave as a burst, which Telegram answers with 429. `ChatPacer` adds that: the runner's
  messages to one chat (results, documents, failure notes, status edits) take turns, first come first
  served, and after a short burst are spaced `interval` seconds apart.
- Fewer status edits in groups: every edit and chat action in a group counts against its 20/minute, and
  edits for one task every few seconds would crowd out the results themselves. `status_interval` gives
  groups a longer minimum interval (`GROUP_STATUS_EDIT_INTERVAL`, 10 s by default).

The pacer waits with the injected clock, so tests never sleep. A turn cancelled while waiting takes
nothing from the chat's budget and never blocks the next one.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Final

from api_client.clock import Clock, SystemClock

__all__ = ["BURST", "ChatPacer", "is_group_chat", "status_interval"]

#: Messages one chat may get back to back before pacing starts (Telegram tolerates short bursts; a result
#: is a photo, maybe its full-size document, and the final status edit: those go out without a wait).
BURST: Final = 3
#: Pacing state of a chat idle this long is forgotten once there are many chats.
_FORGET_AFTER_LANES: Final = 1024


def is_group_chat(chat_id: int) -> bool:
    """Groups, supergroups (and channels) have negative ids; users' private chats positive ones."""
    return chat_id < 0


def status_interval(chat_id: int, *, interval: float, group_interval: float) -> float:
    """The minimum time between two status edits in this chat: never shorter in a group."""
    return max(interval, group_interval) if is_group_chat(chat_id) else interval


@dataclass
class _Lane:
    """One chat: whose turn it is (the lock is FIFO) and the chat's token bucket."""

    tokens: float
    at: float
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class ChatPacer:
    """At most one send at a time per chat, at most one per `interval` seconds after a burst of `burst`.

    `interval` 0 turns pacing off (sends still take turns). Use `async with pacer.turn(chat_id): send`.
    """

    def __init__(self, interval: float, *, burst: int = BURST, clock: Clock | None = None) -> None:
        self.interval = max(0.0, interval)
        self.burst = max(1, burst)
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._lanes: dict[int, _Lane] = {}

    @asynccontextmanager
    async def turn(self, chat_id: int) -> AsyncIterator[None]:
        """Wait for this chat's turn (and its budget); the body is the one send it covers."""
        lane = self._lane(chat_id)
        async with lane.lock:
            if self.interval > 0:
                await self._take_token(lane)
            yield

    async def _take_token(self, lane: _Lane) -> None:
        """Token bucket: `burst` tokens, one back every `interval` s. Cancelled in the sleep: none taken."""
        self._refill(lane)
        if lane.tokens < 1:
            await self._clock.sleep((1 - lane.tokens) * self.interval)
            self._refill(lane)
        lane.tokens = max(0.0, lane.tokens - 1)

    def _refill(self, lane: _Lane) -> None:
        now = self._clock.monotonic()
        lane.tokens = min(float(self.burst), lane.tokens + (now - lane.at) / self.interval)
        lane.at = now

    def _lane(self, chat_id: int) -> _Lane:
        lane = self._lanes.get(chat_id)
        if lane is None:
            if len(self._lanes) >= _FORGET_AFTER_LANES:
                self._forget_idle()
            lane = self._lanes[chat_id] = _Lane(tokens=float(self.burst), at=self._clock.monotonic())
        return lane

    def _forget_idle(self) -> None:
        """Drop chats nobody is sending to whose bucket has refilled: forgetting them changes nothing."""
        now = self._clock.monotonic()
        full_after = self.burst * self.interval
        for chat_id, lane in list(self._lanes.items()):
            if not lane.lock.locked() and now - lane.at >= full_after:
                del self._lanes[chat_id]
