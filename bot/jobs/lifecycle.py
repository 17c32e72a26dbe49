"""One generation's steps, as a state machine over the stored task state.

    queued ─submit─▶ submitting ─answer─▶ submitted ─result, send─▶ delivering ─sent─▶ done
          any step may end the task instead: failed / expired / cancelled (the transition refunds)

A task is run in two parts, so that the runner can keep the upstream exactly at its concurrency limit:
`upstream()` (submit and poll, holding one of the service's slots until a poll reads the result done:
`on_done` gives it back) ends with the result image in hand (`Ready`), and `deliver()` sends it without
holding a slot. Each step ends in one checked storage transition or a stored back-off (`next_poll_at` and
a typed `retry_reason`), so a restart at any point resumes from the database. Rules that are easy to get
wrong:
- A submit is never repeated unless we *know* it did not reach the service: a task found in `submitting`
  after a restart is failed with "submit_unknown" (refunded, user told), because resending may bill twice.
  The one known-safe case is a definite rate-limit answer, stored as `retry_reason = rate_limited` and
  cleared just before the submit goes out again.
- Polling is safe to resend, so an outage while polling (rate limit, 5xx, transport error that outlived
  the client's retries) backs off (MAX_BUSY_RETRIES times, "retrying" shown) instead of failing and
  refunding a task the service will still finish and bill. A submit never does.
- The poll deadline runs from `poll_started_at` (the submit, or the end of the last back-off), never from
  creation: time spent waiting for an upstream slot must not expire a task the service will bill.
- Commits: two per generation are fsynced on SQLite: `submitting` (taking the lease in the same
  statement; it must be durable and on its own before the submit goes out) and `delivering` with the
  `sending` mark, written inside the chat's turn just before the photo request (bot.jobs.delivery).
  `submitted` (the upstream id and `poll_started_at`) and DONE are not: a process crash loses no commit
  (WAL), and what a power cut could take back of `submitted` leaves the task in `submitting`, which ends
  as submit_unknown, refunded: the user is told and pays nothing, the service's work is the operator's
  cost, as for a crash during the submit itself. The next fsync (any task's) makes it durable anyway.
  A task stays `submitted` while it is polled and until its photo is about to go out: stopped before
  that, it is simply polled again (the service keeps the result 12 h) and sent, exactly as a `delivering`
  task without a mark was. `polling` is no longer written (rows from older releases in it resume like
  `submitted`), and the polling progress (`last_status`) is shown, not stored.
- A task resumed in `delivering` fetches the image again. Whether and how it goes on is
  `ResultDelivery.plan`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
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
from bot.jobs.prepared import PreparedCache
from bot.jobs.upstream import build_request, first_image, poll_retryable
from storage import KEEP, UNAVAILABLE, Delivery, Keep, RetryReason, Task, TaskState

__all__ = ["BUSY_BACKOFF_SECONDS", "MAX_BUSY_RETRIES", "MIN_POLL_SECONDS", "Lifecycle", "Ready"]

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


@dataclass(frozen=True)
class Ready:
    """The upstream part is over: the task's result image (None for a task resumed in `delivering`, whose
    image lives upstream only) is ready to be sent; `lang` is the user's language."""

    task: Task
    image: bytes | None
    lang: str


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
        prepared: PreparedCache | None = None,
    ) -> None:
        self._deps = deps
        self._prepared = prepared
        self._learner = learner
        self._client = client
        self._settings = settings
        self._delivery = delivery
        self._outcomes = outcomes
        self._edits: set[asyncio.Task[None]] = set()  # status edits going on beside a step (kept referenced)

    async def drive(self, task: Task) -> None:
        """Both parts in one go (resumed work and tests); errors propagate to the runner."""
        ready = await self.upstream(task)
        if ready is not None:
            await self.deliver(ready)

    async def upstream(
        self, task: Task, *, on_done: Callable[[], Awaitable[None]] | None = None
    ) -> Ready | None:
        """Submit and poll until the result is in hand; None when the task waits (a back-off) or ended.
        `on_done` is awaited the moment a poll reads the task done (the runner frees its upstream place)."""
        if self._outcomes.refused(task):
            raise RecipientGone(task.chat_id)
        lang = await self._outcomes.lang(task)
        current: Task | None = task
        while current is not None:
            if current.state in (TaskState.QUEUED, TaskState.SUBMITTING):
                current = await self._submit(current, lang)
            elif current.state in (TaskState.SUBMITTED, TaskState.POLLING):
                return await self._poll(current, lang, on_done)
            elif current.state is TaskState.DELIVERING:
                return Ready(current, None, lang)
            else:
                return None
        return None

    # -- the steps ---------------------------------------------------------------------------------------

    async def _submit(self, task: Task, lang: str) -> Task | None:
        """queued (or rate-limited submitting) -> submitted."""
        tasks = self._deps.tasks
        if task.state is TaskState.SUBMITTING:
            if task.upstream_task_id:
                return await tasks.transition(task.id, TaskState.SUBMITTED, expect=task.state)
            if task.retry_reason is not RetryReason.RATE_LIMITED:
                raise SubmitOutcomeUnknown("found in submitting after a restart; not resubmitted")
        # Shown while the request is built, not waited for: this task holds an upstream place, and the
        # edit may queue behind Telegram's flood control (30 messages a second for everything the bot
        # sends) for seconds, the place idle meanwhile.
        preparing = self._status_meanwhile(task, "preparing", lang)
        try:
            request = await build_request(self._deps.notifier, task, self._prepared)
        except TryLater as exc:  # nothing was submitted; a rate-limited task keeps its "safe to resend"
            keep: RetryReason | Keep = RetryReason.TELEGRAM_BUSY if task.state is TaskState.QUEUED else KEEP
            await self._back_off(task, exc, lang, reason=keep)
            return None
        except BaseException:
            preparing.cancel()
            raise
        request.validate()  # a request we built wrongly fails here, before any state change or cost
        await asyncio.sleep(0)  # one turn for the edit: a chat refusing at once is known before the submit
        if preparing.done() and not preparing.cancelled():
            preparing.result()  # RecipientGone: the user blocked the bot, nothing is submitted or billed
        if task.state is TaskState.QUEUED:  # takes the lease too: one commit, durable before the submit
            task = await tasks.transition(task.id, TaskState.SUBMITTING, expect=TaskState.QUEUED, claim=True)
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
                task.id, TaskState.SUBMITTED, expect=TaskState.SUBMITTING, upstream_task_id=upstream_id,
                poll_started_at=submitted_at, durable=False,
            ),
        )  # fmt: skip

    async def _poll(
        self, task: Task, lang: str, on_done: Callable[[], Awaitable[None]] | None = None
    ) -> Ready | None:
        """submitted (or polling, from older releases) -> the result image in hand, nothing stored: the
        task moves on when its photo is about to go out (see the module docstring)."""
        await self._status(task, "in_queue", lang)
        shown: list[asyncio.Task[None]] = []

        async def on_progress(status: TaskStatus) -> None:
            if status is TaskStatus.DONE:
                if on_done is not None:
                    await on_done()
                return
            # Shown beside the polls, not waited for: the edit and its chat action queue behind Telegram's
            # limits (in a group, behind the group's results at 20 a minute), and meanwhile the finished
            # result would sit upstream, holding its place. A refusal marks the chat gone (see
            # _status_meanwhile), which the deliver step acts on.
            stage: Stage = "generating" if status is TaskStatus.GENERATING else "in_queue"
            shown.append(self._status_meanwhile(task, stage, lang))

        image = await self._wait(
            task, lang, on_progress, self._poll_deadline(task), schedule=self._schedule(task)
        )
        if shown:  # stale once the result is in: dropped if still waiting for Telegram (a message saved)
            for edit in shown:
                edit.cancel()
            await asyncio.wait(shown)  # settled before the result goes on: no stage shows after it
        return None if image is None else Ready(task, image, lang)

    async def deliver(self, ready: Ready) -> None:
        """The result -> done: at most once (see bot.jobs.delivery)."""
        task, image, lang = ready.task, ready.image, ready.lang
        if task.state is TaskState.DELIVERING:
            plan = self._delivery.plan(task)
            if isinstance(plan, AlreadySent):
                await self._delivery.finish(task, plan.file_id)
                return
        if image is None:  # resumed: the image was only in memory, fetch it again (upstream keeps it 12 h)
            image = await self._wait(task, lang, None, MIN_POLL_SECONDS)
            if image is None:
                return
        if self._outcomes.refused(task):
            raise RecipientGone(task.chat_id)
        await self._status(task, "sending", lang)
        try:
            await self._delivery.deliver(task, image, lang=lang)
        except TryLater as exc:  # surely not sent: fetch and send again later
            busy = RetryReason.TELEGRAM_BUSY
            await self._back_off(task, exc, lang, reason=busy, delivery=Delivery.DEFERRED)

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

    def _status_meanwhile(self, task: Task, stage: Stage, lang: str) -> asyncio.Task[None]:
        """`_status` going on beside the step; a refusal that comes later marks the chat gone, which the
        deliver step acts on (the service then has the task: the unit is spent, as for any block after the
        submit)."""
        edit = asyncio.create_task(self._status(task, stage, lang), name=f"task-{task.id}-{stage}")
        self._edits.add(edit)

        def settled(done: asyncio.Task[None]) -> None:
            self._edits.discard(done)
            if not done.cancelled() and isinstance(done.exception(), RecipientGone):
                self._outcomes.mark_gone(task.chat_id)

        edit.add_done_callback(settled)
        return edit

    async def _status(self, task: Task, stage: Stage, lang: str, *, final: bool = False) -> None:
        """Progress is cosmetic, except that a chat refusing it ends the task (RecipientGone propagates)."""
        elapsed = self._deps.clock.now() - task.created_at
        try:
            await self._deps.notifier.status(task, stage, elapsed, lang=lang, final=final)
        except RecipientGone:
            raise
        except Exception:
            log.warning("task %d: status update failed", task.id, exc_info=True)
