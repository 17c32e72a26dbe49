"""api_client.timing_drift: a slowdown whose tasks are each only a little late moves the plan within a few
tasks, while a stuck task still moves nothing."""

from __future__ import annotations

import json
import random
import statistics

import pytest

from api_client.timing import BucketTimes, Estimate, TimingModel
from api_client.timing_drift import DRIFT_ALARM, DRIFT_CAP, Drift, late_evidence
from tests.api_client.test_timing import B, polled, teach


def trained(seed: int, mean: float = 5.0, tasks: int = 40) -> tuple[TimingModel, random.Random]:
    rng = random.Random(seed)
    model = TimingModel()
    teach(model, [mean * rng.uniform(0.7, 1.3) for _ in range(tasks)])
    return model, rng


def first_poll(model: TimingModel) -> float:
    return next(iter(model.poll_times(B) or []))


def test_evidence_is_up_for_a_task_still_running_past_its_first_poll_and_down_for_one_done_by_then() -> None:
    estimate = Estimate(mean=5.5, sd=0.4, samples=24, weight=16.0)
    assert late_evidence(estimate, 0.0, 5.7) < -1.5  # done at the first poll: against a slowdown
    assert 0.5 < late_evidence(estimate, 5.7, 6.6) < DRIFT_CAP  # missed it, caught by the next poll
    assert late_evidence(estimate, 5.7, 6.6) < late_evidence(estimate, 6.4, 7.3)  # later says more
    assert late_evidence(estimate, 55.0, 60.0) == DRIFT_CAP  # no single task decides
    assert late_evidence(estimate, 0.0, 1.0) < 0


def test_a_moderate_slowdown_moves_the_first_poll_within_a_few_tasks() -> None:
    """5 s +- 30 % then 7 s +- 30 % (the true 72nd percentile goes from 5.66 s to 7.92 s), 30 seeded runs:
    the tasks overlap the old ones, few are outliers, and the fit alone widens instead of moving (after 8
    tasks its first poll averaged 6.9 s, past 7.3 s in 3 runs of 30)."""
    after: list[list[float]] = []
    for seed in range(30):
        model, rng = trained(seed)
        firsts = []
        for _ in range(8):
            model.observe(B, *polled(model, 7.0 * rng.uniform(0.7, 1.3)))
            firsts.append(first_poll(model))
        after.append(firsts)
    assert statistics.mean(firsts[-1] for firsts in after) > 7.2
    assert sum(any(first > 7.3 for first in firsts[:6]) for firsts in after) >= 10  # within 6 tasks
    assert sum(any(first > 7.3 for first in firsts) for firsts in after) >= 15  # within 8


def test_tasks_a_little_late_in_a_row_restart_the_window_from_the_first_of_them() -> None:
    model, _ = trained(3)
    times = model.buckets[B]
    assert times.drift == Drift()
    late, sides = [], []
    for _ in range(2):  # each 2-2.8 spreads late: inside the outlier bounds, so the shift rule sees nothing
        estimate = times.estimate
        assert estimate is not None
        late.append((estimate.mean + estimate.spread(2.0), estimate.mean + estimate.spread(2.8)))
        sides.append(model.observe(B, *late[-1]))
    assert sides == ["ok", "late"]
    assert times.window == late and times.drift == Drift() and times.recent == []
    assert first_poll(model) > late[0][0]


def test_a_stuck_task_adds_no_evidence_and_never_gets_into_a_restarted_window() -> None:
    model, _ = trained(4)
    drift = model.buckets[B].drift
    assert model.observe(B, 55.0, 60.0) == "late"
    assert model.buckets[B].drift == drift
    for seed in range(6):  # a steady service with a stuck task every 25: its ordinary slow tasks next to them
        model, rng = trained(seed)
        for i in range(150):
            duration = 60.0 if i % 25 == 24 else 5.0 * rng.uniform(0.7, 1.3)
            model.observe(B, *polled(model, duration))
            assert all(low < 30.0 for low, _ in model.buckets[B].window)
            assert first_poll(model) < 7.5


def test_the_evidence_is_kept_across_a_restart_and_old_states_still_load() -> None:
    model, _ = trained(7)
    estimate = model.estimate(B)
    assert estimate is not None
    times = model.buckets[B]
    times.drift = Drift()
    model.observe(B, estimate.quantile(0.8), estimate.quantile(0.97))
    assert 0 < times.drift.score < DRIFT_ALARM and len(times.drift.since) == 1
    again = BucketTimes.from_dict(json.loads(json.dumps(times.to_dict())))
    assert again.drift.score == pytest.approx(times.drift.score, abs=1e-3)
    assert again.drift.since == [(round(lo, 4), round(hi, 4)) for lo, hi in times.drift.since]
    old = {key: value for key, value in times.to_dict().items() if key not in ("drift", "since_change")}
    loaded = BucketTimes.from_dict({**old, "v": 1})  # written before the detector
    assert loaded.drift == Drift() and loaded.window == again.window
    with pytest.raises(ValueError):
        BucketTimes.from_dict({**times.to_dict(), "drift": -1.0})
    with pytest.raises(ValueError):
        BucketTimes.from_dict({**times.to_dict(), "since_change": [[2.0, 1.0]]})
