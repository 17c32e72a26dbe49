"""Waiting for a task: when to poll, when to give up, what to tell the caller on the way.

api.md: generation takes ~5-20 s, so poll first after ~1-2 s and back off to ~5 s; a fresh task may read
`not_found` for a moment, so not_found is final only after a grace period; tasks expire after 12 h.

A schedule that learns (`LearnedSchedule`, made by api_client.learning) polls at planned times since the
submit instead, and is told how the task was seen once it is done (`PollSchedule.finished`), so the next
tasks are polled near their expected finish; the deadline and the not_found grace do not change with it.

Everything waits on the injected `Clock`, so tests with `FakeClock` run instantly and can assert the exact
sleeps. The loop creates no tasks of its own: cancelling the caller cancels the sleep or the poll in flight
and nothing is left behind. Transient errors of a single poll are retried inside the client's `_call`; an
error that reaches this loop is final and propagates.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field

from .clock import Clock
from .errors import PollDeadlineExceeded, TaskNotFound
from .models import TaskResult, TaskStatus

__all__ = ["DEFAULT_DEADLINE", "LearnedSchedule", "PollOutcome", "PollSchedule", "ProgressCallback", "wait"]

log = logging.getLogger("api_client")

#: Called with the new status each time it changes (in_queue -> generating -> done).
ProgressCallback = Callable[[TaskStatus], Awaitable[None]]

DEFAULT_DEADLINE = 300.0


@dataclass(frozen=True)
class PollOutcome:
    """How `wait()` saw a task that ended `done`, in seconds since `wait()` began: the basis of learning.

    The finish itself is never seen, only bounded: the task was not done when the last other reading was
    asked for (`pending_until`, None when the very first reading was already `done`) and was done by the
    time the `done` reading came back (`done_by`)."""

    pending_until: float | None
    done_by: float
    polls: int


@dataclass(frozen=True)
class PollSchedule:
    """Delays between polls: `first_delay`, then times `factor` each poll, capped at `max_delay`."""

    first_delay: float = 1.5
    factor: float = 1.5
    max_delay: float = 5.0
    not_found_grace: float = 10.0

    def __post_init__(self) -> None:
        if self.first_delay < 0 or self.max_delay <= 0 or self.factor < 1 or self.not_found_grace < 0:
            raise ValueError(f"invalid poll schedule: {self!r}")

    def delays(self) -> Iterator[float]:
        """The endless sequence of sleeps before each poll, the first one included."""
        delay = self.first_delay
        while True:
            yield min(delay, self.max_delay)
            delay = min(delay * self.factor, self.max_delay)

    async def finished(self, outcome: PollOutcome) -> None:
        """Called by `wait()` when the task reads `done`, before it returns; a fixed schedule ignores it."""


#: Told how a task was seen (see LearnedSchedule.on_finished).
FinishedCallback = Callable[[PollOutcome], Awaitable[None]]


@dataclass(frozen=True)
class LearnedSchedule(PollSchedule):
    """Polls at planned `times` (seconds since the submit, ascending), then every `max_delay`; with no
    times it is the fixed schedule of its base fields. `elapsed` is how long ago the task was submitted
    when `wait()` starts, so a wait that begins late still polls at the planned moments (and at once when
    it began after some of them). `on_finished` receives the `PollOutcome`: that is how it learns.

    `replan`, when given, returns the plan as known *now* (same shape as `times`), asked before every poll
    after the first: when it starts later than this task's next poll, other tasks have shown the service
    slower than planned, and the task moves to it instead of backing off through polls that are now surely
    too early. Smaller changes are ignored: a dense window re-aligned to every re-estimate would poll at
    uneven, on average longer, intervals. Two polls are never closer than `min_gap`.

    It is a `PollSchedule`, so `PortraitClient.wait(schedule=...)` takes it unchanged, and the deadline
    and not_found grace (`not_found_grace`, the base field) apply exactly as for the fixed one.
    """

    times: tuple[float, ...] = ()
    elapsed: float = 0.0
    min_gap: float = 0.0
    on_finished: FinishedCallback | None = field(default=None, compare=False, repr=False)
    replan: Callable[[], tuple[float, ...]] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        if (
            self.elapsed < 0
            or self.min_gap < 0
            or any(t < 0 for t in self.times)
            or list(self.times) != sorted(self.times)
        ):
            raise ValueError(f"invalid learned schedule: {self!r}")

    def delays(self) -> Iterator[float]:
        if not self.times:
            yield from super().delays()
            return
        # Planned times are sums of floats: a hair of tolerance keeps a dense poll exactly min_gap on,
        # and a hair of progress keeps a poll from being planned twice.
        gap = max(self.min_gap - 1e-9, 1e-6)
        previous, after, polled = self.elapsed, self.elapsed, False
        if self.times[0] < previous:  # the wait began after a planned poll: that poll is overdue
            yield 0.0
            after, polled = previous + gap, True
        plan = self.times
        while True:
            at = next((t for t in plan if t >= after), previous + self.max_delay)
            if self.replan is not None and polled:
                newer = self.replan()
                if newer and newer[0] > at:  # others showed the service slower: skip what is surely early
                    plan, at = newer, newer[0]
            yield at - previous
            previous, after, polled = at, at + gap, True

    async def finished(self, outcome: PollOutcome) -> None:
        if self.on_finished is not None:
            await self.on_finished(outcome)


async def wait(
    poll: Callable[[], Awaitable[TaskResult]],
    *,
    clock: Clock,
    deadline: float = DEFAULT_DEADLINE,
    schedule: PollSchedule | None = None,
    on_progress: ProgressCallback | None = None,
    task_id: str = "",
) -> TaskResult:
    """Poll until the task is DONE and return that result.

    Raises TaskNotFound once `not_found` has lasted `not_found_grace` seconds, PollDeadlineExceeded when
    `deadline` seconds have passed without a result (one last poll happens at the deadline), and whatever
    `poll` raises (a risk rejection, an auth error, a transient error that outlived the retries).

    `on_progress` sees in_queue / generating / done. A not_found reading is not reported: it is either the
    brief glitch after a submit or, after the grace period, an error.

    Once the task is done, `schedule.finished(...)` hears how it was seen (a learning schedule records it);
    a failure there is logged and the result returned all the same.
    """
    schedule = schedule or PollSchedule()
    started = clock.monotonic()
    gives_up_at = started + deadline
    reported: TaskStatus | None = None
    not_found_since: float | None = None
    pending_until: float | None = None
    polls = 0
    for delay in schedule.delays():
        now = clock.monotonic()
        if now >= gives_up_at and polls > 0:
            raise PollDeadlineExceeded(
                f"task {task_id} not done after {deadline:g} s ({polls} polls); it may still finish upstream"
            )
        await clock.sleep(min(delay, max(0.0, gives_up_at - now)))
        asked_at = clock.monotonic()
        result = await poll()
        polls += 1
        status = result.status
        if status is not TaskStatus.DONE:
            pending_until = asked_at - started
        if status is TaskStatus.NOT_FOUND:
            seen_at = clock.monotonic()
            not_found_since = seen_at if not_found_since is None else not_found_since
            if seen_at - not_found_since >= schedule.not_found_grace:
                raise TaskNotFound(
                    f"task {task_id} read not_found for {seen_at - not_found_since:g} s "
                    "(unknown id, or expired after 12 h)"
                )
            continue
        not_found_since = None
        if status is not reported:
            reported = status
            await _report(on_progress, status, task_id)
        if status is TaskStatus.DONE:
            outcome = PollOutcome(pending_until, clock.monotonic() - started, polls)
            await _finished(schedule, outcome, task_id)
            return result
    raise AssertionError("unreachable: the schedule is endless")  # pragma: no cover


async def _report(on_progress: ProgressCallback | None, status: TaskStatus, task_id: str) -> None:
    """A failing progress display (e.g. a chat edit) must not lose a task that is already paid for."""
    if on_progress is None:
        return
    try:
        await on_progress(status)
    except Exception:
        log.exception("progress callback failed", extra={"task_id": task_id, "status": str(status)})


async def _finished(schedule: PollSchedule, outcome: PollOutcome, task_id: str) -> None:
    """Learning is an optimisation: losing it must not lose a result that is already paid for."""
    try:
        await schedule.finished(outcome)
    except Exception:
        log.exception("poll schedule failed to record a finished task", extra={"task_id": task_id})
