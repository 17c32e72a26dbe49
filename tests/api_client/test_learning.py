"""Polling that learns, through wait() on a FakeClock: plans, fallback, what is recorded, the give-up rules
left as they were, and the calls and lag on simulated workloads (5 s +- 30 %, then a sudden slowdown)."""

from __future__ import annotations

import itertools
import random
import statistics
from collections.abc import Mapping

import pytest

from api_client.clock import FakeClock
from api_client.errors import PollDeadlineExceeded, TaskNotFound
from api_client.learning import SAVE_EVERY, PollingLearner
from api_client.models import TaskResult, TaskStatus
from api_client.polling import LearnedSchedule, PollOutcome, PollSchedule, wait
from api_client.timing import TimingModel, bucket_of

Q, G, D, N = TaskStatus.IN_QUEUE, TaskStatus.GENERATING, TaskStatus.DONE, TaskStatus.NOT_FOUND
REQUEST = {"width": 1000, "height": 1000, "hyper_switch": False}
BUCKET = bucket_of(REQUEST)


class SimTask:
    """A task submitted at the clock's current time that reads not_found for `not_found`, in_queue for
    1 s, generating until `duration`, then done; records when it was polled."""

    def __init__(self, clock: FakeClock, duration: float, *, not_found: float = 0.0) -> None:
        self.clock = clock
        self.submitted = clock.monotonic()
        self.duration = duration
        self.not_found = not_found
        self.polls: list[float] = []

    @property
    def done_at(self) -> float:
        return self.submitted + self.duration

    async def __call__(self) -> TaskResult:
        age = self.clock.monotonic() - self.submitted
        self.polls.append(age)
        if age < self.not_found:
            return TaskResult(N)
        if age >= self.duration:
            return TaskResult(D, images=(b"jpeg",))
        return TaskResult(Q if age < 1.0 else G)


class MemoryStore:
    def __init__(self) -> None:
        self.saved: dict[str, Mapping[str, object]] = {}
        self.saves = 0

    async def load(self) -> Mapping[str, Mapping[str, object]]:
        return dict(self.saved)

    async def save(self, bucket: str, state: Mapping[str, object]) -> None:
        self.saves += 1
        self.saved[bucket] = state


async def run_tasks(durations: list[float], learner: PollingLearner | None) -> list[tuple[int, float]]:
    """One task after another, each waited for on the learned (or, without a learner, the fixed) schedule:
    (GetResult calls, seconds from done to wait() returning) per task."""
    clock = FakeClock()
    results = []
    for duration in durations:
        task = SimTask(clock, duration)
        schedule = learner.schedule(REQUEST) if learner is not None else None
        await wait(task, clock=clock, schedule=schedule)
        results.append((len(task.polls), clock.monotonic() - task.done_at))
        clock.advance(0.3)  # the next user's request
    return results


def summary(results: list[tuple[int, float]]) -> tuple[float, float]:
    """(calls per task, median lag)."""
    return statistics.mean(c for c, _ in results), statistics.median(lag for _, lag in results)


def jittered(mean: float, count: int, rng: random.Random) -> list[float]:
    return [mean * rng.uniform(0.7, 1.3) for _ in range(count)]


# --- the schedule ----------------------------------------------------------------------------------------


def test_learned_schedule_polls_at_its_times_since_submit_then_at_the_cap() -> None:
    schedule = LearnedSchedule(times=(5.0, 5.5, 6.0, 7.0), elapsed=0.25)
    assert list(itertools.islice(schedule.delays(), 7)) == [4.75, 0.5, 0.5, 1.0, 5.0, 5.0, 5.0]


def test_a_late_start_polls_at_once_then_keeps_to_the_plan() -> None:
    schedule = LearnedSchedule(times=(5.0, 5.5, 6.0), elapsed=5.2)
    assert list(itertools.islice(schedule.delays(), 4)) == pytest.approx([0.0, 0.3, 0.5, 5.0])
    finished = LearnedSchedule(times=(5.0,), elapsed=60.0)
    assert list(itertools.islice(finished.delays(), 2)) == [0.0, 5.0]


