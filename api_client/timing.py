"""How long generations take, learned from finished tasks, and when to poll a new task because of it.

Why: the fixed schedule (1.5 s, then x1.5 up to 5 s) spends three GetResult calls on a 5 s generation and
delivers it ~2 s after it is done, because it knows nothing about the service. The service is steady for a
given kind of request, so the time the last tasks took predicts the next one well enough to poll once near
its expected finish, then densely for a short while, then back off.

Everything here is pure: no clock, no I/O, no randomness. Durations are seconds from the submit to the
first `done` reading, passed in by the caller (api_client.learning); the state is a small plain dict so a
store can keep it across restarts.

The model, per bucket (a kind of request, see `bucket_key`):

* An observation is an *interval*, because polls only ever bound the finish: the task was not done at the
  last reading before (`low`) and was done by the first `done` reading (`high`). A task already done at the
  first poll is *left-censored*: all we know is "done by then" (`low` = 0). A learned schedule makes most
  observations censored on purpose (it polls when the task is probably done), so treating `high` as the
  duration would only ever learn "it takes as long as we waited" and never notice a speed-up.
* The estimate is a normal distribution fitted to the window of recent intervals by maximum likelihood
  (EM over the censored intervals: closed-form truncated-normal moments, warm-started from the previous
  fit), with newer observations weighted more (`DECAY`), a floor on the spread, and quantiles widened for
  few samples (Student-t).
* Robustness: an observation far outside the current estimate (beyond `OUTLIER_Z` spreads) is held back,
  so one stuck task moves nothing. But when `SHIFT_AFTER` of the last `SHIFT_OF` observations are outside
  on the same side, the service itself changed speed: the window restarts from those observations, so the
  schedule adapts within a few tasks instead of the window's length.
* A moderate slowdown gives few such outliers: its tasks are each only a little late, and the fit absorbs
  them by widening its spread. Those within the bounds add up as evidence of a slowdown
  (api_client.timing_drift); when it is strong enough the window restarts from the first of them.
* A faster service is harder to see: its tasks are done at the first poll and say only "earlier". After a
  run of such tasks the plan adds one earlier poll (`PlanTuning.probe_after`), whose answers the fit (or,
  when they are far below it, the shift rule) turns into an earlier schedule.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final, Literal

from .timing_drift import Drift
from .timing_fit import Estimate, fit

__all__ = [
    "DEFAULT_PLAN",
    "BucketTimes",
    "Estimate",
    "PlanTuning",
    "TimingModel",
    "bucket_key",
    "bucket_of",
]

#: Observations kept per bucket (older ones also weigh little: DECAY**24 ~ 2 %).
WINDOW: Final = 24
#: Beyond this many spreads from the estimate an observation is an outlier (held back) or a shift.
OUTLIER_Z: Final = 3.0
#: A shift: this many of the last SHIFT_OF observations beyond OUTLIER_Z on the same side.
SHIFT_AFTER: Final = 3
SHIFT_OF: Final = 4
_STATE_VERSION: Final = 2
_READABLE_VERSIONS: Final = (1, _STATE_VERSION)

Side = Literal["ok", "late", "early"]


def bucket_key(*, width: int, height: int, fast: bool, steps: int = 18) -> str:
    """The kind of request whose generation time is learned together: size class, fast mode, steps.

    Sizes are grouped by area in quarter megapixels (the service's work grows with the pixels; 1000x1000
    and 960x1040 take the same time), so the few sizes in use make a handful of buckets.
    """
    quarters = max(1, round(width * height / 250_000))
    return f"{quarters / 4:.2f}mp/{'fast' if fast else 'full'}/s{steps}"


def bucket_of(request: object) -> str:
    """`bucket_key` of a SubmitRequest, or of a mapping with the same field names (width, height,
    hyper_switch, step), such as the parameters a caller persisted for a task; missing fields take the
    request defaults."""
    if isinstance(request, Mapping):
        fields: Mapping[str, Any] = request
    else:
        fields = {name: getattr(request, name, None) for name in ("width", "height", "hyper_switch", "step")}

    def number(name: str, default: int) -> int:
        value = fields.get(name)
        return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else default

    return bucket_key(
        width=number("width", 1000),
        height=number("height", 1000),
        fast=bool(fields.get("hyper_switch")),
        steps=number("step", 18),
    )


@dataclass(frozen=True)
class PlanTuning:
    """How an estimate becomes poll times (seconds since the submit).

    The first poll goes at the `first_quantile` of the predicted finish: a high one on purpose. Every task
    not done yet then costs more polls while one already done costs only lag, so a low quantile would spend
    three or four calls a task. The fit is trustworthy there: most tasks are observed right around it, so
    its quantile lands where the tasks really are, whatever the durations' shape (its median and spread do
    not: see README, "Polling that learns").

    Dense polls follow every `dense_lag` s: the lag the goal allows, not a share of the spread, because a
    task that missed the first poll is then caught within that lag while a finer spacing only buys a
    shorter lag with calls (benchmarks/poll_bound.py: first poll after the median, then one every lag, is
    the cheapest shape for the emulator's uniform durations). When the fitted spread is wide (a slow
    service, or a shift still being learned) the spacing grows to `dense_per_sd` spreads, up to
    `dense_max`: there the goal's calls and lag cannot both be met, and this keeps the calls near those of
    a fast service at the cost of lag. The dense window lasts until the `dense_until_quantile` or the
    latest finish among the recent tasks, whichever is later: polls past the slowest task cost nothing
    (no task is still running), while ending early makes the slowest ones wait a back-off gap. Then the
    delays grow by `factor` up to `max_delay` (the fixed schedule's cap), for the rare slow task. For 5 s
    +- 30 % this is ~1.3 calls a task and a median lag of ~0.8 s (tests/api_client/test_learning.py).

    A task already done at its first poll only says "earlier than that", so a service that became faster
    would stay unnoticed for many tasks. After `probe_after` such tasks in a row (under a steady service
    that happens to ~2 % of the tasks at the 72nd percentile) the next task gets one extra poll, at
    `probe_factor` of its first poll time: if it is done by then, the fit learns much more than "done by
    the usual time"; if not, it cost one call.
    """

    first_quantile: float = 0.72
    dense_lag: float = 0.9
    dense_per_sd: float = 0.75
    dense_min: float = 0.5
    dense_max: float = 2.0
    dense_until_quantile: float = 0.98
    factor: float = 1.5
    max_delay: float = 5.0
    min_first: float = 0.5
    probe_after: int = 12
    probe_factor: float = 0.6

    def __post_init__(self) -> None:
        if not (0.0 < self.first_quantile < self.dense_until_quantile < 1.0):
            raise ValueError(f"need 0 < first_quantile < dense_until_quantile < 1: {self!r}")
        if not (0 < self.dense_min <= self.dense_max) or self.dense_per_sd <= 0 or self.dense_lag <= 0:
            raise ValueError(f"invalid dense interval: {self!r}")
        if self.factor < 1 or self.max_delay <= 0 or self.min_first < 0:
            raise ValueError(f"invalid back-off: {self!r}")
        if self.probe_after < 1 or not (0 < self.probe_factor < 1):
            raise ValueError(f"invalid probe: {self!r}")

    def poll_times(self, estimate: Estimate, *, probe: bool = False) -> Iterator[float]:
        """The endless poll times, seconds since the submit: (probe,) first, dense window, backing off."""
        at = max(self.min_first, estimate.quantile(self.first_quantile))
        dense = min(max(self.dense_lag, self.dense_per_sd * estimate.sd, self.dense_min), self.dense_max)
        dense_until = max(estimate.quantile(self.dense_until_quantile), estimate.longest)
        if probe and self.probe_factor * at >= self.min_first:
            yield self.probe_factor * at
        yield at
        while at < dense_until - 1e-9:  # the first poll at or after it is still a dense one
            at += dense
            yield at
        delay = dense
        while True:
            delay = min(delay * self.factor, self.max_delay)
            at += delay
            yield at


DEFAULT_PLAN: Final = PlanTuning()


@dataclass
class BucketTimes:
    """The observations of one bucket and the estimate they give (None until the first one)."""

    window: list[tuple[float, float]] = field(default_factory=list)  # (low, high), oldest first
    recent: list[tuple[float, float, Side]] = field(default_factory=list)  # raw, for shift detection
    drift: Drift = field(default_factory=Drift)  # evidence of a slowdown within the outlier bounds
    _estimate: Estimate | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._estimate = fit(self.window)

    @property
    def estimate(self) -> Estimate | None:
        return self._estimate

    @property
    def done_at_first_poll(self) -> int:
        """How many of the latest tasks in a row were already done at their first poll."""
        run = 0
        for low, _ in reversed(self.window):
            if low > 0:
                break
            run += 1
        return run

    def observe(self, low: float, high: float) -> Side:
        """Add one finished task: not done at `low`, done by `high` (seconds since submit; low 0 when the
        first reading was already done). Returns how it compared with the estimate before it ("late" too
        when it completed the evidence of a slowdown: the schedule then moved at once)."""
        low, high = _checked(low, high)
        side = _classify(self._estimate, low, high)
        estimate = self._estimate
        slower = side == "ok" and estimate is not None and self.drift.add(estimate, low, high, keep=WINDOW)
        self.recent = [*self.recent, (low, high, side)][-SHIFT_OF:]
        shifted = [(lo, hi) for lo, hi, s in self.recent if s == side]
        if slower:  # a little late, task after task: slower since the change point
            shifted, side = self.drift.since, "late"
        elif side != "ok" and len(shifted) < SHIFT_AFTER:
            return side  # an outlier so far (a stuck task?): held back, it moves nothing
        if side == "ok":
            self.window = [*self.window, (low, high)][-WINDOW:]
        else:  # the service changed speed: forget the old regime at once
            self.window, self.recent, self.drift = shifted, [], Drift()
        self._estimate = fit(self.window, None if side != "ok" else self._estimate)
        return side

    def to_dict(self) -> dict[str, object]:
        """Plain JSON data. The fit goes along: it was warm-started task by task, so refitting the window
        from cold after a restart could plan a little differently."""
        state: dict[str, object] = {
            "v": _STATE_VERSION,
            "window": [[round(lo, 4), round(hi, 4)] for lo, hi in self.window],
            "recent": [[round(lo, 4), round(hi, 4), side] for lo, hi, side in self.recent],
            "drift": round(self.drift.score, 4),
            "since_change": [[round(lo, 4), round(hi, 4)] for lo, hi in self.drift.since],
        }
        if self._estimate is not None:
            state["fit"] = [self._estimate.mean, self._estimate.sd]
        return state

    @classmethod
    def from_dict(cls, state: Mapping[str, object]) -> BucketTimes:
        """The inverse of `to_dict`; raises ValueError for anything it did not write. A version 1 state
        (before the drift detector) loads with no drift evidence, as if the last task had been on time."""
        if state.get("v") not in _READABLE_VERSIONS:
            raise ValueError(f"unknown timing state version {state.get('v')!r}")
        window = [_checked(*_pair(item)) for item in _list(state.get("window"))][-WINDOW:]
        recent: list[tuple[float, float, Side]] = []
        for item in _list(state.get("recent"))[-SHIFT_OF:]:
            if not isinstance(item, list | tuple) or len(item) != 3 or item[2] not in ("ok", "late", "early"):
                raise ValueError(f"bad recent observation {item!r}")
            low, high = _checked(*_pair(item[:2]))
            recent.append((low, high, item[2]))
        score = state.get("drift", 0.0)
        if not isinstance(score, int | float) or isinstance(score, bool) or not 0.0 <= score < math.inf:
            raise ValueError(f"bad drift {score!r}")
        since = [_checked(*_pair(item)) for item in _list(state.get("since_change"))][-WINDOW:]
        times = cls(window=window, recent=recent, drift=Drift(float(score), since))
        saved = state.get("fit")
        if saved is not None and times._estimate is not None and times._estimate.weight > 1.0:
            mean, sd = _pair(saved)
            if not (math.isfinite(mean) and math.isfinite(sd) and sd > 0):
                raise ValueError(f"bad fit {saved!r}")
            times._estimate = replace(times._estimate, mean=mean, sd=sd)
        return times


class TimingModel:
    """Every bucket's `BucketTimes`: observe finished tasks, predict and plan new ones."""

    def __init__(self, buckets: Mapping[str, BucketTimes] | None = None, *, plan: PlanTuning = DEFAULT_PLAN):
        self.buckets: dict[str, BucketTimes] = dict(buckets or {})
        self.plan = plan

    def observe(self, bucket: str, low: float, high: float) -> Side:
        return self.buckets.setdefault(bucket, BucketTimes()).observe(low, high)

    def estimate(self, bucket: str) -> Estimate | None:
        times = self.buckets.get(bucket)
        return times.estimate if times is not None else None

    def poll_times(self, bucket: str) -> Iterator[float] | None:
        """Poll times since submit for a new task of `bucket`; None when nothing is known yet (the caller
        then uses the fixed schedule, which is also what teaches the model its first durations)."""
        times = self.buckets.get(bucket)
        if times is None or times.estimate is None:
            return None
        probe = times.done_at_first_poll >= self.plan.probe_after
        return self.plan.poll_times(times.estimate, probe=probe)

    def to_dict(self) -> dict[str, dict[str, object]]:
        """bucket -> its state, each small enough for one row of a table (a few hundred bytes)."""
        return {key: times.to_dict() for key, times in self.buckets.items()}

    @classmethod
    def from_dict(
        cls, states: Mapping[str, Mapping[str, object]], *, plan: PlanTuning = DEFAULT_PLAN
    ) -> TimingModel:
        return cls({key: BucketTimes.from_dict(state) for key, state in states.items()}, plan=plan)


def _classify(estimate: Estimate | None, low: float, high: float) -> Side:
    """ok, or late / early: surely outside `OUTLIER_Z` spreads of the estimate."""
    if estimate is None:
        return "ok"
    if low > estimate.mean + estimate.spread(OUTLIER_Z):
        return "late"
    if high < estimate.mean - estimate.spread(OUTLIER_Z):
        return "early"
    return "ok"


def _checked(low: float, high: float) -> tuple[float, float]:
    low, high = float(low), float(high)
    if not (math.isfinite(low) and math.isfinite(high)) or high <= 0 or high < low:
        raise ValueError(f"not an observation: low={low!r}, high={high!r}")
    return max(low, 0.0), high


def _pair(item: object) -> tuple[float, float]:
    if not isinstance(item, list | tuple) or len(item) != 2:
        raise ValueError(f"bad observation {item!r}")
    low, high = item
    if not all(isinstance(x, int | float) and not isinstance(x, bool) for x in (low, high)):
        raise ValueError(f"bad observation {item!r}")
    return float(low), float(high)


def _list(value: object) -> list[object]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError(f"expected a list, got {type(value).__name__}")
    return value
