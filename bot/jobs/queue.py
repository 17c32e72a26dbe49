"""The order in which waiting tasks get an upstream slot, and each one's place in that order.

Why an in-memory view of a durable queue: the queue itself is the task table (a `queued` row is a waiting
request, so a restart keeps every request and its order: creation time, then id). Asking the database
"who is next, and what is everyone's place" for 10,000 waiting users every time a slot frees would read
the whole queue again and again; this view is loaded once (`storage.tasks.queue_entries`, light rows),
kept current by the runner (a new task is added on enqueue, a dispatched one leaves) and re-synced on a
slow timer, which also brings in what other workers or the admin CLI changed.

The order, fair by construction:
- Resumed work comes first (`started`: tasks already submitted, being delivered, or waiting to resend a
  refused submit): they were admitted before anything now waiting, and the service is already working on
  (or billing) most of them.
- Then two lanes, private chats and groups, each first come first served, taking turns while both wait.
  A group flood (one busy group can queue hundreds of requests in a minute) therefore gets at most every
  other slot and never starves private chats, and the other way round; with one lane empty the other has
  every slot. One task per user at a time is enforced when tasks are created (MAX_ACTIVE_TASKS_PER_USER).
- A task backing off (`next_poll_at` in the future) keeps its place but is skipped until then.
- At most GROUP_IN_FLIGHT tasks of one group run at once; the group's next ones keep their places. A
  group gets about 20 messages a minute from Telegram, so its results can only go out that fast: started
  faster, they would sit waiting for the group's turn while holding slots everyone else needs (a busy
  group would stall the whole line, not just itself).

Places follow from that rule: the task at index i of its lane, with m tasks in the other lane, is picked
after i of its own and min(m, i or i + 1) of the other's (depending on whose turn it is), after the
started ones that need a slot.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Final, Literal

from storage import QueueEntry, Task, TaskState

__all__ = ["Lane", "WaitQueue", "entry_of"]

Lane = Literal["private", "group"]
LANES: Final[tuple[Lane, Lane]] = ("private", "group")

_Key = tuple[float, int]

#: Tasks of one group chat running at once (private chats have one task per user anyway).
GROUP_IN_FLIGHT: Final = 2


@dataclass(frozen=True)
class Pick:
    """A task taken off the queue to run now; `upstream` says whether it needs an upstream slot."""

    entry: QueueEntry
    upstream: bool


def is_group_chat(chat_id: int) -> bool:
    """Groups, supergroups and channels have negative ids (bot.chat.pacing says the same)."""
    return chat_id < 0


def lane_of(entry: QueueEntry) -> Lane:
    return "group" if is_group_chat(entry.chat_id) else "private"


def _key(entry: QueueEntry) -> _Key:
    return (entry.created_at, entry.id)


class WaitQueue:
    """Waiting tasks of this runner in dispatch order (see the module docstring)."""

    def __init__(self) -> None:
        self._entries: dict[int, QueueEntry] = {}
        self._started: list[_Key] = []
        self._lanes: dict[Lane, list[_Key]] = {"private": [], "group": []}
        self._turn: Lane | None = None  # None: whichever lane's head came first
        self._picked: dict[int, int] = {}  # running group tasks: task id -> chat id
        self._group_running: dict[int, int] = {}  # group chat id -> its tasks running

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, task_id: object) -> bool:
        return task_id in self._entries

    def get(self, task_id: int) -> QueueEntry | None:
        return self._entries.get(task_id)

    def add(self, entry: QueueEntry) -> None:
        """Add or refresh `entry` (its state or back-off may have changed)."""
        self.remove(entry.id)
        self._entries[entry.id] = entry
        bisect.insort(self._list_for(entry), _key(entry))

    def remove(self, task_id: int) -> QueueEntry | None:
        entry = self._entries.pop(task_id, None)
        if entry is not None:
            items = self._list_for(entry)
            index = bisect.bisect_left(items, _key(entry))
            if index < len(items) and items[index] == _key(entry):
                del items[index]
        return entry

    def replace_all(self, entries: list[QueueEntry]) -> None:
        """The slow re-sync: the view becomes exactly `entries` (the turn is kept)."""
        self._entries = {e.id: e for e in entries}
        self._started = sorted(_key(e) for e in entries if e.state is not TaskState.QUEUED)
        for lane in LANES:
            self._lanes[lane] = sorted(
                _key(e) for e in entries if e.state is TaskState.QUEUED and lane_of(e) == lane
            )

    def defer(self, task_id: int, until: float) -> None:
        """The task backs off until `until`; it keeps its place."""
        entry = self._entries.get(task_id)
        if entry is not None:
            self._entries[task_id] = replace(entry, next_poll_at=until)

    def wake_times(self) -> list[float]:
        """When tasks now backing off become runnable again."""
        return [e.next_poll_at for e in self._entries.values() if e.next_poll_at is not None]

    # -- picking -----------------------------------------------------------------------------------------

    def pop_next(self, now: float, *, upstream_free: bool) -> Pick | None:
        """The next task to run now, removed from the view; None when nothing runnable fits.

        `upstream_free`: an upstream slot is free. Without one only a delivering task (which needs none)
        may start."""
        for key in self._started:
            entry = self._entries[key[1]]
            needs_slot = entry.state is not TaskState.DELIVERING
            if self._runnable(entry, now) and (upstream_free or not needs_slot):
                self.remove(entry.id)
                self._took(entry)
                return Pick(entry, needs_slot)
        if not upstream_free:
            return None
        first = self._first_lane()
        for lane in (first, _other(first)):
            found = self._first_runnable(lane, now)
            if found is not None:
                self.remove(found.id)
                self._took(found)
                # Turns alternate only while the other lane has someone waiting.
                self._turn = _other(lane) if self._lanes[_other(lane)] else None
                return Pick(found, True)
        return None

    def _first_lane(self) -> Lane:
        """Whose turn it is: the lane that did not pick last, or (no turn yet) the one whose head is older."""
        if self._turn is not None:
            return self._turn
        private, group = self._lanes["private"], self._lanes["group"]
        return "group" if group and (not private or group[0] < private[0]) else "private"

    def _first_runnable(self, lane: Lane, now: float) -> QueueEntry | None:
        for key in self._lanes[lane]:
            entry = self._entries[key[1]]
            if self._runnable(entry, now):
                return entry
        return None

    def _runnable(self, entry: QueueEntry, now: float) -> bool:
        if entry.next_poll_at is not None and entry.next_poll_at > now:
            return False
        return self._group_running.get(entry.chat_id, 0) < GROUP_IN_FLIGHT

    def _took(self, entry: QueueEntry) -> None:
        if is_group_chat(entry.chat_id):
            self._picked[entry.id] = entry.chat_id
            self._group_running[entry.chat_id] = self._group_running.get(entry.chat_id, 0) + 1

    def finished(self, task_id: int) -> None:
        """A task taken by `pop_next` stopped running (its group may start another)."""
        chat_id = self._picked.pop(task_id, None)
        if chat_id is not None:
            left = self._group_running.pop(chat_id, 1) - 1
            if left > 0:
                self._group_running[chat_id] = left

    # -- places ------------------------------------------------------------------------------------------

    def position(self, task_id: int) -> int | None:
        """1-based place among the tasks waiting for an upstream slot; None for one not waiting in line
        (unknown, or resumed work that is not queued)."""
        entry = self._entries.get(task_id)
        if entry is None or entry.state is not TaskState.QUEUED:
            return None
        lane = lane_of(entry)
        index = bisect.bisect_left(self._lanes[lane], _key(entry))
        return self._place(lane, index)

    def position_for_new(self, chat_id: int) -> int:
        """The place a task created now in `chat_id` would get (it joins the end of its lane)."""
        lane: Lane = "group" if is_group_chat(chat_id) else "private"
        return self._place(lane, len(self._lanes[lane]))

    def _place(self, lane: Lane, index: int) -> int:
        others = len(self._lanes[_other(lane)])
        before_mine = index if self._first_lane() == lane else index + 1
        ahead_started = sum(1 for k in self._started if self._entries[k[1]].state is not TaskState.DELIVERING)
        return ahead_started + index + min(others, before_mine) + 1

    def in_order(self) -> Iterator[tuple[QueueEntry, int]]:
        """Every queued task with its place, front first (the order announcements are budgeted in)."""
        ahead_started = sum(1 for k in self._started if self._entries[k[1]].state is not TaskState.DELIVERING)
        lanes = {lane: list(self._lanes[lane]) for lane in LANES}
        cursor = {lane: 0 for lane in LANES}
        turn = self._first_lane()
        place = ahead_started
        while cursor["private"] < len(lanes["private"]) or cursor["group"] < len(lanes["group"]):
            lane = turn if cursor[turn] < len(lanes[turn]) else _other(turn)
            key = lanes[lane][cursor[lane]]
            cursor[lane] += 1
            place += 1
            entry = self._entries.get(key[1])
            if entry is not None:
                yield entry, place
            turn = _other(lane)

    def _list_for(self, entry: QueueEntry) -> list[_Key]:
        if entry.state is not TaskState.QUEUED:
            return self._started
        return self._lanes[lane_of(entry)]


def _other(lane: Lane) -> Lane:
    return "group" if lane == "private" else "private"


def entry_of(task: Task) -> QueueEntry:
    """The light entry of a task read in full."""
    return QueueEntry(
        id=task.id, user_id=task.user_id, chat_id=task.chat_id, state=task.state, created_at=task.created_at,
        status_message_id=task.status_message_id, next_poll_at=task.next_poll_at,
        lease_owner=task.lease_owner, lease_until=task.lease_until,
    )  # fmt: skip