def test_learned_schedule_without_times_is_the_fixed_one() -> None:
    fixed = list(itertools.islice(PollSchedule().delays(), 8))
    assert list(itertools.islice(LearnedSchedule().delays(), 8)) == fixed


def test_a_running_task_moves_to_a_later_plan_only() -> None:
    plans: list[tuple[float, ...]] = [(5.0, 5.5, 6.0, 7.0)]
    schedule = LearnedSchedule(times=plans[0], min_gap=0.5, replan=lambda: plans[-1])
    delays = schedule.delays()
    assert next(delays) == 5.0
    plans.append((5.2, 5.7, 6.2))  # the estimate moved a little: keep the cadence
    assert next(delays) == pytest.approx(0.5)
    plans.append((13.0, 14.0))  # the service slowed down meanwhile: skip the polls now surely too early
    assert next(delays) == pytest.approx(13.0 - 5.5)
    plans.append((4.0, 4.5))  # earlier plans (or an empty one) change nothing for a task under way
    assert next(delays) == pytest.approx(1.0)
    plans.append(())
    assert next(delays) == 5.0


async def test_tasks_in_flight_move_to_the_new_plan_once_a_slowdown_shows() -> None:
    learner = PollingLearner()
    await run_tasks(jittered(5.0, 30, random.Random(21)), learner)
    delays = learner.schedule(REQUEST).delays()
    first = next(delays)
    for duration in (11.5, 12.0, 12.5):  # three other tasks finish, all far too late for the old plan
        learner.model.observe(BUCKET, duration - 0.5, duration)
    assert first + next(delays) > 10.0  # not the old dense window at ~6 s


