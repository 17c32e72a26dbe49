"""One generation's steps, as a state machine over the stored task state.

    queued ─submit─▶ submitting ─answer─▶ submitted ─▶ polling ─result─▶ delivering ─send─▶ done
          any step may end the task instead: failed / expired / cancelled (the transition refunds)

`Lifecycle.drive` looks the task's state up in one table (`_steps`) and runs steps until the task ends or
waits. Each step ends in one checked storage transition or a stored back-off (`next_poll_at` and a typed
`retry_reason`), so a restart at any point resumes from the database. Rules that are easy to get wrong:
- A submit is never repeated unless we *know* it did not reach the service: a task found in `submitting`
  after a restart is failed with "submit_unknown" (refunded, user told), because resending may bill twice.
  The one known-safe case is a definite rate-limit answer, stored as `retry_reason = rate_limited` and
  cleared just before the submit goes out again.
- Polling is safe to resend, so an outage while polling (rate limit, 5xx, transport error that outlived
  the client's retries) backs off (MAX_BUSY_RETRIES times, "retrying" shown) instead of failing and
  refunding a task the service will still finish and bill. A submit never does.
- The poll deadline runs from `poll_started_at` (the submit, or the end of the last back-off), never from
  creation: time spent waiting for an upstream slot must not expire a task the service will bill.
- The result image lives in memory only; a task resumed in `delivering` fetches it again (upstream keeps it
  12 h). Whether and how a delivering task goes on is `ResultDelivery.plan`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Final

from api_client.client import PortraitClient
from api_client.errors import RateLimited, ServerError, SubmitOutcomeUnknown, TransportError
from api_client.learning import PollingLearner
from api_client.models import TaskStatus
from api_client.polling import PollSchedule, ProgressCallback
from bot.config import Settings
from bot.jobs.delivery import AlreadySent, ResultDelivery
from bot.jobs.deps import JobDeps
from bot.jobs.notifier import RecipientGone, Stage, TryLater
from bot.jobs.outcomes import Outcomes
from bot.jobs.params import watermark_for
from bot.jobs.upstream import build_request, first_image, poll_retryable
from storage import KEEP, UNAVAILABLE, Delivery, Keep, RetryReason, Task, TaskState

__all__ = ["BUSY_BACKOFF_SECONDS", "MAX_BUSY_RETRIES", "MIN_POLL_SECONDS", "Lifecycle"]

log = logging.getLogger(__name__)

#: Automatic back-offs after a failure that may pass (rate limit, outage, Telegram busy), and their base.
MAX_BUSY_RETRIES: Final = 3
BUSY_BACKOFF_SECONDS: Final = 30.0
#: A resumed task whose deadline has passed still gets this long: its result may be waiting upstream (12 h).
MIN_POLL_SECONDS: Final = 30.0

#: Recording a fact from upstream through an unavailable database: first delay, cap, and total patience.
STORE_RETRY_FIRST_SECONDS: Final = 0.5
STORE_RETRY_MAX_DELAY: Final = 30.0
STORE_RETRY_SECONDS: Final = 600.0

#: A step moves the task on and returns it in its new state, or returns None: it waits or it ended.
Step = Callable[[Task, str], Awaitable[Task | None]]


class Lifecycle:
    """Runs the steps of one task; the runner decides when (leases, slots, cancellation)."""

    def __init__(
        self,
        deps: JobDeps,
        client: PortraitClient,
        settings: Settings,
        delivery: ResultDelivery,
        outcomes: Outcomes,
        learner: PollingLearner | None = None,
    ) -> None:
        self._deps = deps
        self._learner = learner
        self._client = client
        self._settings = settings
        self._delivery = delivery
        self._outcomes = outcomes
        self._results: dict[int, bytes] = {}  # task id -> the image polling fetched, for the deliver step
        self._steps: dict[TaskState, Step] = {
            TaskState.QUEUED: self._submit,
            TaskState.SUBMITTING: self._submit,
            TaskState.SUBMITTED: self._poll,
            TaskState.POLLING: self._poll,
            TaskState.DELIVERING: self._deliver,
        }

    async def drive(self, task: Task) -> None:
        """Run steps until the task ends or waits; errors propagate to the runner (which ends the task)."""
        if self._outcomes.refused(task):
            raise RecipientGone(task.chat_id)
        lang = await self._outcomes.lang(task)
        current: Task | None = task
        try:
            while current is not None and current.state in self._steps:
                current = await self._steps[current.state](current, lang)
        finally:
            self._results.pop(task.id, None)

    # -- the steps ---------------------------------------------------------------------------------------

    async def _submit(self, task: Task, lang: str) -> Task | None:
        """queued (or rate-limited submitting) -> submitted."""
        tasks = self._deps.tasks
        if task.state is TaskState.SUBMITTING:
            if task.upstream_task_id:
                return await tasks.transition(task.id, TaskState.SUBMITTED, expect=task.state)
            if task.retry_reason is not RetryReason.RATE_LIMITED:
                raise SubmitOutcomeUnknown("found in submitting after a restart; not resubmitted")
        await self._status(task, "preparing", lang)
        try:
            request = await build_request(self._deps.notifier, task)
        except TryLater as exc:  # nothing was submitted; a rate-limited task keeps its "safe to resend"
            keep: RetryReason | Keep = RetryReason.TELEGRAM_BUSY if task.state is TaskState.QUEUED else KEEP
            await self._back_off(task, exc, lang, reason=keep)
            return None
        request.validate()  # a request we built wrongly fails here, before any state change or cost
        if task.state is TaskState.QUEUED:
            task = await tasks.transition(task.id, TaskState.SUBMITTING, expect=TaskState.QUEUED)
        else:  # from here the submit may reach the service: a crash now must not resend it
            task = await tasks.update(task.id, retry_reason=None)
        await self._status(task, "submitting", lang)
        await tasks.hold(task.id)  # a worker that froze past its lease must not submit
        try:
            upstream_id = await self._client.submit(request)
        except RateLimited as exc:  # a definite refusal: the service did not take the task
            await self._back_off(task, exc, lang, reason=RetryReason.RATE_LIMITED)
            return None
        log.info("task %d submitted as %s", task.id, upstream_id)
        submitted_at = self._deps.clock.now()
        return await self._record(
            task,
            f"submitted as {upstream_id}",
            lambda: tasks.transition(
                task.id, TaskState.SUBMITTED, expect=TaskState.SUBMITTING, upstream_task_id=upstream_id
            ),
            lambda: tasks.update(task.id, poll_started_at=submitted_at),
        )

    async def _poll(self, task: Task, lang: str) -> Task | None:
        """submitted/polling -> delivering, with the result image kept for the deliver step."""
        tasks = self._deps.tasks
        if task.state is TaskState.SUBMITTED:
            task = await tasks.transition(task.id, TaskState.POLLING, expect=TaskState.SUBMITTED)
        await self._status(task, "in_queue", lang)

        async def on_progress(status: TaskStatus) -> None:
            await tasks.update(task.id, last_status=status.value)
            if status is not TaskStatus.DONE:
                stage: Stage = "generating" if status is TaskStatus.GENERATING else "in_queue"
                try:
                    await self._status(task, stage, lang)
                except RecipientGone as gone:  # wait() would swallow it; the deliver step acts on it
                    self._outcomes.mark_gone(gone.chat_id)

        image = await self._wait(
            task, lang, on_progress, self._poll_deadline(task), schedule=self._schedule(task)
        )
        if image is None:
            return None
        self._results[task.id] = image
        return await self._record(
            task,
            "result ready",
            lambda: tasks.transition(task.id, TaskState.DELIVERING, expect=TaskState.POLLING),
        )

    async def _deliver(self, task: Task, lang: str) -> Task | None:
        """delivering -> done: at most once (see bot.jobs.delivery)."""
        plan = self._delivery.plan(task)
        if isinstance(plan, AlreadySent):
            await self._delivery.finish(task, plan.file_id)
            return None
        image = self._results.pop(task.id, None)
        if image is None:  # resumed: the image was only in memory, fetch it again (upstream keeps it 12 h)
            image = await self._wait(task, lang, None, MIN_POLL_SECONDS)
            if image is None:
                return None
        if self._outcomes.refused(task):
            raise RecipientGone(task.chat_id)
        await self._status(task, "sending", lang)
        try:
            await self._delivery.deliver(task, image, lang=lang)
        except TryLater as exc:  # surely not sent: fetch and send again later
            busy = RetryReason.TELEGRAM_BUSY
            await self._back_off(task, exc, lang, reason=busy, delivery=Delivery.DEFERRED)
        return None

    async def _record(self, task: Task, fact: str, *writes: Callable[[], Awaitable[Task]]) -> Task:
        """Store what already happened upstream (a billed submit, a finished result), retrying through a
        database that is unavailable for now (locked past the busy timeout, disk full, I/O error).

        Failing the task instead would refund work the service is doing and billing, and lose its upstream
        id, which only this process knows. The writes run in order, each retried with a doubling back-off up
        to STORE_RETRY_SECONDS in all; past that the error propagates and the task stays where it was (a
        `submitting` task is then resolved as "submit_unknown" by the next run, the id logged here)."""
        clock = self._deps.clock
        started = clock.monotonic()
        delay = STORE_RETRY_FIRST_SECONDS
        result: Task | None = None
        for write in writes:
            while True:
                try:
                    result = await write()
                    break
                except UNAVAILABLE:
                    if clock.monotonic() - started >= STORE_RETRY_SECONDS:
                        log.error("task %d: %s, but the store stays unavailable; giving up", task.id, fact)
                        raise
                    log.warning(
                        "task %d: %s; storing it failed, retrying in %.1f s",
                        task.id,
                        fact,
                        delay,
                        exc_info=True,
                    )
                    await clock.sleep(delay)
                    delay = min(delay * 2, STORE_RETRY_MAX_DELAY)
        assert result is not None, "at least one write"
        return result

    # -- waiting -----------------------------------------------------------------------------------------

    def _schedule(self, task: Task) -> PollSchedule | None:
        """Polls planned from the generation times learnt so far (api_client.learning): first near the
        expected finish. Only a task polled since its submit teaches the model; after a back-off its
        window restarted, so it polls on the plan without recording."""
        if self._learner is None:
            return None
        since = task.poll_started_at if task.poll_started_at is not None else task.created_at
        elapsed = self._deps.clock.now() - since
        return self._learner.schedule(task.params, elapsed=elapsed, learn=task.attempts == 0)

    async def _wait(
        self,
        task: Task,
        lang: str,
        on_progress: ProgressCallback | None,
        deadline: float,
        *,
        schedule: PollSchedule | None = None,
    ) -> bytes | None:
        """The result image, or None when polling failed for now and the task backs off."""
        assert task.upstream_task_id is not None, "submitted tasks always carry their upstream id"
        try:
            result = await self._client.wait(
                task.upstream_task_id,
                watermark=watermark_for(task.params),
                on_progress=on_progress,
                deadline=deadline,
                schedule=schedule,
            )
        except (RateLimited, ServerError, TransportError) as exc:
            if not poll_retryable(exc):
                raise
            await self._back_off(task, exc, lang, reason=RetryReason.UPSTREAM_BUSY)
            return None
        return first_image(result)

    def _poll_deadline(self, task: Task) -> float:
        """The task deadline, counted from when polling began (tasks from before migration 0003 that
        never stored it fall back to their creation)."""
        since = task.poll_started_at if task.poll_started_at is not None else task.created_at
        age = self._deps.clock.now() - since
        return max(self._settings.task_deadline_seconds - age, MIN_POLL_SECONDS)

    async def _back_off(
        self,
        task: Task,
        exc: Exception,
        lang: str,
        *,
        reason: RetryReason | Keep,
        delivery: Delivery | None = None,
    ) -> None:
        """Wait a bounded number of times after a failure that may pass, then let it fail the task.

        A polling task's window restarts when the back-off ends: the outage wasted it, and back-offs are
        bounded, so the deadline still holds overall."""
        if task.attempts >= MAX_BUSY_RETRIES:
            raise exc
        hint = getattr(exc, "retry_after", None)
        delay = max(BUSY_BACKOFF_SECONDS * 2**task.attempts, float(hint or 0.0))
        until = self._deps.clock.now() + delay
        polling = task.state in (TaskState.SUBMITTED, TaskState.POLLING)
        task = await self._deps.tasks.update(
            task.id,
            next_poll_at=until,
            attempts_inc=True,
            retry_reason=reason,
            delivery=delivery,
            poll_started_at=until if polling else None,
        )
        log.warning("task %d: %s; retry %d in %.0f s", task.id, type(exc).__name__, task.attempts, delay)
        await self._status(task, "retrying", lang, final=True)

    async def _status(self, task: Task, stage: Stage, lang: str, *, final: bool = False) -> None:
        """Progress is cosmetic, except that a chat refusing it ends the task (RecipientGone propagates)."""
        elapsed = self._deps.clock.now() - task.created_at
        try:
            await self._deps.notifier.status(task, stage, elapsed, lang=lang, final=final)
        except RecipientGone:
            raise
        except Exception:
            log.warning("task %d: status update failed", task.id, exc_info=True)
