"""The job runner: decides *when* each unfinished task is worked on, and by whom.

Handlers only create a task (quota reserved) and call `enqueue()`; the steps of a generation are
`bot.jobs.lifecycle`, what an ending means is `bot.jobs.outcomes`. This module keeps the scheduling rules:
- `stop()` cancels the asyncio work but never the database state; the next `start()` picks it up. A photo
  being sent is given STOP_GRACE_SECONDS to finish, so a clean shutdown never leaves an uncertain delivery.
- Leases (`store.tasks.claim`) let several workers share the table; the upstream concurrency limit is the
  client's `task_slot()`, taken before the lease so waiting for a slot never burns a lease.
- The lease owner is the worker id (`WORKER_ID`, default the host name), stable across restarts, so a bot
  killed with `kill -9` takes its own tasks back the moment it starts again. Leases are short and renewed
  while the work runs (`LEASE_SECONDS`, renewed every `SCAN_INTERVAL_SECONDS`), so another worker takes
  over a dead worker's tasks within a minute and a half, not after the whole task deadline. A renewal
  that finds the task ended elsewhere (the admin CLI) stops the local work and the status message.
- A task waiting out a back-off (`next_poll_at` in the future) is not started before then.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from enum import StrEnum
from typing import Final

from api_client.client import PortraitClient
from api_client.clock import Clock, SystemClock
from api_client.errors import PortraitAPIError
from api_client.learning import PollingLearner
from bot.config import Settings
from bot.jobs.delivery import ResultDelivery
from bot.jobs.deps import JobDeps
from bot.jobs.fault_hooks import scaled
from bot.jobs.lifecycle import BUSY_BACKOFF_SECONDS, MAX_BUSY_RETRIES, Lifecycle
from bot.jobs.notifier import Closeable, DeliveryUncertain, Notifier, RecipientGone
from bot.jobs.outcomes import USER_REASON, Outcomes, cancel_notice
from bot.jobs.params import PromptTooLong
from bot.jobs.task_store import ShieldedTasks
from bot.ops import metrics
from storage import ALLOWED, TERMINAL, UNAVAILABLE, IllegalTransition, RetryReason, Store, Task, TaskState

__all__ = ["BUSY_BACKOFF_SECONDS", "LEASE_SECONDS", "MAX_BUSY_RETRIES", "CancelOutcome", "JobRunner"]

log = logging.getLogger(__name__)

#: How long a lease lasts unless renewed, and how often the idle loop renews ours and looks at the table
#: (both times PORTRAIT_BOT_TIME_SCALE, a test hook: bot/jobs/fault_hooks.py).
LEASE_SECONDS: Final = scaled(90.0)
SCAN_INTERVAL_SECONDS: Final = scaled(5.0)
#: stop() lets a photo that is being sent finish, so a clean shutdown never leaves an uncertain delivery.
STOP_GRACE_SECONDS: Final = 10.0


class JobRunner:
    """Schedules tasks onto the lifecycle; see the module docstring for the rules it keeps."""

    def __init__(
        self,
        store: Store,
        client: PortraitClient,
        notifier: Notifier,
        *,
        settings: Settings,
        clock: Clock | None = None,
        owner: str | None = None,
        learner: PollingLearner | None = None,
    ) -> None:
        self._clock: Clock = clock if clock is not None else SystemClock()
        self.owner = owner or settings.worker_id
        tasks = ShieldedTasks(
            store, owner=self.owner, lease_seconds=settings.task_lease_seconds, clock=self._clock
        )
        self._deps = JobDeps(tasks, notifier, self._clock)
        self._tasks = self._deps.tasks
        self._notifier = notifier
        self._client = client
        self._running: dict[int, asyncio.Task[None]] = {}
        self._outcomes = Outcomes(self._deps)
        self._delivery = ResultDelivery(self._deps)
        self._lifecycle = Lifecycle(
            self._deps, client, settings, self._delivery, self._outcomes, learner=learner
        )
        self._loop_task: asyncio.Task[None] | None = None
        self._stopping = False
        #: `run --no-jobs`: never work a task here (start() and enqueue() do nothing); a worker scans for it.
        self.takes_jobs = settings.run_jobs

    # -- lifecycle of the runner -------------------------------------------------------------------------

    async def start(self) -> None:
        """Resume what a previous run left, then keep taking work until stop()."""
        if not self.takes_jobs:
            log.info("this process runs no jobs (--no-jobs): a worker process picks its tasks up")
            return
        self._stopping = False
        await self.resume()
        self._loop_task = asyncio.create_task(self._loop(), name="job-runner")

    async def stop(self) -> None:
        """Stop taking work and cancel running steps without touching their state (the next start resumes)."""
        self._stopping = True
        if self._loop_task is not None:
            self._loop_task.cancel()
            await asyncio.gather(self._loop_task, return_exceptions=True)
            self._loop_task = None
        sending = [self._running[i] for i in self._delivery.sending if i in self._running]
        if sending:
            await asyncio.wait(sending, timeout=STOP_GRACE_SECONDS)
        work = list(self._running.values())
        for job in work:
            job.cancel()
        await asyncio.gather(*work, return_exceptions=True)
        if isinstance(self._notifier, Closeable):
            await self._notifier.aclose()

    async def resume(self) -> int:
        """Pick up every unfinished task in the table; returns how many were started."""
        started = await self._scan()
        if started:
            log.info("resuming %d unfinished task(s)", started)
        return started

    def enqueue(self, task_id: int) -> None:
        """A handler created `task_id`: start on it now rather than at the next scan."""
        if not self._stopping and self.takes_jobs:
            self._spawn(task_id)

    async def run_until_idle(self) -> None:
        """Burst mode (tests, demo): work until nothing is runnable, sleeping the clock through back-offs."""
        previous: set[tuple[int, str, float]] | None = None
        while True:
            await self._scan()
            if self._running:
                await asyncio.wait(list(self._running.values()))
                previous = None
                continue
            pending = [t for t in await self._tasks.unfinished() if not self._leased_elsewhere(t)]
            snapshot = {(t.id, t.state.value, t.updated_at) for t in pending}
            waits = [t.next_poll_at for t in pending if t.next_poll_at and t.next_poll_at > self._clock.now()]
            if not waits or snapshot == previous:
                return
            previous = snapshot
            await self._clock.sleep(min(waits) - self._clock.now())

    async def cancel(self, task_id: int, *, reason: str = "user") -> CancelOutcome:
        """Stop a task: CANCELLED (refunded, or spent when the service had accepted it), STARTED (a user's
        cancel after the submit: the service bills it whatever we do, so it goes on and arrives), TOO_LATE
        (finished, or its photo is being sent).

        The user is told once, in the words for `reason` (see `cancel_notice`): a ban says "banned" in
        place of "cancelled", so a banned user gets one clear message, not two.
        """
        task = await self._tasks.get(task_id)
        if task is None or not _cancellable(task) or task_id in self._delivery.sending:
            return CancelOutcome.TOO_LATE
        if reason == USER_REASON and _started(task):
            return CancelOutcome.STARTED
        work = self._running.get(task_id)
        if work is not None:
            work.cancel()
            await asyncio.gather(work, return_exceptions=True)
        task = await self._tasks.get(task_id)
        if task is None or not _cancellable(task):
            if task is not None and task.state not in TERMINAL:
                self._spawn(task_id)  # it reached delivering meanwhile: let it finish
            return CancelOutcome.TOO_LATE
        try:
            # No `expect` and no fence: a person asked, whoever holds the lease; ALLOWED decides. A unit the
            # service is billing stays spent.
            task = await self._tasks.transition(
                task_id, TaskState.CANCELLED, error_code=f"cancelled:{reason}", spend=True, fenced=False
            )
        except IllegalTransition:  # it reached delivering meanwhile: let it finish
            self._spawn(task_id)
            return CancelOutcome.TOO_LATE
        log.info("task %d cancelled (%s, unit %s)", task_id, reason, task.reservation)
        await self._outcomes.tell(task, cancel_notice(reason))
        self._outcomes.forget(task_id)
        return CancelOutcome.CANCELLED

    @property
    def started(self) -> bool:
        """Taking work (between start() and stop()); readiness checks ask it."""
        return self._loop_task is not None and not self._loop_task.done() and not self._stopping

    @property
    def running(self) -> frozenset[int]:
        """Ids of the tasks this runner is working on right now."""
        return frozenset(self._running)

    # -- scheduling --------------------------------------------------------------------------------------

    async def _loop(self) -> None:
        """enqueue() starts new work at once; this renews our leases and picks up back-offs that ended and
        leases that expired."""
        while not self._stopping:
            await asyncio.sleep(SCAN_INTERVAL_SECONDS)
            try:
                await self._renew_leases()
                await self._scan()
            except Exception:
                log.exception("scanning for runnable tasks failed")

    async def _renew_leases(self) -> None:
        for task_id in list(self._running):
            if await self._tasks.claim(task_id):
                continue
            task = await self._tasks.get(task_id)
            if task is None or task_id in self._delivery.sending:
                continue
            if task.state is TaskState.CANCELLED:  # a person ended it elsewhere (the admin CLI's ban)
                await self._drop(task)
            elif task.state in TERMINAL:
                continue  # ended by its own job, which is wrapping up (the final edit): leave it be
            else:  # another worker has it: stop here at once
                log.warning("task %d: lease taken over by another worker; stopping here", task_id)
                metrics.lease_lost()
                await self._stop_work(task_id)

    async def _stop_work(self, task_id: int) -> None:
        work = self._running.pop(task_id, None)
        if work is not None:
            work.cancel()
            await asyncio.gather(work, return_exceptions=True)

    async def _drop(self, task: Task) -> None:
        """A task ended elsewhere (the admin CLI's /ban cancels in the database): stop our work on it with no
        transition (the one that ended it refunded), and end its status message on "stopped"."""
        await self._stop_work(task.id)
        log.info("task %d was ended elsewhere (%s); stopped here", task.id, task.state.value)
        try:
            if not self._outcomes.refused(task):
                lang = await self._outcomes.lang(task)
                elapsed = self._clock.now() - task.created_at
                await self._notifier.status(task, "stopped", elapsed, lang=lang, final=True)
        except RecipientGone as gone:
            self._outcomes.mark_gone(gone.chat_id)
        except Exception:
            log.warning("task %d: status update failed", task.id, exc_info=True)
        finally:
            self._outcomes.forget(task.id)

    async def _scan(self) -> int:
        started = 0
        for task in await self._tasks.unfinished():
            if task.id in self._running or self._leased_elsewhere(task) or self._backing_off(task):
                continue
            started += self._spawn(task.id)
        return started

    def _leased_elsewhere(self, task: Task) -> bool:
        return (
            task.lease_owner is not None
            and task.lease_owner != self.owner
            and (task.lease_until or 0.0) > self._clock.now()
        )

    def _backing_off(self, task: Task) -> bool:
        return task.next_poll_at is not None and task.next_poll_at > self._clock.now()

    def _spawn(self, task_id: int) -> bool:
        if self._stopping or task_id in self._running:
            return False
        job = asyncio.create_task(self._work(task_id), name=f"task-{task_id}")
        self._running[task_id] = job
        job.add_done_callback(lambda _: self._running.pop(task_id, None))
        return True

    async def _work(self, task_id: int) -> None:
        task = await self._tasks.get(task_id)
        if task is None or task.state in TERMINAL or self._backing_off(task):
            return
        upstream = task.state is not TaskState.DELIVERING
        async with self._client.task_slot() if upstream else contextlib.nullcontext():
            try:  # the claim is inside: a stop() landing on it must still give the lease back
                if await self._tasks.claim(task_id):
                    if task.lease_owner not in (None, self.owner):  # a dead (or stalled) worker's task
                        metrics.lease_taken()
                    await self._drive(task_id)
            except IllegalTransition as exc:
                log.info("task %d was moved by someone else: %s", task_id, exc)
            except UNAVAILABLE:  # the database, not the task: leave it as stored; a later scan retries
                log.warning("task %d: the store is unavailable; retrying later", task_id, exc_info=True)
            except (PortraitAPIError, PromptTooLong, DeliveryUncertain, RecipientGone) as exc:
                await self._outcomes.end(task_id, exc)
            except Exception as exc:
                await self._outcomes.crashed(task_id, exc)
            finally:
                with contextlib.suppress(*UNAVAILABLE):  # the lease then simply runs out
                    await self._tasks.release(task_id)  # a no-op unless we hold it

    async def _drive(self, task_id: int) -> None:
        task = await self._tasks.get(task_id)
        if task is None:
            raise IllegalTransition(task_id, "missing", "any")
        await self._lifecycle.drive(task)


def _cancellable(task: Task) -> bool:
    return TaskState.CANCELLED in ALLOWED[task.state]


def _started(task: Task) -> bool:
    """The service has (or may have) the task: it was accepted, or its submit may be on the way. A submit
    the service definitely refused (rate limited, waiting to be resent) has not started anything."""
    if task.upstream_task_id is not None:
        return True
    return task.state is TaskState.SUBMITTING and task.retry_reason is not RetryReason.RATE_LIMITED


class CancelOutcome(StrEnum):
    CANCELLED = "cancelled"
    STARTED = "started"
    TOO_LATE = "too_late"
