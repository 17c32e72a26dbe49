"""Fitting a generation-time estimate to interval-censored durations: the statistics behind api_client.timing.

Apart from the model (buckets, shifts, plans) because it is plain numerical work with its own tests: a
normal distribution fitted by maximum likelihood (EM with closed-form truncated-normal moments), newer
observations weighted more, a floor on the spread, and Student-t quantiles for few samples.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Final

__all__ = ["DECAY", "MIN_REL_SD", "MIN_SD", "Estimate", "fit", "floor_sd"]

#: Weight of an observation relative to the next newer one.
DECAY: Final = 0.9
#: The spread is never taken below this (seconds, and share of the mean): a run of identical durations
#: must not make the schedule bet on a single instant.
MIN_SD: Final = 0.15
MIN_REL_SD: Final = 0.06
_EM_WARM: Final = 40
_EM_COLD: Final = 400
_SQRT2: Final = math.sqrt(2.0)
_SQRT_2PI: Final = math.sqrt(2.0 * math.pi)


@dataclass(frozen=True)
class Estimate:
    """The predicted duration of the next task of a bucket: `mean` and `sd` of a normal fitted to
    `samples` tasks (`weight` of them in effect, after the recency weighting). `longest` is the latest
    "done by" bound among those tasks: the normal's upper quantiles fall short of the real slowest tasks
    when the durations have a hard upper edge (the fit is narrowed by it), and the plan must keep polling
    densely until then or the last tasks wait a back-off gap for their result.

    Quantiles are Student-t ones with `weight - 1` degrees of freedom: right after a shift the estimate
    rests on three tasks, and a normal quantile would trust their spread as if it were known, ending the
    dense window far too early for the next task that is a little slower."""

    mean: float
    sd: float
    samples: int
    weight: float
    longest: float = 0.0

    def quantile(self, p: float) -> float:
        return self.mean + self.spread(NormalDist().inv_cdf(p))

    def spread(self, z: float) -> float:
        """How far from the mean the quantile of the normal quantile `z` lies. The next task's spread is
        the durations' widened by the doubt about the mean itself, sqrt(1 + 1/n)."""
        predictive = self.sd * math.sqrt(1.0 + 1.0 / self.weight)
        return predictive * _student_t(z, max(self.weight - 1.0, 1.0))


def fit(window: Sequence[tuple[float, float]], start: Estimate | None = None) -> Estimate | None:
    """Maximum-likelihood normal for interval-censored durations (EM), newest weighted most.

    EM creeps when most intervals are censored, so a bucket warm-starts from its previous estimate (the
    window changed by one task: a few dozen iterations follow the optimum); a cold start (first task,
    after a shift) iterates longer."""
    if not window:
        return None
    longest = max(high for _, high in window)
    weights = [DECAY ** (len(window) - 1 - i) for i in range(len(window))]
    total = sum(weights)
    effective = total**2 / sum(w * w for w in weights)
    if all(low <= 0 for low, _ in window):
        # Every task was done at its first poll: the data say "earlier than that", nothing more. Aim
        # below the earliest of those polls, so the next tasks get observed and the fit has something.
        first = min(high for _, high in window)
        return Estimate(0.75 * first, floor_sd(0.75 * first), len(window), 1.0, longest)
    if start is not None:
        mean, sd, iterations = start.mean, max(start.sd, floor_sd(start.mean)), _EM_WARM
    else:
        # The midpoints (the upper bound for censored ones: the plan polls near the finish, so that is
        # closer than anything lower), which EM then corrects.
        points = [(low + high) / 2 if low > 0 else high for low, high in window]
        mean = sum(w * x for w, x in zip(weights, points, strict=True)) / total
        var = sum(w * (x - mean) ** 2 for w, x in zip(weights, points, strict=True)) / total
        sd, iterations = max(math.sqrt(var), floor_sd(mean)), _EM_COLD
    for _ in range(iterations):
        first_moment = second_moment = 0.0
        for w, (low, high) in zip(weights, window, strict=True):
            m1, m2 = _truncated_moments(mean, sd, low, high)
            first_moment += w * m1
            second_moment += w * m2
        new_mean = first_moment / total
        new_sd = max(math.sqrt(max(second_moment / total - new_mean**2, 0.0)), floor_sd(new_mean))
        done = abs(new_mean - mean) < 1e-5 and abs(new_sd - sd) < 1e-5
        mean, sd = new_mean, new_sd
        if done:
            break
    return Estimate(mean, sd, len(window), effective, longest)


def _truncated_moments(mean: float, sd: float, low: float, high: float) -> tuple[float, float]:
    """E[T] and E[T^2] of normal(mean, sd) restricted to (low, high]."""
    a, b = (low - mean) / sd, (high - mean) / sd
    mass = _cdf(b) - _cdf(a)
    if mass < 1e-12:  # the interval is far in a tail: its nearest end is as good as anything
        point = min(max(mean, low), high)
        return point, point * point
    pa, pb = _pdf(a), _pdf(b)
    ratio = (pa - pb) / mass
    m1 = mean + sd * ratio
    var = sd * sd * max(1.0 + (a * pa - b * pb) / mass - ratio * ratio, 0.0)
    return m1, m1 * m1 + var


def _cdf(z: float) -> float:
    return 0.5 * (1.0 + math.erf(z / _SQRT2))


def _pdf(z: float) -> float:
    return math.exp(-0.5 * z * z) / _SQRT_2PI


def _student_t(z: float, dof: float) -> float:
    """The Student-t quantile with `dof` degrees of freedom at the normal quantile `z` (Cornish-Fisher;
    within ~3 % from 2 degrees of freedom up, and the stdlib has no t distribution)."""
    z3, z5 = z**3, z**5
    return z + (z3 + z) / (4 * dof) + (5 * z5 + 16 * z3 + 3 * z) / (96 * dof**2)


def floor_sd(mean: float) -> float:
    return max(MIN_SD, MIN_REL_SD * abs(mean))
