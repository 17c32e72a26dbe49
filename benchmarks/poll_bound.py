"""The fewest GetResult calls any poll schedule could spend per task, knowing the duration's law exactly.

Why: the goal asks for at most 1.5 calls a task with a median delivery lag under 1 s. Whether a schedule
could reach both at all depends on the spread of the durations, not on how well a plan learns it, so the
benchmark prints this bound beside what it measured: a miss above the bound is the plan's, one below it is
no schedule's fault.

The law is the emulator's: each task's duration is uniform in [low, high] (its pace is uniform in
[1 - jitter, 1 + jitter] on queue and generation together). A schedule is any increasing sequence of poll
times since the submit. A task of duration D costs one call per poll up to and including the first at or
after D, and its lag is that poll's time minus D; "median lag <= lag" means at least half the tasks have a
lag of at most `lag`.

How: dynamic programming over poll times on a grid of step h = lag / steps (fewer steps when the lag is
short beside the spread, to keep the grid small), anchored at `high` (a poll at
or after `high` is the last one any task needs; moving it to `high` shortens lags and costs nothing), with
the lag-covered share of the tasks as a second state. Every grid schedule is tried, not one family of them.
A grid schedule is a schedule, so its optimum at `lag` is reachable (`achievable`). Conversely, moving each
poll of any schedule up to the next grid point never adds calls (later polls catch more tasks) and adds less
than h to any lag, so the grid optimum at `lag + h` is a lower bound for every schedule (`calls`): the true
optimum lies between the two, and the bracket narrows as `steps` grows.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Bound", "fewest_calls", "uniform_around"]

_INF = math.inf
#: Grid points at most over [low, high] (the work grows with their square; a lag of a tenth of the spread
#: still gets 40 steps).
_MAX_POINTS = 400


@dataclass(frozen=True)
class Bound:
    """`calls` no schedule can beat for a median lag of `lag`; `achievable` is what `times` (seconds since
    the submit) spends, with a median lag of at most `lag`."""

    calls: float
    achievable: float
    times: tuple[float, ...]
    lag: float


def uniform_around(mean: float, jitter: float) -> tuple[float, float]:
    """The emulator's durations for `mean` seconds +- `jitter` (a share): (low, high)."""
    return mean * (1.0 - jitter), mean * (1.0 + jitter)


def fewest_calls(low: float, high: float, lag: float, *, steps: int = 50) -> Bound:
    """The bound for durations uniform in [low, high] and a median lag of at most `lag` seconds."""
    if not (0.0 <= low < high) or lag <= 0.0 or steps < 1:
        raise ValueError(f"need 0 <= low < high, lag > 0, steps >= 1: {low!r}, {high!r}, {lag!r}, {steps!r}")
    steps = max(1, min(steps, math.floor(_MAX_POINTS * lag / (high - low))))  # a short lag: a coarser grid
    step = lag / steps
    lower, _ = _grid_optimum(low, high, step, steps + 1)
    achievable, times = _grid_optimum(low, high, step, steps)
    return Bound(calls=lower, achievable=achievable, times=times, lag=lag)


def _grid_optimum(low: float, high: float, step: float, window: int) -> tuple[float, tuple[float, ...]]:
    """The fewest expected calls over schedules on the grid high - i * step, when a poll catches a task with
    an acceptable lag if the task finished within `window` grid steps before it; and one such schedule.

    State: the current poll (grid index j, at x_j) and u, the grid steps of durations the polls after it
    must still cover with an acceptable lag. A poll after x_j is reached by the tasks longer than x_j, so
    it costs (high - x_j) / width calls a task; a poll d steps after x_j covers min(d, window) steps (the
    tasks between the two polls within the window of the later one). Polls before `low` catch nothing and
    are never worth making; the first poll covers the durations from `low` up to it, within its window."""
    width = high - low
    n = math.floor(width / step + 1e-9)  # grid points x_0 >= low .. x_n = high
    need = math.ceil(width / 2.0 / step - 1e-9)  # steps to cover: half the tasks

    def at(j: int) -> float:
        return high - (n - j) * step

    # best[j][u]: the fewest further calls (in units of width) after a poll at x_j, covering u more steps.
    best: list[list[float]] = [[_INF] * (need + 1) for _ in range(n + 1)]
    best[n][0] = 0.0
    # tail[j][u] = min over j' >= j of best[j'][u]: the next poll `window` or more steps on, whose coverage
    # no longer grows with the gap.
    tail: list[list[float]] = [[_INF] * (need + 1) for _ in range(n + 2)]
    tail[n] = best[n][:]
    for j in range(n - 1, -1, -1):
        reached = high - at(j)  # tasks still running at x_j pay for the next poll
        row = [_INF] * (need + 1)
        for gap in range(1, min(window, n - j + 1)):
            row = list(map(min, row, _covering(best[j + gap], gap)))
        if j + window <= n:
            row = list(map(min, row, _covering(tail[j + window], window)))
        best[j] = [reached + v for v in row]
        tail[j] = list(map(min, best[j], tail[j + 1]))
    result, first = _INF, -1
    for j in range(n + 1):
        covered = max(0.0, min(at(j) - low, window * step))
        u = max(0, math.ceil((width / 2.0 - covered) / step - 1e-9))
        if best[j][min(u, need)] < result:
            result, first = best[j][min(u, need)], j
    return 1.0 + result / width, _path(best, first, need, window, step, low, at)


def _covering(row: list[float], gap: int) -> list[float]:
    """`row` read as "covering u steps from here" for a poll `gap` steps earlier: u - gap from there."""
    return [row[0]] * gap + row[: len(row) - gap] if gap < len(row) else [row[0]] * len(row)


def _path(
    best: list[list[float]],
    first: int,
    need: int,
    window: int,
    step: float,
    low: float,
    at: Callable[[int], float],
) -> tuple[float, ...]:
    """The poll times of an optimal schedule starting at grid index `first`, re-found from `best`."""
    n = len(best) - 1
    width = at(n) - low
    covered = max(0.0, min(at(first) - low, window * step))
    u = min(need, max(0, math.ceil((width / 2.0 - covered) / step - 1e-9)))
    times, j = [at(first)], first
    while j < n:
        reached = at(n) - at(j)
        target = best[j][u]
        for k in range(j + 1, n + 1):
            rest = max(0, u - min(k - j, window))
            if math.isclose(reached + best[k][rest], target, rel_tol=0, abs_tol=1e-9):
                j, u = k, rest
                break
        else:  # pragma: no cover - best[j][u] was built from one of these
            raise AssertionError("no step of the optimal schedule found")
        times.append(at(j))
    return tuple(times)
