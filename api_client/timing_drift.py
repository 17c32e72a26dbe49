"""Noticing that a service became a little slower: the change detector behind api_client.timing.

Why: the shift rule there waits for tasks beyond OUTLIER_Z spreads, which a moderate slowdown hardly
gives. 5 s +- 30 % becoming 7 s +- 30 % overlaps the old durations, and every late task the fit absorbs
widens its spread, so the next one is less surprising still: the schedule crept from one regime to the
other over most of a window (~20 tasks), two or three calls a task on the way. Here the evidence is
tasks a little late *in a row*, summed (a CUSUM): each task within the outlier bounds adds the
log-likelihood ratio of "the service is DRIFT_Z spreads slower than estimated" against "as estimated",
the sum never goes below zero, and at DRIFT_ALARM the service is taken to have slowed since the task that
lifted the sum off zero (the change point). A task done at its first poll subtracts about two, so on a
steady service the sum is back at zero a task or two after a late one.

Tasks beyond the outlier bounds are left to the shift rule and count for nothing here: one stuck task
then moves nothing, neither the fit nor this sum. No task adds more than DRIFT_CAP, so the alarm takes
two late tasks at least. Pure like the rest of the model: no clock, no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Final

from .timing_fit import Estimate

__all__ = ["DRIFT_ALARM", "DRIFT_CAP", "DRIFT_Z", "Drift", "late_evidence"]

#: The slowdown looked for, in the estimate's predictive spreads.
DRIFT_Z: Final = 2.0
#: The most one task adds to the sum.
DRIFT_CAP: Final = 3.0
#: The sum at which the service is taken to be slower.
DRIFT_ALARM: Final = 5.0
_SQRT2: Final = math.sqrt(2.0)


@dataclass
class Drift:
    """One bucket's evidence of a slowdown: the sum, and the tasks since it left zero (oldest first)."""

    score: float = 0.0
    since: list[tuple[float, float]] = field(default_factory=list)

    def add(self, estimate: Estimate, low: float, high: float, *, keep: int) -> bool:
        """Count one task that was within the outlier bounds of `estimate`; True when the service is taken
        to have slowed down: `since` then holds the tasks since the change point (at most `keep`)."""
        self.score = max(0.0, self.score + late_evidence(estimate, low, high))
        self.since = [*self.since, (low, high)][-keep:] if self.score > 0 else []
        return self.score >= DRIFT_ALARM


def late_evidence(estimate: Estimate, low: float, high: float) -> float:
    """log P(low < T <= high | T ~ estimate shifted DRIFT_Z spreads later) - log P(... | estimate), at most
    DRIFT_CAP: positive for a task still running where the estimate expected it done, negative for one
    done early. `low` 0 is a task done at its first poll: "done by `high`", nothing more."""
    scale = estimate.spread(1.0)
    a = (low - estimate.mean) / scale if low > 0 else -math.inf
    b = (high - estimate.mean) / scale
    now, later = _mass(a, b), _mass(a - DRIFT_Z, b - DRIFT_Z)
    if now <= 0.0:  # far in a tail of the estimate (a rounding-level probability): its side says which way
        return DRIFT_CAP if a > 0 else -DRIFT_CAP
    if later <= 0.0:
        return -DRIFT_CAP
    return min(math.log(later / now), DRIFT_CAP)


def _mass(a: float, b: float) -> float:
    """P(a < Z <= b) for a standard normal, accurate far in either tail (erfc, not 1 - cdf)."""
    if a >= 0:
        return 0.5 * (math.erfc(a / _SQRT2) - math.erfc(b / _SQRT2))
    if b <= 0:
        return 0.5 * (math.erfc(-b / _SQRT2) - math.erfc(-a / _SQRT2))
    return 1.0 - 0.5 * (math.erfc(-a / _SQRT2) + math.erfc(b / _SQRT2))
