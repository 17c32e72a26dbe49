"""Polling that learns vs the fixed schedule: `python -m benchmarks.bench_polling [--quick]`.

The emulator runs in-process (ASGI transport) with generations of 5 s +- 30 % (1 s in queue + 4 s
generating, each task at its own pace, uniform in [0.7, 1.3]); once `--steady` tasks have been submitted
the service suddenly slows (tasks already running too), in one scenario to 7 s +- 30 % and in another to
12 s +- 30 %. `--workers` callers (4: the bot's MAX_CONCURRENT_TASKS default) each submit one 1000x1000
task and wait for it, one after another. Time runs `--speed` times faster on both sides (the client's
clock and the emulator's), so every figure is in emulated seconds; the HTTP and event-loop overhead counts
`speed` times over in them (an upper bound).

Per scenario two runs, all four at the same time, each with its own emulator and the same seeded workload:
  current  `PortraitClient.wait` on the fixed PollSchedule (1.5 s, x1.5, up to 5 s)
  learned  `PortraitClient.wait(schedule=learner.schedule(request, elapsed=...))` with a PollingLearner
           on a real SQLite Store (store.timings, synchronous=FULL, saved as the bot saves it: when a
           bucket is new or shifted, else every 30 s, and at stop); at the end the store is reopened and
           must give the same plan (a restart).

Per task: GetResult calls (counted at the transport, retries included) and the delivery lag after done:
from the instant the emulator starts answering `done` to `wait()` returning (so a sleep that overshoots
the finish, the poll round trip and the learner's save are all in it). The part of it no schedule can
avoid, from sending the last GetResult to `wait()` returning, is measured apart (the round trip). Phases:
warm-up (the first 2 x workers tasks: the learner has nothing yet), steady, slowdown (the tasks that
finished after the switch, in submit order) split into its first 8 (the adaptation) and the rest. The
upstream QPS throttle is lifted (it would delay the polls of both schedules alike) and the emulator
renders once (its rendering costs the real service's machine, not ours).

Beside the figures: the fewest calls per task any schedule could spend at each speed with a median lag
under 1 s less the measured round trip, knowing the distribution exactly (benchmarks.poll_bound). Exit
status 1 if a task fails or a restart loses the plan.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import io
import itertools
import json
import math
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import httpx
from PIL import Image

from api_client import PortraitClient, SubmitRequest
from api_client.emulator import EmulatorConfig, EmulatorState, create_app
from api_client.emulator import app as emulator_app
from api_client.emulator.render import LogoInfo, render_result
from api_client.learning import PollingLearner
from api_client.timing import bucket_of
from benchmarks.bot_report import pct
from benchmarks.poll_bound import Bound, fewest_calls, uniform_around
from storage import Store

AK, SK = "AKbench", "SKbench"
RESULT = "CVSync2AsyncGetResult"
QUEUE_SECONDS = 1.0
STEADY_SECONDS = 5.0  # queue + generation before the switch
SLOWDOWNS = (7.0, 12.0)  # ... and after it, one scenario each
JITTER = 0.3
ADAPTATION = 8  # the first tasks after the switch, reported apart
LAG_GOAL = 1.0  # the goal's median delivery lag, s


class ScaledClock:
    """Both clocks run `speed` times faster than real time; sleeps are that much shorter."""

    def __init__(self, speed: float) -> None:
        self.speed = speed
        self._t0 = time.perf_counter()
        self._wall0 = time.time()

    def monotonic(self) -> float:
        return (time.perf_counter() - self._t0) * self.speed

    def now(self) -> float:
        return self._wall0 + self.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / self.speed)


class CountingTransport(httpx.AsyncBaseTransport):
    """The emulator's ASGI transport, counting GetResult requests per task id and noting when the last one
    was sent (emulated wall clock)."""

    def __init__(self, app: Any, clock: ScaledClock) -> None:
        self._inner = httpx.ASGITransport(app=app)
        self._clock = clock
        self.polls: Counter[str] = Counter()
        self.last_sent: dict[str, float] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.params.get("Action") == RESULT:
            task_id = str(json.loads(request.content).get("task_id"))
            self.polls[task_id] += 1
            self.last_sent[task_id] = self._clock.now()
        return await self._inner.handle_async_request(request)


@functools.lru_cache(maxsize=4)
def _render_cached(face: bytes, style: bytes | None, width: int, height: int, logo: LogoInfo) -> bytes:
    return render_result(face, style, width, height, logo)


def _render_once(
    face: bytes, style: bytes | None, width: int, height: int, logo: LogoInfo, seed: int = -1
) -> bytes:
    return _render_cached(face, style, width, height, logo)


def _face() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (256, 256), (224, 180, 150)).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


@dataclass(frozen=True)
class Record:
    index: int  # submit order
    calls: int
    lag: float  # emulated seconds from done to wait() returning
    round_trip: float  # of it, from sending the last GetResult to wait() returning
    finished: float  # emulated monotonic


@dataclass
class Run:
    name: str
    records: list[Record]
    switched_at: float
    bucket: str = ""
    plan: tuple[float, ...] = ()
    plan_after_restart: tuple[float, ...] = ()


@dataclass(frozen=True)
class Workload:
    steady: int
    slow: int
    workers: int
    speed: float
    slow_seconds: float = SLOWDOWNS[-1]


async def run_one(name: str, load: Workload, db_path: Path | None) -> Run:
    """One schedule against its own emulator; `db_path` set means the learned one."""
    clock = ScaledClock(load.speed)
    config = EmulatorConfig(
        access_key=AK,
        secret_key=SK,
        queue_seconds=QUEUE_SECONDS,
        generate_seconds=STEADY_SECONDS - QUEUE_SECONDS,
        generate_jitter=JITTER,
        rng_seed=7,
        clock=clock.now,
    )
    app = create_app(config)
    emulator: EmulatorState = app.state.emulator
    transport = CountingTransport(app, clock)
    request = SubmitRequest.from_images(_face(), face_switch=True)
    store = await Store.open(db_path, clock=clock) if db_path is not None else None
    learner = await PollingLearner.open(store.timings) if store is not None else None
    records: list[Record] = []
    run = Run(name, records, switched_at=math.inf)
    order = itertools.count()

    async def caller(client: PortraitClient) -> None:
        while (index := next(order)) < load.steady + load.slow:
            if index == load.steady:  # the service slows down, for the tasks already running too
                config.generate_seconds = load.slow_seconds - QUEUE_SECONDS
                run.switched_at = clock.monotonic()
            submitting = clock.monotonic()
            task_id = await client.submit(request)
            schedule = None
            if learner is not None:
                schedule = learner.schedule(request, elapsed=clock.monotonic() - submitting)
            await client.wait(task_id, schedule=schedule)
            returned = clock.now()
            lag = returned - emulator.store.done_at(emulator.tasks[task_id])
            round_trip = returned - transport.last_sent[task_id]
            records.append(Record(index, transport.polls[task_id], lag, round_trip, clock.monotonic()))

    try:
        async with PortraitClient(
            AK,
            SK,
            endpoint="http://emulator.bench",
            transport=transport,
            clock=clock,
            qps=1000.0,
            max_concurrent_tasks=load.workers,
        ) as client:
            await warm_up(client, config, request)
            await asyncio.gather(*(caller(client) for _ in range(load.workers)))
        if learner is not None and store is not None and db_path is not None:
            run.bucket, run.plan = bucket_of(request), learner.schedule(request).times
            await learner.flush()  # what a clean shutdown saves
            await store.close()
            store = await Store.open(db_path, clock=clock)
            run.plan_after_restart = (await PollingLearner.open(store.timings)).schedule(request).times
    finally:
        if store is not None:
            await store.close()
    return run


async def warm_up(client: PortraitClient, config: EmulatorConfig, request: SubmitRequest) -> None:
    """One task done at once, not measured nor learned from: imports, the first render, the first-call
    paths would otherwise make the first tasks look seconds slower (times `speed`)."""
    timings = config.queue_seconds, config.generate_seconds
    config.queue_seconds = config.generate_seconds = 0.0
    try:
        await client.get_result(await client.submit(request))
    finally:
        config.queue_seconds, config.generate_seconds = timings


def phases(run: Run, warmup: int, slow_seconds: float) -> Iterator[tuple[str, list[Record]]]:
    before = sorted((r for r in run.records if r.finished < run.switched_at), key=lambda r: r.index)
    after = sorted((r for r in run.records if r.finished >= run.switched_at), key=lambda r: r.index)
    yield f"warm-up (first {warmup})", [r for r in before if r.index < warmup]
    yield f"steady {STEADY_SECONDS:g} s +-{JITTER:.0%}", [r for r in before if r.index >= warmup]
    yield f"slowdown, first {ADAPTATION}", after[:ADAPTATION]
    yield f"slowdown {slow_seconds:g} s, after", after[ADAPTATION:]
    yield "all tasks", sorted(run.records, key=lambda r: r.index)


def stats(records: list[Record]) -> tuple[float, float, float]:
    if not records:
        return math.nan, math.nan, math.nan
    lags = [r.lag for r in records]
    return sum(r.calls for r in records) / len(records), pct(lags, 50), pct(lags, 95)


def report(current: Run, learned: Run, warmup: int, slow_seconds: float) -> None:
    head = (
        f"{'phase':<24}{'tasks':>6} | {'current: calls':>14}{'lag p50':>9}{'lag p95':>9} |"
        f" {'learned: calls':>14}{'lag p50':>9}{'lag p95':>9} | {'ratio: calls':>12}{'lag p50':>9}"
    )
    print(head)
    print("-" * len(head))
    ours_phases = phases(learned, warmup, slow_seconds)
    for (name, ours), (_, theirs) in zip(ours_phases, phases(current, warmup, slow_seconds), strict=True):
        c = stats(theirs)
        learned_stats = stats(ours)
        ratio_calls = learned_stats[0] / c[0] if c[0] else math.nan
        ratio_lag = learned_stats[1] / c[1] if c[1] else math.nan
        print(
            f"{name:<24}{len(ours):>6} | {c[0]:>14.2f}{c[1]:>9.2f}{c[2]:>9.2f} |"
            f" {learned_stats[0]:>14.2f}{learned_stats[1]:>9.2f}{learned_stats[2]:>9.2f} |"
            f" {ratio_calls:>11.2f}x{ratio_lag:>8.2f}x"
        )
    round_trip = pct([r.round_trip for r in learned.records], 50)
    print(
        f"best any schedule could do knowing the distribution exactly (median lag under {LAG_GOAL:g} s less"
        f" the learned run's round trip p50, {round_trip:.3f} s; benchmarks.poll_bound):"
    )
    _, steady, _, slowed, _ = (records for _, records in phases(learned, warmup, slow_seconds))
    for seconds, records in ((STEADY_SECONDS, steady), (slow_seconds, slowed)):
        line = f"  {seconds:g} s +-{JITTER:.0%}: {describe(bound_at(seconds, LAG_GOAL, round_trip))}"
        if records:  # how far the learned plan is from the best at the lag it actually gave
            lag = stats(records)[1]
            line += f"; at the learned p50 of {lag:.2f} s: {bound_at(seconds, lag, round_trip).calls:.2f}"
        print(line)


def bound_at(seconds: float, lag: float, round_trip: float) -> Bound:
    """The bound for the emulator's durations at `seconds` and a median lag of `lag` when each poll's answer
    takes `round_trip` to reach the caller: that much of the lag is spent whatever the schedule."""
    return fewest_calls(*uniform_around(seconds, JITTER), max(lag - round_trip, 1e-3))


def describe(bound: Bound) -> str:
    polls = ", ".join(f"{t:.2f}" for t in bound.times)
    verdict = (
        "both within reach" if bound.calls <= 1.5 else "1.5 calls and the lag goal together: out of reach"
    )
    return (
        f"{bound.calls:.2f} calls at least ({bound.achievable:.2f} reached by polls at {polls} s): {verdict}"
    )


async def run(loads: Sequence[Workload]) -> int:
    with tempfile.TemporaryDirectory() as tmp, mock.patch.object(emulator_app, "render_result", _render_once):
        started = time.perf_counter()
        runs = await asyncio.gather(
            *(
                run_one(name, load, None if name == "current" else Path(tmp) / f"bench-{i}.db")
                for i, load in enumerate(loads)
                for name in ("current", "learned")
            )
        )
        elapsed = time.perf_counter() - started
    failed = 0
    for load, current, learned in zip(loads, runs[::2], runs[1::2], strict=True):
        failed += scenario(load, current, learned)
    first = loads[0]
    print(
        f"{first.steady + first.slow} tasks per schedule and scenario, {first.workers} at once,"
        f" x{first.speed:g} time, {len(loads)} scenarios at the same time: {elapsed:.1f} s real"
    )
    return 1 if failed else 0


def scenario(load: Workload, current: Run, learned: Run) -> int:
    """Print one scenario; 1 if it failed (a task lost, or the plan lost over a restart)."""
    print(f"\n{STEADY_SECONDS:g} s +-{JITTER:.0%}, then suddenly {load.slow_seconds:g} s +-{JITTER:.0%}:")
    total = load.steady + load.slow
    if len(current.records) != total or len(learned.records) != total:
        print(f"FAILED: {len(current.records)} and {len(learned.records)} of {total} tasks finished")
        return 1
    report(current, learned, 2 * load.workers, load.slow_seconds)
    kept = learned.plan == learned.plan_after_restart and bool(learned.plan)
    first = f"{learned.plan[0]:.2f} s" if learned.plan else "-"
    print(
        f"learned plan for {learned.bucket} at the end: first poll {first} after"
        f" submit, {len(learned.plan)} planned polls; after a restart (store reopened): "
        f"{'the same plan' if kept else 'LOST'}"
    )
    return 0 if kept else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_polling", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--quick", action="store_true", help="fewer tasks, time x8 (default: x2)")
    parser.add_argument("--steady", type=int, help="tasks before the slowdown (80; 40 with --quick)")
    parser.add_argument("--slow", type=int, help="tasks after it (40; 24 with --quick)")
    parser.add_argument("--workers", type=int, default=4, help="tasks in flight at once")
    parser.add_argument("--speed", type=float, help="emulated seconds per real second (2; 8 with --quick)")
    args = parser.parse_args(argv)
    loads = [
        Workload(
            steady=args.steady or (40 if args.quick else 80),
            slow=args.slow or (24 if args.quick else 40),
            workers=args.workers,
            speed=args.speed or (8.0 if args.quick else 2.0),
            slow_seconds=slow_seconds,
        )
        for slow_seconds in SLOWDOWNS
    ]
    print(
        f"GetResult calls per task and delivery lag after done (emulated s): {loads[0].workers} callers, "
        f"{STEADY_SECONDS:g} s +-{JITTER:.0%} then suddenly "
        + " or ".join(f"{load.slow_seconds:g} s" for load in loads)
        + f" +-{JITTER:.0%}, time x{loads[0].speed:g}",
        flush=True,
    )
    return asyncio.run(run(loads))


if __name__ == "__main__":
    raise SystemExit(main())
