"""Telling each waiting user their place in line and a rough wait, without flooding Telegram.

Why a budget: with 10,000 people waiting, "edit everyone's status when the line moves" would be
thousands of edits a second, and Telegram allows about 30 messages a second for the whole bot (edits
count, and the results themselves must get through). So:
- The first place is free: it is part of the status message the handler posts anyway
  (`JobRunner.estimate_new`), so nobody waits for an edit to learn where they stand.
- After that a status is edited only when what it says changed meaningfully: the place moved by at least
  10 % (at least one), or the rough wait changed (whole minutes up to 10, then 5-minute steps, then
  quarter hours), so a user far back is edited a few times in all, not at every step of the line.
- At most ANNOUNCEMENTS_PER_SECOND such edits in total (10/s, a third of Telegram's overall limit),
  handed out front first: the users nearest their turn hear first, and the back of the line waits its turn
  (it changes slowest anyway).
- Never more than one per chat per status interval (STATUS_EDIT_INTERVAL), and in a group one a minute
  at most (GROUP_PLACE_INTERVAL): every member's status counts against the group's 20 messages a minute,
  which the group's results need (the benchmark showed place edits eating a busy group's budget).

The wait is the place divided by the upstream concurrency, times the typical generation time the poll
learner has seen (api_client.learning; DEFAULT_GENERATION_SECONDS until it has seen one).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

from api_client.clock import Clock
from api_client.learning import PollingLearner
from bot.jobs.notifier import Notifier, RecipientGone
from bot.jobs.queue import WaitQueue, is_group_chat
from storage import QueueEntry

__all__ = [
    "ANNOUNCEMENTS_PER_SECOND", "DEFAULT_GENERATION_SECONDS", "Place", "QueueAnnouncer", "WaitEstimates",
]  # fmt: skip

log = logging.getLogger(__name__)

#: Queue-place edits per second for the whole bot, and how often the announcer looks at the line.
ANNOUNCEMENTS_PER_SECOND: Final = 10.0
TICK_SECONDS: Final = 1.0
#: A place is re-announced when it moved by this share of the last one shown (and by at least one).
MEANINGFUL_SHARE: Final = 0.10
#: The generation time assumed until the learner has seen a finished task.
DEFAULT_GENERATION_SECONDS: Final = 30.0
#: The least time between two place edits in one group chat.
GROUP_PLACE_INTERVAL: Final = 60.0
#: Entries looked at between two yields to the event loop, so a long line never stalls it.
_CHUNK: Final = 1000


@dataclass(frozen=True)
class Place:
    """What a waiting user is shown: their place in line and the rough wait in whole minutes."""

    position: int
    minutes: int


def rough_minutes(seconds: float) -> int:
    """Whole minutes up to 10, then steps of 5 up to an hour, then quarter hours: rough on purpose (it is
    an estimate) and so that it changes, and costs an edit, rarely."""
    minutes = max(1, math.ceil(seconds / 60.0))
    if minutes <= 10:
        return minutes
    step = 5 if minutes <= 60 else 15
    return math.ceil(minutes / step) * step


class WaitEstimates:
    """Place -> rough wait, from the learnt generation time and the upstream concurrency."""

    def __init__(self, learner: PollingLearner | None, concurrency: int) -> None:
        self._learner = learner
        self._concurrency = max(1, concurrency)

    def typical_seconds(self) -> float:
        """The mean generation time over every kind of task seen, weighted by how many were seen."""
        if self._learner is None:
            return DEFAULT_GENERATION_SECONDS
        total = weight = 0.0
        for times in self._learner.model.buckets.values():
            estimate = times.estimate
            if estimate is not None:
                total += estimate.mean * estimate.samples
                weight += estimate.samples
        return total / weight if weight else DEFAULT_GENERATION_SECONDS

    def place(self, position: int) -> Place:
        """`position` tasks to go (this one included): the slots finish `concurrency` at a time, then
        this one runs for a generation of its own."""
        rounds = (position - 1) / self._concurrency + 1
        return Place(position, rough_minutes(rounds * self.typical_seconds()))


def meaningful(shown: Place, now: Place) -> bool:
    moved = abs(now.position - shown.position)
    return (moved > 0 and moved >= MEANINGFUL_SHARE * shown.position) or now.minutes != shown.minutes


class QueueAnnouncer:
    """Edits waiting users' status messages with their place, within the budget described above."""

    def __init__(
        self,
        queue: WaitQueue,
        notifier: Notifier,
        clock: Clock,
        *,
        estimates: WaitEstimates,
        lang: Callable[[int], Awaitable[str]],
        interval: float,
        group_interval: float,
        per_second: float = ANNOUNCEMENTS_PER_SECOND,
    ) -> None:
        self._queue = queue
        self._notifier = notifier
        self._clock = clock
        self._estimates = estimates
        self._lang = lang
        self._interval = interval
        self._group_interval = max(interval, group_interval, GROUP_PLACE_INTERVAL)
        self._per_tick = max(1, int(per_second * TICK_SECONDS))
        self._shown: dict[int, Place] = {}  # task id -> the place its status shows
        self._chat_last: dict[int, float] = {}  # chat id -> monotonic time of our last edit there
        self._loop: asyncio.Task[None] | None = None
        self.sent = 0

    def shown(self, task_id: int, place: Place) -> None:
        """The handler's first status message already shows `place`."""
        self._shown[task_id] = place

    def forget(self, task_id: int) -> None:
        self._shown.pop(task_id, None)

    def start(self) -> None:
        if self._loop is None:
            self._loop = asyncio.create_task(self._run(), name="queue-announcer")

    async def stop(self) -> None:
        if self._loop is not None:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop
            self._loop = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(TICK_SECONDS)
            try:
                await self.tick()
            except Exception:
                log.exception("announcing queue places failed")

    async def tick(self) -> int:
        """One round: pick up to the tick's budget of due announcements, front first, and send them."""
        now = self._clock.monotonic()
        due: list[tuple[QueueEntry, Place]] = []
        chats: set[int] = set()
        for seen, (entry, position) in enumerate(self._queue.in_order(), start=1):
            if seen % _CHUNK == 0:
                await asyncio.sleep(0)
            if entry.status_message_id is None or entry.chat_id in chats:
                continue
            place = self._estimates.place(position)
            shown = self._shown.get(entry.id)
            if shown is not None and not meaningful(shown, place):
                continue
            every = self._group_interval if is_group_chat(entry.chat_id) else self._interval
            if now - self._chat_last.get(entry.chat_id, float("-inf")) < every:
                continue
            due.append((entry, place))
            chats.add(entry.chat_id)
            if len(due) >= self._per_tick:
                break
        for entry, place in due:
            self._chat_last[entry.chat_id] = now
            self._shown[entry.id] = place
        self._forget_old_chats(now)
        await asyncio.gather(*(self._announce(entry, place) for entry, place in due))
        return len(due)

    async def _announce(self, entry: QueueEntry, place: Place) -> None:
        try:
            lang = await self._lang(entry.user_id)
            await self._notifier.queue_place(entry, place.position, place.minutes, lang=lang)
            self.sent += 1
        except RecipientGone:
            log.info("task %d: chat gone while waiting; the runner settles it on its turn", entry.id)
        except Exception:
            log.warning("task %d: queue place not shown", entry.id, exc_info=True)

    def _forget_old_chats(self, now: float) -> None:
        if len(self._chat_last) > 4 * len(self._queue) + 1024:
            for chat_id, at in list(self._chat_last.items()):
                if now - at >= self._group_interval:
                    del self._chat_last[chat_id]
