"""A per-sender budget of updates (a token bucket), checked in the gate before anything else is done.

Why: every update costs the bot something (a database write, a reply counted against Telegram's limits, a
download), and sending one costs the sender nothing. Without a budget one user (or one script) can keep
the bot busy for everyone. Each sender has a bucket of `burst` tokens refilled at `per_minute` tokens a
minute; an update takes one. Over budget, the sender hears once that they are going too fast (and when to
try again), and after that nothing until the bucket has a token again: replying to every refused message
would itself be the flood. Button taps over budget are still answered (a toast), because Telegram shows a
spinner until a callback is answered and the answer is not a chat message.

Who counts as a sender: the user, or the chat a message was posted on behalf of (an anonymous admin posts
as the group, a member as their channel: GroupAnonymousBot is one account for all of them). Bot owners
and admins are exempt. Service messages (members joining, a group's migration) never count.

Time comes from an injected monotonic clock; buckets live in memory (a restart forgives everyone), and
full buckets are forgotten when there are many, so the table stays small.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from telegram import Update
from telegram.ext import ApplicationHandlerStop

from bot.handlers.context import BotContext
from bot.handlers.reply import say
from bot.replies import pick_language, t
from storage import Role

log = logging.getLogger(__name__)

#: Forget full buckets once this many senders are tracked.
PRUNE_ABOVE = 10_000


class Verdict(Enum):
    ALLOWED = "allowed"
    WARN = "warn"  # the first refusal since the last allowed update: say so
    SILENT = "silent"  # already told: drop without a word


@dataclass
class _Bucket:
    tokens: float
    at: float
    warned: bool = False


class FloodGuard:
    """Token buckets per sender key; `per_minute` <= 0 turns the limit off."""

    def __init__(
        self, per_minute: float, burst: int, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self._clock = clock
        self._buckets: dict[int, _Bucket] = {}

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def take(self, key: int) -> Verdict:
        """Spend one token of `key`'s bucket, or say how to refuse the update."""
        if not self.enabled:
            return Verdict.ALLOWED
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            self._prune(now)
            bucket = self._buckets[key] = _Bucket(self.burst, now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.at) * self.rate)
        bucket.at = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            bucket.warned = False
            return Verdict.ALLOWED
        if bucket.warned:
            return Verdict.SILENT
        bucket.warned = True
        return Verdict.WARN

    def wait_seconds(self, key: int) -> int:
        """Whole seconds until `key` may send again (at least 1)."""
        bucket = self._buckets.get(key)
        if bucket is None or not self.enabled:
            return 1
        return max(1, math.ceil((1.0 - bucket.tokens) / self.rate))

    def _prune(self, now: float) -> None:
        if len(self._buckets) < PRUNE_ABOVE:
            return
        full = [
            key
            for key, bucket in self._buckets.items()
            if bucket.tokens + (now - bucket.at) * self.rate >= self.burst
        ]
        for key in full:
            del self._buckets[key]


def sender_key(update: Update) -> int | None:
    """Whose budget an update spends: the chat a message was posted as, else the user; None if nobody."""
    message = update.message
    if message is not None and message.sender_chat is not None:
        return message.sender_chat.id
    user = update.effective_user
    return user.id if user is not None else None


async def enforce(update: Update, context: BotContext) -> None:
    """Let the update through, or answer (once) and stop it. Owners and admins are never limited."""
    guard = context.services.flood
    key = sender_key(update)
    if key is None or not guard.enabled:
        return
    verdict = guard.take(key)
    if verdict is Verdict.ALLOWED:
        return
    user = update.effective_user
    if user is not None and user.id == key:  # the gate has not read their record yet: read it now
        if user.id in context.services.settings.admin_ids:
            return
        account = await context.services.store.users.get(user.id)
        if account is not None and not account.banned and account.role in (Role.ADMIN, Role.OWNER):
            return
        context.lang = pick_language(account.language if account is not None else user.language_code)
    log.info("sender %s is over the update rate: %s", key, verdict.value)
    seconds = guard.wait_seconds(key)
    if update.callback_query is not None:
        await update.callback_query.answer(t("flood.slow_down_button", context.lang, seconds=seconds))
    elif verdict is Verdict.WARN:
        await say(update, context, "flood.slow_down", seconds=seconds)
    raise ApplicationHandlerStop
