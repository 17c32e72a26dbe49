"""The job runner: decides *when* each unfinished task is worked on, and by whom.

Handlers only create a task (quota reserved) and call `enqueue()`; the steps of a generation are
`bot.jobs.lifecycle`, what an ending means is `bot.jobs.outcomes`. This module keeps the scheduling rules:
- A bounded dispatcher: at most MAX_CONCURRENT_TASKS tasks hold an upstream slot (submit until a poll reads
  the result done) and at most `extra_limit` more are being delivered, so the upstream sits exactly at its
  limit while results go out to Telegram. Everything else waits in the database (a restart keeps every
  request and its order), seen through `bot.jobs.queue.WaitQueue`: first come first served, private
  chats and groups taking turns. 10,000 waiting requests are 10,000 small entries, not 10,000
  coroutines, and hold no lease. `bot.jobs.announcer` tells them their place.
- `stop()` cancels the asyncio work, never the database state (the next `start()` picks it up); a photo
  being sent gets STOP_GRACE_SECONDS to finish, so a clean shutdown leaves no uncertain delivery.
- Leases let several workers share the table (owner `WORKER_ID`, stable across restarts, so a killed bot
  takes its own tasks back at once). A queued task's lease comes with its move to `submitting`; resumed
  work claims first. The idle loop renews due leases and stops local work on a task a person cancelled
  elsewhere (the admin CLI) or another worker took over.
- A task backing off keeps its place; the line is re-read from the table every RESYNC_SECONDS.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Final

from api_client.client import PortraitClient
from api_client.clock import Clock, SystemClock
from api_client.errors import PortraitAPIError
from api_client.learning import PollingLearner
from bot.config import Settings
from bot.jobs.announcer import Place, QueueAnnouncer, WaitEstimates
from bot.jobs.delivery import ResultDelivery
from bot.jobs.deps import JobDeps
from bot.jobs.fault_hooks import scaled
from bot.jobs.lifecycle import BUSY_BACKOFF_SECONDS, MAX_BUSY_RETRIES, Lifecycle
from bot.jobs.notifier import Closeable, DeliveryUncertain, Notifier, RecipientGone
from bot.jobs.outcomes import USER_REASON, CancelOutcome, Outcomes, cancel_notice, cancellable, started
from bot.jobs.params import PromptTooLong
from bot.jobs.places import UpstreamPlace
from bot.jobs.prepared import PreparedCache
from bot.jobs.queue import WaitQueue, entry_of
from bot.jobs.task_store import ShieldedTasks
from bot.ops import metrics
from storage import TERMINAL, UNAVAILABLE, IllegalTransition, LeaseLost, QueueEntry, Store, Task, TaskState

__all__ = ["BUSY_BACKOFF_SECONDS", "LEASE_SECONDS", "MAX_BUSY_RETRIES", "CancelOutcome", "JobRunner"]

log = logging.getLogger(__name__)

#: Lease length and the idle loop's period (times PORTRAIT_BOT_TIME_SCALE, a test hook: fault_hooks.py).
LEASE_SECONDS: Final = scaled(90.0)
SCAN_INTERVAL_SECONDS: Final = scaled(5.0)
#: How often the line is re-read from the table (one light query over the unfinished-tasks index).
RESYNC_SECONDS: Final = 60.0
#: Deliveries (no upstream slot) beside MAX_CONCURRENT_TASKS: twice as many, at least MIN_EXTRA (each holds
#: only its image while Telegram's flood control makes it wait; fewer would stall the upstream).
MIN_EXTRA: Final = 2
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
        prepared: PreparedCache | None = None,
    ) -> None:
        """`prepared`: the prepared-image cache the upload check fills (bot.jobs.prepared)."""
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
            self._deps, client, settings, self._delivery, self._outcomes, learner=learner, prepared=prepared
        )
        self.upstream_limit = settings.max_concurrent_tasks
        self.extra_limit = max(MIN_EXTRA, 2 * settings.max_concurrent_tasks)
        self._upstream: set[int] = set()  # holding (or about to take) an upstream slot
        self._queue = WaitQueue()
        self._estimates = WaitEstimates(learner, self.upstream_limit)
        self.announcer = QueueAnnouncer(
            self._queue, notifier, self._clock, estimates=self._estimates, lang=self._outcomes.lang_of,
            interval=settings.status_edit_interval, group_interval=settings.group_status_edit_interval,
        )  # fmt: skip
        self._halted: set[int] = set()  # work stopped on purpose: not put back in line when it ends
        self._lookups: set[asyncio.Task[None]] = set()
        self._synced_at = float("-inf")
        self._loop_task: asyncio.Task[None] | None = None
        self._stopping = False
        #: `run --no-jobs`: never work a task here (start() and enqueue() do nothing); a worker scans for it.
        self.takes_jobs = settings.run_jobs

    async def start(self) -> None:
        """Resume what a previous run left, then keep taking work until stop()."""
        if not self.takes_jobs:
            log.info("this process runs no jobs (--no-jobs): a worker process picks its tasks up")
            return
        self._stopping = False
        await self.resume()
        self._loop_task = asyncio.create_task(self._loop(), name="job-runner")
        self.announcer.start()

    async def stop(self) -> None:
        """Stop taking work and cancel running steps without touching their state (the next start resumes)."""
        self._stopping = True
        await self.announcer.stop()
        for job in [self._loop_task, *self._lookups]:
            if job is not None:
                job.cancel()
                await asyncio.gather(job, return_exceptions=True)
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
        """Load every unfinished task into the line and start what fits; returns how many were started."""
        await self._sync()
        started = self._pump()
        if started or len(self._queue):
            log.info("resuming: %d task(s) started, %d waiting", started, len(self._queue))
        return started

    def enqueue(self, task: Task | int, *, shown: Place | None = None) -> None:
        """Put a new task in line (started at once if a slot is free); `shown`: the place its first status
        shows. With an id only, the row is read first."""
        if self._stopping or not self.takes_jobs:
            return
        if isinstance(task, int):
            lookup = asyncio.create_task(self._enqueue_id(task), name=f"enqueue-{task}")
            self._lookups.add(lookup)
            lookup.add_done_callback(self._lookups.discard)
            return
        if shown is not None:
            self.announcer.shown(task.id, shown)
        self._put_back(entry_of(task))
        self._pump()

    def estimate_new(self, chat_id: int) -> Place | None:
        """The place and wait a task created now in `chat_id` would get; None when it starts at once."""
        free = max(0, self.upstream_limit - len(self._upstream))
        position = self._queue.position_for_new(chat_id) - free
        return self._estimates.place(position) if position > 0 else None

    async def run_until_idle(self) -> None:
        """Burst mode (tests, demo): work until nothing is runnable, sleeping the clock through back-offs."""
        previous: set[tuple[int, str, float | None]] | None = None
        while True:
            if self._lookups:
                await asyncio.wait(list(self._lookups))
            await self._sync()
            self._pump()
            if self._running:
                await asyncio.wait(list(self._running.values()))
                previous = None
                continue
            now = self._clock.now()
            pending = [e for e in await self._tasks.queue_entries() if not self._leased_elsewhere(e)]
            snapshot = {(e.id, e.state.value, e.next_poll_at) for e in pending}
            waits = [e.next_poll_at for e in pending if e.next_poll_at and e.next_poll_at > now]
            if not waits or snapshot == previous:
                return
            previous = snapshot
            await self._clock.sleep(min(waits) - now)

    async def cancel(self, task_id: int, *, reason: str = "user") -> CancelOutcome:
        """CANCELLED (refunded, or spent if the service had it), STARTED (a user's cancel after the submit:
        billed anyway, so it goes on and arrives) or TOO_LATE; the user is told once (`cancel_notice`)."""
        task = await self._tasks.get(task_id)
        if task is None or not cancellable(task) or task_id in self._delivery.sending:
            return CancelOutcome.TOO_LATE
        if reason == USER_REASON and started(task):
            return CancelOutcome.STARTED
        self._halted.add(task_id)
        try:
            return await self._cancel(task_id, reason)
        finally:
            self._halted.discard(task_id)

    async def _cancel(self, task_id: int, reason: str) -> CancelOutcome:
        self._queue.remove(task_id)
        await self._stop_work(task_id)
        task = await self._tasks.get(task_id)
        if task is None or not cancellable(task):
            if task is not None and task.state not in TERMINAL:
                self._spawn(task.id, upstream=False)  # it reached delivering meanwhile: let it finish
            return CancelOutcome.TOO_LATE
        try:
            # No `expect` and no fence: a person asked, whoever holds the lease; ALLOWED decides. A unit the
            # service is billing stays spent.
            task = await self._tasks.transition(
                task_id, TaskState.CANCELLED, error_code=f"cancelled:{reason}", spend=True, fenced=False
            )
        except IllegalTransition:  # it reached delivering meanwhile: let it finish
            current = await self._tasks.get(task_id)
            if current is not None and current.state not in TERMINAL:
                self._spawn(current.id, upstream=False)
            return CancelOutcome.TOO_LATE
        log.info("task %d cancelled (%s, unit %s)", task_id, reason, task.reservation)
        self.announcer.forget(task_id)
        await self._outcomes.tell(task, cancel_notice(reason))
        self._outcomes.forget(task_id)
        return CancelOutcome.CANCELLED

    @property
    def started(self) -> bool:  # taking work (between start() and stop()): readiness checks ask
        return self._loop_task is not None and not self._loop_task.done() and not self._stopping

    @property
    def running(self) -> frozenset[int]:  # ids of the tasks this runner is working on now
        return frozenset(self._running)

    async def _loop(self) -> None:  # renews our leases, starts ended back-offs, re-reads the line
        while not self._stopping:
            await asyncio.sleep(SCAN_INTERVAL_SECONDS)
            try:
                await self._renew_leases()
                if self._clock.monotonic() - self._synced_at >= RESYNC_SECONDS:
                    await self._sync()
                elif not len(self._queue) and len(self._upstream) < self.upstream_limit:
                    # Idle here: other workers' and the admin CLI's tasks, oldest first, one small query.
                    for entry in await self._tasks.next_runnable(self.upstream_limit):
                        self._put_back(entry)
                self._pump()
            except Exception:
                log.exception("scanning for runnable tasks failed")

    async def _sync(self) -> None:  # light rows over the unfinished-tasks index
        entries = await self._tasks.queue_entries()
        mine = [e for e in entries if e.id not in self._running and not self._leased_elsewhere(e)]
        self._queue.replace_all(mine)
        self._synced_at = self._clock.monotonic()

    def _pump(self) -> int:
        """Start waiting tasks while slots are free: the dispatcher's one decision point."""
        started = 0
        now = self._clock.now()
        while not self._stopping and len(self._running) < self.upstream_limit + self.extra_limit:
            pick = self._queue.pop_next(now, upstream_free=len(self._upstream) < self.upstream_limit)
            if pick is None:
                break
            started += self._spawn(pick.entry.id, upstream=pick.upstream)
        return started

    def _put_back(self, entry: QueueEntry) -> None:
        if entry.id not in self._running and not self._leased_elsewhere(entry):
            self._queue.add(entry)

    async def _enqueue_id(self, task_id: int) -> None:
        task = await self._tasks.get(task_id)
        if task is not None and task.state not in TERMINAL and not self._stopping:
            self.enqueue(task)

    async def _renew_leases(self) -> None:
        """Read each running task (no write); renew the leases that are due (RENEW_AFTER_SECONDS)."""
        for task_id in list(self._running):
            task = await self._tasks.get(task_id)
            if task is None:
                continue
            if task_id in self._delivery.sending:
                continue
            if task.state is TaskState.CANCELLED:  # a person ended it elsewhere (the admin CLI's ban)
                await self._drop(task)
                continue
            if task.state in TERMINAL:
                continue  # ended by its own job, which is wrapping up (the final edit): leave it be
            if self._leased_elsewhere(task):  # before our claim it was never ours: nothing was lost
                if self._tasks.holds(task_id):
                    log.warning("task %d: lease taken over by another worker; stopping here", task_id)
                    metrics.lease_lost()
                await self._stop_work(task_id)
                continue
            if not self._tasks.holds(task_id):
                continue  # a queued task before its submit holds no lease yet
            try:
                await self._tasks.hold(task_id)
            except LeaseLost:
                if task_id not in self._delivery.sending:
                    log.warning("task %d: lease lost to another worker; stopping here", task_id)
                    metrics.lease_lost()
                    await self._stop_work(task_id)

    async def _stop_work(self, task_id: int) -> None:
        work = self._running.get(task_id)
        if work is not None:
            self._halted.add(task_id)
            try:
                work.cancel()
                await asyncio.gather(work, return_exceptions=True)
            finally:
                self._halted.discard(task_id)
            self._running.pop(task_id, None)

    async def _drop(self, task: Task) -> None:
        """Ended elsewhere (the admin CLI's /ban): stop here, no transition (see Outcomes.ended_elsewhere)."""
        await self._stop_work(task.id)
        self.announcer.forget(task.id)
        await self._outcomes.ended_elsewhere(task)

    def _leased_elsewhere(self, task: Task | QueueEntry) -> bool:
        return (
            task.lease_owner is not None
            and task.lease_owner != self.owner
            and (task.lease_until or 0.0) > self._clock.now()
        )

    def _spawn(self, task_id: int, *, upstream: bool) -> bool:
        if self._stopping or task_id in self._running:
            return False
        if upstream:
            self._upstream.add(task_id)
        job = asyncio.create_task(self._work(task_id), name=f"task-{task_id}")
        self._running[task_id] = job
        job.add_done_callback(lambda done: self._finished(task_id, done))
        return True

    def _finished(self, task_id: int, job: asyncio.Task[None]) -> None:
        if self._running.get(task_id) is job:
            del self._running[task_id]
        self._upstream.discard(task_id)
        self._queue.finished(task_id)
        self._pump()

    def _leave_upstream(self, task_id: int) -> None:
        """The task gave its upstream slot back (result in hand, or it waits): the next one may start."""
        self._upstream.discard(task_id)
        self._pump()

    async def _work(self, task_id: int) -> None:
        try:
            await self._run(task_id)
        except IllegalTransition as exc:
            log.info("task %d was moved by someone else: %s", task_id, exc)
        except UNAVAILABLE:  # the database, not the task: leave it as stored; a later scan retries
            log.warning("task %d: the store is unavailable; retrying later", task_id, exc_info=True)
        except (PortraitAPIError, PromptTooLong, DeliveryUncertain, RecipientGone) as exc:
            await self._outcomes.end(task_id, exc)
        except Exception as exc:
            await self._outcomes.crashed(task_id, exc)
        finally:
            self._upstream.discard(task_id)
            with contextlib.suppress(*UNAVAILABLE):  # the lease then simply runs out
                await self._tasks.release(task_id)  # a no-op unless we hold it
                await self._requeue(task_id)

    async def _run(self, task_id: int) -> None:
        task = await self._tasks.get(task_id)
        if task is None or task.state in TERMINAL or self._leased_elsewhere(task):
            return
        if (task.next_poll_at or 0.0) > self._clock.now():  # backing off
            return
        # A queued task takes its lease with its move to `submitting`; resumed work claims it first.
        if task.state is not TaskState.QUEUED and not await self._tasks.claim(task_id):
            return
        if task.lease_owner not in (None, self.owner):  # a dead (or stalled) worker's task
            metrics.lease_taken()
        if task.state is TaskState.DELIVERING:
            self._leave_upstream(task_id)
            ready = await self._lifecycle.upstream(task)
        else:  # given back as soon as a poll reads the result done, or the part ends (bot.jobs.places)
            place = UpstreamPlace(self._client.task_slot(), lambda: self._leave_upstream(task_id))
            async with place:
                ready = await self._lifecycle.upstream(task, on_done=place.free)
        if ready is not None:
            await self._lifecycle.deliver(ready)

    async def _requeue(self, task_id: int) -> None:
        """The work ended: a back-off goes back in line (never a retry at once); an ended one is forgotten."""
        if self._stopping or task_id in self._halted:
            return
        task = await self._tasks.get(task_id)
        if task is None or task.state in TERMINAL:
            self.announcer.forget(task_id)
        elif (task.next_poll_at or 0.0) > self._clock.now():  # else (store trouble...) the next re-read
            self._running.pop(task_id, None)  # before the done callback: the line may take it at once
            self._put_back(entry_of(task))
