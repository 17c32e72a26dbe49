"""Polling that learns: the glue between `wait()`, the timing model and a store that keeps it.

    learner = await PollingLearner.open(store.timings)          # once at start-up (any TimingStore, or None)
    result = await client.wait(task_id, schedule=learner.schedule(request_or_params, elapsed=since_submit))

`schedule()` plans a task from what the finished tasks of its kind took (api_client.timing); until a kind
has been seen it is the fixed `PollSchedule`. When the task is done, `wait()` hands the schedule how it was
seen; the learner turns that into an observation, updates the model and saves that bucket's state, so a
restart keeps what was learned. The model is plain data in memory, shared by every task of the process.
A bucket is saved at once when it is new or its times shifted, and otherwise at most every SAVE_EVERY
seconds, with `flush()` at shutdown: one row per finished task was a database commit per generation, and a
kill loses at most those seconds of learning.

A task teaches something only when it is watched from about its submit (`elapsed` no later than its first
planned poll): a wait that starts later, e.g. a task resumed after a restart, polls at once and finds it
long done, which says nothing about how long it took.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Final, Protocol

from .polling import FinishedCallback, LearnedSchedule, PollOutcome, PollSchedule
from .timing import DEFAULT_PLAN, BucketTimes, PlanTuning, TimingModel, bucket_of

__all__ = ["PollingLearner", "TimingStore"]

log = logging.getLogger("api_client")

#: Planned polls per task at most; the plan reaches max_delay long before (a dozen or two polls).
_MAX_PLANNED = 64
#: Seconds between two saves of a bucket whose times hold steady (see the module docstring).
SAVE_EVERY: Final = 30.0


class TimingStore(Protocol):
    """Where the learned times live between runs: one opaque JSON-able state per bucket.

    `storage.TimingsRepo` (`store.timings`) implements it; api_client never imports storage."""

    async def load(self) -> Mapping[str, Mapping[str, object]]:
        """Every saved bucket -> its state, as `save` was given it."""
        ...

    async def save(self, bucket: str, state: Mapping[str, object]) -> None:
        """Replace the bucket's state."""
        ...


class PollingLearner:
    """One per process: plans each task's polls and learns from each finished one."""

    def __init__(
        self,
        model: TimingModel | None = None,
        *,
        store: TimingStore | None = None,
        base: PollSchedule | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.model = model if model is not None else TimingModel()
        self.store = store
        self.base = base if base is not None else PollSchedule()
        self._monotonic = monotonic
        self._saved_at: dict[str, float] = {}
        self._unsaved: set[str] = set()

    @classmethod
    async def open(
        cls,
        store: TimingStore | None = None,
        *,
        plan: PlanTuning = DEFAULT_PLAN,
        base: PollSchedule | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> PollingLearner:
        """A learner with what `store` kept (none without a store). A bucket whose state cannot be read is
        started afresh with a warning: the schedule falls back to the fixed one, nothing breaks."""
        buckets: dict[str, BucketTimes] = {}
        if store is not None:
            for bucket, state in (await store.load()).items():
                try:
                    buckets[bucket] = BucketTimes.from_dict(state)
                except (ValueError, TypeError) as exc:
                    log.warning("ignoring the saved poll timings of %s: %s", bucket, exc)
        learner = cls(TimingModel(buckets, plan=plan), store=store, base=base, monotonic=monotonic)
        learner._saved_at = dict.fromkeys(buckets, learner._monotonic())  # as loaded: saved just now
        return learner

    def schedule(self, request: object, *, elapsed: float = 0.0, learn: bool = True) -> LearnedSchedule:
        """The schedule for one task: `request` is its SubmitRequest or a mapping with the same field names
        (width, height, hyper_switch, step), `elapsed` the seconds since its submit. `learn=False` polls on
        the learned plan without recording the outcome."""
        return self.schedule_bucket(bucket_of(request), elapsed=elapsed, learn=learn)

    def schedule_bucket(self, bucket: str, *, elapsed: float = 0.0, learn: bool = True) -> LearnedSchedule:
        elapsed = max(0.0, elapsed)
        times = self.plan(bucket)
        first_poll = times[0] if times else elapsed + self.base.first_delay
        watched_from_submit = elapsed <= (times[0] if times else self.base.first_delay)
        recorder = self._recorder(bucket, elapsed) if learn and watched_from_submit else None
        return LearnedSchedule(
            first_delay=max(0.0, first_poll - elapsed),
            factor=self.base.factor,
            max_delay=self.base.max_delay,
            not_found_grace=self.base.not_found_grace,
            times=times,
            elapsed=elapsed,
            min_gap=self.model.plan.dense_min,
            on_finished=recorder,
            replan=lambda: self.plan(bucket),
        )

    def plan(self, bucket: str) -> tuple[float, ...]:
        """The planned poll times (since the submit) for a task of `bucket` as of now, until the delays
        reach the cap; empty while nothing is known of the bucket."""
        poll_times = self.model.poll_times(bucket)
        if poll_times is None:
            return ()
        planned: list[float] = []
        for at in poll_times:
            planned.append(at)
            if len(planned) >= _MAX_PLANNED or (
                len(planned) > 1 and at - planned[-2] >= self.base.max_delay - 1e-9
            ):
                break
        return tuple(planned)

    def _recorder(self, bucket: str, elapsed: float) -> FinishedCallback:
        async def record(outcome: PollOutcome) -> None:
            await self.record(bucket, elapsed, outcome)

        return record

    async def record(self, bucket: str, elapsed: float, outcome: PollOutcome) -> None:
        """Learn from one finished task whose wait began `elapsed` s after its submit; save the bucket if it
        is new, shifted or last saved SAVE_EVERY seconds ago."""
        low = 0.0 if outcome.pending_until is None else elapsed + outcome.pending_until
        side = self.model.observe(bucket, low, elapsed + outcome.done_by)
        if side != "ok":
            log.info("poll timings %s: a task took %s than expected (%.1f-%.1f s)", bucket,
                     "longer" if side == "late" else "less", low, elapsed + outcome.done_by)
        if self.store is None:
            return
        now = self._monotonic()
        if side != "ok" or now - self._saved_at.get(bucket, float("-inf")) >= SAVE_EVERY:
            await self._save(bucket, now)
        else:
            self._unsaved.add(bucket)

    async def flush(self) -> None:
        """Save every bucket that learned something since its last save (at shutdown)."""
        for bucket in sorted(self._unsaved):
            await self._save(bucket, self._monotonic())

    async def _save(self, bucket: str, now: float) -> None:
        """Unsaved until the store has it: a failed save is tried again with the bucket's next task."""
        assert self.store is not None
        self._unsaved.add(bucket)
        await self.store.save(bucket, self.model.buckets[bucket].to_dict())
        self._unsaved.discard(bucket)
        self._saved_at[bucket] = now