@pytest.mark.parametrize(
    "fields", [{"elapsed": -1.0}, {"times": (2.0, 1.0)}, {"times": (-1.0,)}, {"min_gap": -1.0}]
)
def test_learned_schedule_rejects_nonsense(fields: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        LearnedSchedule(**fields)  # type: ignore[arg-type]


async def test_an_empty_learner_falls_back_to_todays_schedule() -> None:
    learner = PollingLearner()
    schedule = learner.schedule(REQUEST)
    assert schedule.times == () and schedule.not_found_grace == PollSchedule().not_found_grace
    clock = FakeClock()
    task = SimTask(clock, 5.0)
    await wait(task, clock=clock, schedule=schedule)
    assert clock.sleeps == [1.5, 2.25, 3.375]  # exactly PollSchedule()'s
    assert learner.model.estimate(BUCKET) is not None  # and it learned from it


async def test_wait_reports_how_the_task_was_seen() -> None:
    seen: list[PollOutcome] = []

    async def record(outcome: PollOutcome) -> None:
        seen.append(outcome)

    clock = FakeClock()
    clock.advance(0.25)
    task = SimTask(clock, 5.6)
    clock.advance(0.25)  # wait() starts 0.25 s after the submit
    schedule = LearnedSchedule(times=(5.0, 5.5, 6.0), elapsed=0.25, on_finished=record)
    await wait(task, clock=clock, schedule=schedule)
    assert task.polls == pytest.approx([5.0, 5.5, 6.0])
    assert len(seen) == 1 and seen[0].polls == 3
    assert (seen[0].pending_until, seen[0].done_by) == pytest.approx((5.25, 5.75))


async def test_a_task_done_at_the_first_poll_is_seen_as_censored() -> None:
    learner = await PollingLearner.open(store=None)
    await run_tasks([5.0], learner)  # fixed schedule: (3.75, 7.125]
    plan = learner.schedule(REQUEST)
    assert plan.times
    await run_tasks([plan.times[0] - 1.0], learner)
    assert learner.model.buckets[BUCKET].window[-1] == pytest.approx((0.0, plan.times[0]))


async def test_the_store_keeps_what_was_learned_across_a_restart() -> None:
    store = MemoryStore()
    learner = await PollingLearner.open(store)
    await run_tasks([5.0, 5.0, 6.0], learner)
    await learner.flush()  # what a clean shutdown saves
    assert set(store.saved) == {BUCKET}
    again = await PollingLearner.open(store)
    assert again.schedule(REQUEST).times == learner.schedule(REQUEST).times


async def test_a_bucket_is_saved_when_new_or_shifted_and_otherwise_every_half_minute() -> None:
    """A save per finished task was a database commit per generation; a kill now loses at most the last
    SAVE_EVERY seconds of learning, a clean stop none (flush)."""
    now = [100.0]
    store = MemoryStore()
    learner = await PollingLearner.open(store, monotonic=lambda: now[0])
    await run_tasks([5.0], learner)
    assert store.saves == 1  # a new bucket: at once
    await run_tasks([5.0, 5.2, 4.9], learner)
    assert store.saves == 1  # steady, within SAVE_EVERY: kept for later
    now[0] += SAVE_EVERY
    await run_tasks([5.1], learner)
    assert store.saves == 2
    await run_tasks([14.0, 15.0, 14.5], learner)  # a slowdown: the shift is saved as it shows
    assert store.saves >= 3
    saves = store.saves
    await learner.flush()
    assert store.saved[BUCKET] == learner.model.buckets[BUCKET].to_dict()
    await learner.flush()
    assert store.saves <= saves + 1  # nothing left to save the second time


async def test_a_failing_store_loses_no_result(caplog: pytest.LogCaptureFixture) -> None:
    class Broken(MemoryStore):
        async def save(self, bucket: str, state: Mapping[str, object]) -> None:
            raise OSError("disk full")

    learner = await PollingLearner.open(Broken())
    clock = FakeClock()
    result = await wait(SimTask(clock, 5.0), clock=clock, schedule=learner.schedule(REQUEST), task_id="T9")
    assert result.status is D and result.images == (b"jpeg",)
    assert "failed to record" in caplog.text
    assert learner.model.estimate(BUCKET) is not None  # learned in memory all the same


async def test_a_failed_save_is_tried_again_and_flushed_at_stop() -> None:
    now = [100.0]

    class Flaky(MemoryStore):
        failing = True

        async def save(self, bucket: str, state: Mapping[str, object]) -> None:
            if self.failing:
                raise OSError("database is locked")
            await super().save(bucket, state)

    store = Flaky()
    learner = await PollingLearner.open(store, monotonic=lambda: now[0])
    await run_tasks([5.0], learner)  # the first save fails (logged by wait(), the result kept)
    store.failing = False
    await run_tasks([5.0], learner)  # within SAVE_EVERY of nothing saved: saved now
    assert store.saves == 1
    await run_tasks([5.1], learner)
    assert store.saves == 1
    store.failing = True
    with pytest.raises(OSError):
        await learner.flush()
    store.failing = False
    await learner.flush()
    assert store.saves == 2 and store.saved[BUCKET] == learner.model.buckets[BUCKET].to_dict()


async def test_no_learning_when_asked_not_to_or_when_watched_too_late() -> None:
    learner = PollingLearner()
    await run_tasks([5.0] * 3, learner)
    assert learner.schedule(REQUEST, learn=False).on_finished is None
    late = learner.schedule(REQUEST, elapsed=30.0)  # e.g. resumed after a restart
    assert late.on_finished is None and next(iter(late.delays())) == 0.0
    assert learner.schedule(REQUEST, elapsed=0.5).on_finished is not None
    assert PollingLearner().schedule(REQUEST, elapsed=2.0).on_finished is None  # fixed: first poll at 1.5


# --- the give-up rules are those of the fixed schedule ---------------------------------------------------


async def trained() -> PollingLearner:
    learner = PollingLearner()
    await run_tasks(jittered(5.0, 20, random.Random(0)), learner)
    return learner


async def test_deadline_unchanged_with_a_learned_schedule() -> None:
    learner = await trained()
    clock = FakeClock()
    task = SimTask(clock, 1000.0)
    with pytest.raises(PollDeadlineExceeded):
        await wait(task, clock=clock, schedule=learner.schedule(REQUEST), deadline=30.0)
    assert task.polls[-1] == pytest.approx(30.0) and clock.monotonic() == pytest.approx(30.0)
    assert learner.model.buckets[BUCKET].recent[-1][2] != "late"  # a task given up on is not learned from


async def test_not_found_grace_unchanged_with_a_learned_schedule() -> None:
    learner = await trained()
    clock = FakeClock()
    task = SimTask(clock, 1000.0, not_found=1000.0)
    schedule = learner.schedule(REQUEST)
    with pytest.raises(TaskNotFound):
        await wait(task, clock=clock, schedule=schedule)
    first = task.polls[0]
    assert task.polls[-1] - first >= schedule.not_found_grace == 10.0
    assert task.polls[-2] - first < 10.0


async def test_brief_not_found_after_submit_counts_as_not_done_yet() -> None:
    learner = await trained()
    clock = FakeClock()
    task = SimTask(clock, 6.0, not_found=5.8)
    result = await wait(task, clock=clock, schedule=learner.schedule(REQUEST))
    assert result.status is D


# --- the workloads of the issue --------------------------------------------------------------------------


async def test_steady_five_seconds_costs_at_most_one_and_a_half_calls_and_under_a_second() -> None:
    durations = jittered(5.0, 120, random.Random(11))
    fixed = summary(await run_tasks(durations, None))
    learned = summary((await run_tasks(durations, PollingLearner()))[20:])  # after a short warm-up
    assert fixed[0] >= 2.8 and fixed[1] > 1.5  # the "three calls, ~2 s late"
    assert learned[0] <= 1.5 and learned[1] < 1.0


@pytest.mark.parametrize(("mean", "most_calls"), [(5.0, 1.4), (7.0, 1.45)])
async def test_a_steady_service_comes_near_the_best_schedule(mean: float, most_calls: float) -> None:
    """Uniform durations, +- 30 %: no schedule spends fewer than 1.17 calls (5 s) or 1.28 (7 s) for a median
    lag under 1 s (benchmarks.poll_bound). Dense polls a share of the (narrowly fitted) spread apart, ending
    before the slowest tasks, spent ~1.45 calls at 5 s and ~1.47 at 7 s on these tasks; one lag budget
    apart until the latest finish seen, fewer, with the lag still under a second."""
    calls, lags = [], []
    for seed in range(4):
        learner = PollingLearner()
        result = summary((await run_tasks(jittered(mean, 100, random.Random(30 + seed)), learner))[30:])
        calls.append(result[0])
        lags.append(result[1])
    assert statistics.mean(calls) <= most_calls and statistics.mean(lags) < 1.0


async def test_a_sudden_slowdown_is_followed_within_a_few_tasks() -> None:
    rng = random.Random(12)
    learner = PollingLearner()
    await run_tasks(jittered(5.0, 40, rng), learner)
    slow = await run_tasks(jittered(12.0, 40, rng), learner)
    first_calls = [calls for calls, _ in slow[:3]]
    assert max(first_calls) >= 4  # the old plan was wrong for these
    settled = summary(slow[4:])
    fixed = summary(await run_tasks(jittered(12.0, 36, random.Random(13)), None))
    assert settled[0] <= 2.0 and settled[0] < fixed[0] / 2
    assert settled[1] < fixed[1]
    estimate = learner.model.estimate(BUCKET)
    assert estimate is not None and estimate.mean == pytest.approx(12.0, abs=1.5)


async def test_buckets_learn_apart() -> None:
    learner = PollingLearner()
    await run_tasks(jittered(5.0, 10, random.Random(14)), learner)
    fast = {**REQUEST, "hyper_switch": True}
    assert learner.schedule(fast).times == ()  # nothing known about fast mode yet
    assert learner.schedule(REQUEST).times


def test_the_model_is_shared_by_reference() -> None:
    model = TimingModel()
    learner = PollingLearner(model)
    model.observe(BUCKET, 4.0, 5.0)
    assert learner.schedule(REQUEST).times
