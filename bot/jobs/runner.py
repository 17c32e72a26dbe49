"""The job runner: takes queued tasks from storage and drives each to exactly one terminal state.

Handlers only create a task (quota reserved) and call `enqueue()`. Everything slow happens here, as steps
that each end in one checked storage transition, so a restart at any point resumes from the database:

    queued --prepare+submit--> submitting --answer--> submitted --> polling --result--> delivering --> done
                                     \\ any failure: failed / expired / cancelled (the transition refunds)

Rules that are easy to get wrong, and why:
- A submit is never repeated unless we *know* it did not reach the service: a task found in `submitting`
  after a restart is failed with "submit_unknown" (refunded, user told), because resending may bill twice.
  The one known-safe case is a definite rate-limit answer, marked by `last_status="rate_limited"`.
- Delivery is at most once, and nothing after the send may fail the task: see `bot.jobs.finishing`
  (its marks).
- Polling is safe to resend, so an outage while polling (rate limit, 5xx, transport error that outlived
  the client's retries) re-queues the task with a back-off (MAX_BUSY_RETRIES times, "retrying" shown)
  instead of failing and refunding a task the service will still finish and bill. A submit never does.
- The poll deadline runs from the submit (stored in `next_poll_at`, which a back-off moves on), never from
  creation: time spent waiting for an upstream slot must not expire a task the service will bill.
- `stop()` cancels the asyncio work but never the database state; the next `start()` picks it up.
- Leases (`store.tasks.claim`) let several workers share the table; the upstream concurrency limit is the
  client's `task_slot()`, taken before the lease so waiting for a slot never burns a lease.
- The lease owner is the worker id (`WORKER_ID`, default the host name), stable across restarts, so a bot
  killed with `kill -9` takes its own tasks back the moment it starts again. Leases are short and renewed
  while the work runs (`LEASE_SECONDS`, renewed every `SCAN_INTERVAL_SECONDS`), so another worker takes
  over a dead worker's tasks within a minute and a half, not after the whole task deadline. A renewal
  that finds the task ended elsewhere (the admin CLI) stops the local work and the status message.

What an ending means (state, stored code, the user's message, admin alerts, chats that refuse us) is
`bot.jobs.outcomes.Outcomes`; this module decides when a task ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Final

from api_client.client import PortraitClient
from api_client.clock import Clock, SystemClock
from api_client.errors import (
    PortraitAPIError,
    RateLimited,
    ServerError,
    SubmitOutcomeUnknown,
    TransportError,
)
from api_client.models import TaskStatus
from api_client.polling import ProgressCallback
from bot.config import Settings
from bot.jobs.finishing import DEFERRED, SENDING, Finisher
from bot.jobs.notifier import Closeable, DeliveryUncertain, Notifier, RecipientGone, Stage, TryLater
from bot.jobs.outcomes import Outcomes, cancel_notice
from bot.jobs.params import PromptTooLong, watermark_for
from bot.jobs.task_store import ShieldedTasks
from bot.jobs.upstream import build_request, first_image, poll_retryable
from storage import ALLOWED, TERMINAL, IllegalTransition, Store, Task, TaskState

__all__ = ["JobRunner"]

log = logging.getLogger(__name__)

#: `last_status` marks with a meaning for recovery (other values are the upstream status, for display).
RATE_LIMITED: Final = "rate_limited"
#: Automatic re-queues after the client's own retries gave up on a rate limit, and their back-off.
MAX_BUSY_RETRIES: Final = 3
BUSY_BACKOFF_SECONDS: Final = 30.0
#: A resumed task whose deadline has passed still gets this long: its result may be waiting upstream (12 h).
MIN_POLL_SECONDS: Final = 30.0
#: How long a lease lasts unless renewed, and how often the idle loop renews ours and looks at the table.
LEASE_SECONDS: Final = 90.0
SCAN_INTERVAL_SECONDS: Final = 5.0
#: stop() lets a photo that is being sent finish, so a clean shutdown never leaves an uncertain delivery.
STOP_GRACE_SECONDS: Final = 10.0


class JobRunner:
    """Drives tasks through their states; see the module docstring for the rules it keeps."""

    def __init__(
        self,
        store: Store,
        client: PortraitClient,
        notifier: Notifier,
        *,
        settings: Settings,
        clock: Clock | None = None,
        owner: str | None = None,
    ) -> None:
        self._tasks = ShieldedTasks(store)
        self._client = client
        self._notifier = notifier
        self._settings = settings
        self._clock: Clock = clock if clock is not None else SystemClock()
        self.owner = owner or settings.worker_id
        self._lease_seconds = LEASE_SECONDS
        self._running: dict[int, asyncio.Task[None]] = {}
        self._outcomes = Outcomes(self._tasks, notifier, self._clock)
        self._finisher = Finisher(self._tasks, notifier, self._clock)
        self._sending = self._finisher.sending  # tasks mid-send: never cancelled, stop() waits for them
        self._loop_task: asyncio.Task[None] | None = None
        self._stopping = False

    # -- lifecycle ---------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Resume what a previous run left, then keep taking work until stop()."""
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
        sending = [self._running[i] for i in self._sending if i in self._running]
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
        if not self._stopping:
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

    async def cancel(self, task_id: int, *, reason: str = "user") -> bool:
        """Stop the task and refund it; False when it is finished or already being delivered.

        The user is told once, in the words for `reason` (see `_cancel_notice`): a ban says "banned" in
        place of "cancelled", so a banned user gets one clear message, not two.
        """
        task = await self._tasks.get(task_id)
        if task is None or not _cancellable(task) or task_id in self._sending:
            return False
        work = self._running.get(task_id)
        if work is not None:
            work.cancel()
            await asyncio.gather(work, return_exceptions=True)
        task = await self._tasks.get(task_id)
        if task is None or not _cancellable(task):
            if task is not None and task.state not in TERMINAL:
                self._spawn(task_id)  # it reached delivering meanwhile: let it finish
            return False
        try:
            # No `expect`: a step finishing in the background may have moved it on; ALLOWED decides.
            task = await self._tasks.transition(
                task_id, TaskState.CANCELLED, error_code=f"cancelled:{reason}"
            )
        except IllegalTransition:  # it reached delivering meanwhile: let it finish
            self._spawn(task_id)
            return False
        log.info("task %d cancelled (%s)", task_id, reason)
        await self._outcomes.tell(task, cancel_notice(reason))
        self._outcomes.forget(task_id)
        return True

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
            if await self._tasks.claim(task_id, self.owner, self._lease_seconds):
                continue
            task = await self._tasks.get(task_id)
            if task is not None and task.state in TERMINAL and task_id not in self._sending:
                await self._drop(task)
            else:
                log.warning("task %d: lease taken over by another worker", task_id)

    async def _drop(self, task: Task) -> None:
        """A task ended elsewhere (the admin CLI's /ban cancels in the database): stop our work on it with no
        transition (the one that ended it refunded), and end its status message on "stopped"."""
        work = self._running.pop(task.id, None)
        if work is not None:
            work.cancel()
            await asyncio.gather(work, return_exceptions=True)
        log.info("task %d was ended elsewhere (%s); stopped here", task.id, task.state.value)
        try:
            if not self._outcomes.refused(task):
                await self._status(task, "stopped", await self._outcomes.lang(task), final=True)
        except RecipientGone as gone:
            self._outcomes.mark_gone(gone.chat_id)
        finally:
            self._outcomes.forget(task.id)

    async def _scan(self) -> int:
        started = 0
        now = self._clock.now()
        for task in await self._tasks.unfinished():
            if task.id in self._running or self._leased_elsewhere(task):
                continue
            if task.next_poll_at is not None and task.next_poll_at > now:
                continue
            started += self._spawn(task.id)
        return started

    def _leased_elsewhere(self, task: Task) -> bool:
        return (
            task.lease_owner is not None
            and task.lease_owner != self.owner
            and (task.lease_until or 0.0) > self._clock.now()
        )

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
                if await self._tasks.claim(task_id, self.owner, self._lease_seconds):
                    await self._drive(task_id)
            except IllegalTransition as exc:
                log.info("task %d was moved by someone else: %s", task_id, exc)
            except (PortraitAPIError, PromptTooLong, DeliveryUncertain, RecipientGone) as exc:
                await self._outcomes.end(task_id, exc)
            except Exception as exc:
                await self._outcomes.crashed(task_id, exc)
            finally:
                await self._tasks.release(task_id, self.owner)  # a no-op unless we hold it

    def _backing_off(self, task: Task) -> bool:
        return task.next_poll_at is not None and task.next_poll_at > self._clock.now()

    # -- the steps ---------------------------------------------------------------------------------------

    async def _drive(self, task_id: int) -> None:
        task = await self._require(task_id)
        if self._outcomes.refused(task):
            raise RecipientGone(task.chat_id)
        lang = await self._outcomes.lang(task)
        image: bytes | None = None
        if task.state in (TaskState.QUEUED, TaskState.SUBMITTING):
            submitted = await self._submit(task, lang)
            if submitted is None:
                return
            task = submitted
        if task.state in (TaskState.SUBMITTED, TaskState.POLLING):
            image = await self._poll(task, lang)
            if image is None:
                return
            task = await self._tasks.transition(task.id, TaskState.DELIVERING, expect=TaskState.POLLING)
        elif task.state is TaskState.DELIVERING:
            sent = self._finisher.sent_file_id(task)
            if sent:
                await self._finisher.finish(task, sent)
                return
            if task.last_status == SENDING:
                raise DeliveryUncertain(f"task {task.id} was being sent when the last run stopped")
            image = await self._fetch_again(task, lang)
            if image is None:
                return
        if image is not None:
            await self._deliver(task, image, lang)

    async def _submit(self, task: Task, lang: str) -> Task | None:
        """queued (or rate-limited submitting) -> submitted; None when it is waiting for a retry."""
        if task.state is TaskState.SUBMITTING:
            if task.upstream_task_id:
                return await self._tasks.transition(task.id, TaskState.SUBMITTED, expect=task.state)
            if task.last_status != RATE_LIMITED:
                raise SubmitOutcomeUnknown("found in submitting after a restart; not resubmitted")
        await self._status(task, "preparing", lang)
        try:
            request = await build_request(self._notifier, task)
        except TryLater as exc:  # nothing was submitted: a queued task stays queued, a marked one marked
            await self._back_off(task, exc, lang)
            return None
        request.validate()  # a request we built wrongly fails here, before any state change or cost
        if task.state is TaskState.QUEUED:
            task = await self._tasks.transition(task.id, TaskState.SUBMITTING, expect=TaskState.QUEUED)
        else:
            task = await self._tasks.update(task.id, last_status="resubmitting")
        await self._status(task, "submitting", lang)
        try:
            upstream_id = await self._client.submit(request)
        except RateLimited as exc:  # a definite refusal: the service did not take the task
            await self._back_off(task, exc, lang, mark=RATE_LIMITED)
            return None
        log.info("task %d submitted as %s", task.id, upstream_id)
        await self._tasks.transition(
            task.id, TaskState.SUBMITTED, expect=TaskState.SUBMITTING, upstream_task_id=upstream_id
        )
        # The poll deadline counts from here (see _poll_deadline), not from creation: a slot wait is ours.
        return await self._tasks.update(task.id, next_poll_at=self._clock.now())

    async def _poll(self, task: Task, lang: str) -> bytes | None:
        """submitted/polling -> the result image; None when it is waiting for a retry."""
        if task.state is TaskState.SUBMITTED:
            task = await self._tasks.transition(task.id, TaskState.POLLING, expect=TaskState.SUBMITTED)
        await self._status(task, "in_queue", lang)

        async def on_progress(status: TaskStatus) -> None:
            await self._tasks.update(task.id, last_status=status.value)
            if status is not TaskStatus.DONE:
                stage: Stage = "generating" if status is TaskStatus.GENERATING else "in_queue"
                try:
                    await self._status(task, stage, lang)
                except RecipientGone as gone:  # wait() would swallow it; _deliver acts on the mark
                    self._outcomes.mark_gone(gone.chat_id)

        return await self._wait(task, lang, on_progress, self._poll_deadline(task))

    async def _fetch_again(self, task: Task, lang: str) -> bytes | None:
        """A resumed delivery: the image was only in memory, so fetch it again (upstream keeps it 12 h)."""
        return await self._wait(task, lang, None, MIN_POLL_SECONDS)

    async def _wait(
        self, task: Task, lang: str, on_progress: ProgressCallback | None, deadline: float
    ) -> bytes | None:
        assert task.upstream_task_id is not None, "submitted tasks always carry their upstream id"
        try:
            result = await self._client.wait(
                task.upstream_task_id,
                watermark=watermark_for(task.params),
                on_progress=on_progress,
                deadline=deadline,
            )
        except (RateLimited, ServerError, TransportError) as exc:
            if not poll_retryable(exc):
                raise
            await self._back_off(task, exc, lang)
            return None
        return first_image(result)

    def _poll_deadline(self, task: Task) -> float:
        """The task deadline, counted from when polling began: `next_poll_at` of a submitted task is the
        submit time (written with the upstream id), or the end of its last back-off (an outage wasted the
        window, and back-offs are bounded). Tasks from before this rule fall back to their creation."""
        since = task.next_poll_at if task.next_poll_at is not None else task.created_at
        age = self._clock.now() - since
        return max(self._settings.task_deadline_seconds - age, MIN_POLL_SECONDS)

    async def _deliver(self, task: Task, image: bytes, lang: str) -> None:
        if self._outcomes.refused(task):
            raise RecipientGone(task.chat_id)
        await self._status(task, "sending", lang)
        try:
            await self._finisher.deliver(task, image, lang=lang)
        except TryLater as exc:  # surely not sent: clear the mark, fetch and send again later
            await self._back_off(task, exc, lang, mark=DEFERRED)

    async def _back_off(self, task: Task, exc: Exception, lang: str, *, mark: str | None = None) -> None:
        """Re-queue a task a bounded number of times after a failure that may pass, then let it fail."""
        if task.attempts >= MAX_BUSY_RETRIES:
            raise exc
        hint = getattr(exc, "retry_after", None)
        delay = max(BUSY_BACKOFF_SECONDS * 2**task.attempts, float(hint or 0.0))
        task = await self._tasks.update(
            task.id, next_poll_at=self._clock.now() + delay, attempts_inc=True, last_status=mark
        )
        log.warning(
            "task %d: %s; retry %d in %.0f s", task.id, type(exc).__name__, task.attempts, delay
        )
        await self._status(task, "retrying", lang, final=True)

    # -- progress ----------------------------------------------------------------------------------------

    async def _status(self, task: Task, stage: Stage, lang: str, *, final: bool = False) -> None:
        """Progress is cosmetic, except that a chat refusing it ends the task (RecipientGone propagates)."""
        elapsed = self._clock.now() - task.created_at
        try:
            await self._notifier.status(task, stage, elapsed, lang=lang, final=final)
        except RecipientGone:
            raise
        except Exception:
            log.warning("task %d: status update failed", task.id, exc_info=True)

    # -- helpers -----------------------------------------------------------------------------------------

    async def _require(self, task_id: int) -> Task:
        task = await self._tasks.get(task_id)
        if task is None:
            raise IllegalTransition(task_id, "missing", "any")
        return task


def _cancellable(task: Task) -> bool:
    return TaskState.CANCELLED in ALLOWED[task.state]
