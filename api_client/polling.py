"""Waiting for a task: when to poll, when to give up, what to tell the caller on the way.

api.md: generation takes ~5-20 s, so poll first after ~1-2 s and back off to ~5 s; a fresh task may read
`not_found` for a moment, so not_found is final only after a grace period; tasks expire after 12 h.

Everything waits on the injected `Clock`, so tests with `FakeClock` run instantly and can assert the exact
sleeps. The loop creates no tasks of its own: cancelling the caller cancels the sleep or the poll in flight
and nothing is left behind. Transient errors of a single poll are retried inside the client's `_call`; an
error that reaches this loop is final and propagates.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass

from .clock import Clock
from .errors import PollDeadlineExceeded, TaskNotFound
from .models import TaskResult, TaskStatus

__all__ = ["DEFAULT_DEADLINE", "PollSchedule", "ProgressCallback", "wait"]

log = logging.getLogger("api_client")

#: Called with the new status each time it changes (in_queue -> generating -> done).
ProgressCallback = Callable[[TaskStatus], Awaitable[None]]

DEFAULT_DEADLINE = 300.0


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
    """
    schedule = schedule or PollSchedule()
    started = clock.monotonic()
    gives_up_at = started + deadline
    reported: TaskStatus | None = None
    not_found_since: float | None = None
    polls = 0
    for delay in schedule.delays():
        now = clock.monotonic()
        if now >= gives_up_at and polls > 0:
            raise PollDeadlineExceeded(
                f"task {task_id} not done after {deadline:g} s ({polls} polls); it may still finish upstream"
            )
        await clock.sleep(min(delay, max(0.0, gives_up_at - now)))
        result = await poll()
        polls += 1
        status = result.status
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
