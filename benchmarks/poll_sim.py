"""The polling benchmark's workload on the learning model alone, on a virtual clock.

`python -m benchmarks.poll_sim [--seeds N] [--first-quantile Q] [--dense-lag S]`

Why: `bench_polling` takes minutes of real time and a phase's figures move by ~0.1 call from run to run, too
slow and too noisy to compare two plans. This runs the same workload (4 callers, one task each at a time,
5 s +- 30 % uniform, then suddenly 7 s or 12 s, the running tasks slowed too, as the emulator does) through
the real `PollingLearner`: its plans, its replans before each poll, its observations. Only the HTTP and the
clock are left out: a poll is an event at its planned instant and reads `done` when the task's duration
has passed. So a plan's calls and lag come out in seconds, averaged over many seeded runs, and the
benchmark then confirms the one chosen. The phases are the benchmark's: steady (after the first 2 x workers
tasks, finished before the switch), the first 8 tasks finishing after the switch, and the rest. The
calls come out within about 0.05 of the benchmark's, the lags after a switch higher (0.9-1.0 s where it
measured 0.6-0.85 s at 7 s), so compare plans here and take the figures from the benchmark.
"""

from __future__ import annotations

import argparse
import heapq
import random
import statistics
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

from api_client.learning import PollingLearner
from api_client.polling import PollSchedule
from api_client.timing import DEFAULT_PLAN, PlanTuning, TimingModel

__all__ = ["Done", "Phases", "phases", "simulate"]

BUCKET = "1.00mp/full/s18"
STEADY_SECONDS = 5.0
JITTER = 0.3
ADAPTATION = 8


@dataclass(frozen=True)
class Done:
    """One finished task: its submit order, GetResult calls, and seconds from done to the `done` reading."""

    index: int
    calls: int
    lag: float
    finished: float


@dataclass(frozen=True)
class Phases:
    steady: list[Done]
    adaptation: list[Done]
    after: list[Done]


@dataclass
class _Running:
    index: int
    submitted: float
    duration: float
    delays: Iterator[float]
    watched: bool
    calls: int = 0
    pending_until: float | None = None


def simulate(
    seed: int,
    slow_seconds: float,
    *,
    steady: int = 80,
    slow: int = 40,
    workers: int = 4,
    plan: PlanTuning = DEFAULT_PLAN,
    learn: bool = True,
) -> tuple[list[Done], float]:
    """Every finished task and the instant of the switch; `learn=False` polls on the fixed schedule."""
    rng = random.Random(seed)
    learner = PollingLearner(TimingModel(plan=plan))
    running: dict[int, _Running] = {}
    events: list[tuple[float, int]] = []
    finished: list[Done] = []
    submitted = 0
    switched_at = float("inf")

    def submit(worker: int, now: float) -> None:
        nonlocal submitted, switched_at
        index, submitted = submitted, submitted + 1
        if index >= steady + slow:
            return
        if index == steady:  # the service slows down, for the tasks already running too
            switched_at = now
            for task in running.values():
                if task.submitted + task.duration > now:
                    task.duration *= slow_seconds / STEADY_SECONDS
        mean = STEADY_SECONDS if index < steady else slow_seconds
        delays = learner.schedule_bucket(BUCKET).delays() if learn else PollSchedule().delays()
        task = _Running(index, now, mean * rng.uniform(1 - JITTER, 1 + JITTER), delays, learn)
        running[worker] = task
        heapq.heappush(events, (now + next(task.delays), worker))

    for worker in range(workers):
        submit(worker, 0.0)
    while events:
        now, worker = heapq.heappop(events)
        task = running[worker]
        task.calls += 1
        age = now - task.submitted
        if age < task.duration:
            task.pending_until = age
            heapq.heappush(events, (now + next(task.delays), worker))
            continue
        if task.watched:
            low = 0.0 if task.pending_until is None else task.pending_until
            learner.model.observe(BUCKET, low, age)
        finished.append(Done(task.index, task.calls, age - task.duration, now))
        submit(worker, now)
    return finished, switched_at


def phases(finished: Sequence[Done], switched_at: float, workers: int = 4) -> Phases:
    before = sorted((d for d in finished if d.finished < switched_at), key=lambda d: d.index)
    after = sorted((d for d in finished if d.finished >= switched_at), key=lambda d: d.index)
    return Phases([d for d in before if d.index >= 2 * workers], after[:ADAPTATION], after[ADAPTATION:])


def summary(runs: Sequence[list[Done]]) -> tuple[float, float]:
    """Calls per task and the median lag, each a run's figure averaged over the runs."""
    runs = [run for run in runs if run]
    calls = [statistics.mean(d.calls for d in run) for run in runs]
    lags = [statistics.median(d.lag for d in run) for run in runs]
    return statistics.mean(calls), statistics.mean(lags)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.poll_sim", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--seeds", type=int, default=20, help="runs per scenario (20)")
    parser.add_argument("--first-quantile", type=float, default=DEFAULT_PLAN.first_quantile)
    parser.add_argument("--dense-lag", type=float, default=DEFAULT_PLAN.dense_lag)
    args = parser.parse_args(argv)
    plan = replace(DEFAULT_PLAN, first_quantile=args.first_quantile, dense_lag=args.dense_lag)
    print(f"{args.seeds} runs per scenario; calls per task and median lag (s), averaged over the runs")
    for slow_seconds in (7.0, 12.0):
        for name, learn in (("fixed", False), ("learned", True)):
            runs = [
                phases(*simulate(seed, slow_seconds, plan=plan, learn=learn)) for seed in range(args.seeds)
            ]
            cells = [
                f"{label} {calls:.2f} calls {lag:.2f} s"
                for label, part in (("steady", "steady"), ("first 8", "adaptation"), ("after", "after"))
                for calls, lag in [summary([getattr(run, part) for run in runs])]
            ]
            print(f"5 s then {slow_seconds:g} s, {name:>7}: " + " | ".join(cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
