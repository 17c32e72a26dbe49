"""api_client.timing: the pure model of generation time (buckets, censored fit, outliers, shifts, plans)."""

from __future__ import annotations

import itertools
import json
import random

import pytest

from api_client.models import SubmitRequest
from api_client.timing import (
    DEFAULT_PLAN,
    BucketTimes,
    Estimate,
    PlanTuning,
    TimingModel,
    bucket_key,
    bucket_of,
)
from api_client.timing_fit import fit

B = "1.00mp/full/s18"


def polled(
    times: TimingModel | BucketTimes, duration: float, plan: PlanTuning = DEFAULT_PLAN
) -> tuple[float, float]:
    """What polling on the model's plan would observe for a task of `duration`: (low, high)."""
    if isinstance(times, TimingModel):
        poll_times = times.poll_times(B)
    else:
        poll_times = plan.poll_times(times.estimate) if times.estimate else None
    assert poll_times is not None
    low = 0.0
    for at in poll_times:
        if at >= duration:
            return low, at
        low = at
    raise AssertionError("unreachable")  # pragma: no cover


def teach(model: TimingModel, durations: list[float]) -> None:
    for duration in durations:
        if model.estimate(B) is None:
            model.observe(B, duration - 0.4, duration + 0.4)  # as the fixed schedule would see it, roughly
        else:
            model.observe(B, *polled(model, duration))


# --- buckets ---------------------------------------------------------------------------------------------


def test_bucket_groups_by_area_fast_mode_and_steps() -> None:
    assert bucket_key(width=1000, height=1000, fast=False) == "1.00mp/full/s18"
    assert bucket_key(width=960, height=1040, fast=False) == bucket_key(width=1000, height=1000, fast=False)
    assert bucket_key(width=1000, height=1000, fast=True) == "1.00mp/fast/s18"
    assert bucket_key(width=1500, height=1500, fast=False, steps=25) == "2.25mp/full/s25"
    assert bucket_key(width=600, height=600, fast=False) == "0.25mp/full/s18"


def test_bucket_of_a_request_or_its_persisted_fields() -> None:
    request = SubmitRequest(image_urls=("https://x/y.jpg",), width=1200, height=800, hyper_switch=True)
    assert bucket_of(request) == "1.00mp/fast/s18"
    persisted = {"width": 1200, "height": 800, "hyper_switch": True, "prompt": "p"}
    assert bucket_of(persisted) == bucket_of(request)
    assert bucket_of({}) == bucket_of(SubmitRequest(image_urls=("https://x/y.jpg",)))  # request defaults
    assert bucket_of({"width": "wide", "height": True}) == "1.00mp/full/s18"  # junk -> defaults


# --- the fit ---------------------------------------------------------------------------------------------


def test_no_data_no_estimate_no_plan() -> None:
    model = TimingModel()
    assert model.estimate(B) is None and model.poll_times(B) is None
    assert fit([]) is None


def test_fit_recovers_a_normal_from_narrow_intervals() -> None:
    rng = random.Random(1)
    window = [(x - 0.25, x + 0.25) for x in (rng.gauss(8.0, 1.0) for _ in range(24))]
    estimate = fit(window)
    assert estimate is not None
    assert estimate.mean == pytest.approx(8.0, abs=0.5) and estimate.sd == pytest.approx(1.0, abs=0.4)


def test_fit_reads_censored_tasks_as_done_by_then_not_at_then() -> None:
    """Tasks done by their first poll at 5.5 s say 'at most 5.5 s': the mean must stay near the truth (5 s),
    where taking the poll time as the duration would put it well above."""
    rng = random.Random(2)
    fitted, naive = [], []
    for _ in range(30):
        durations = [rng.gauss(5.0, 0.8) for _ in range(24)]
        window = [(0.0, 5.5) if d <= 5.5 else (d - 0.25, d + 0.25) for d in durations]
        estimate = fit(window)
        assert estimate is not None
        fitted.append(estimate.mean)
        naive.append(sum(high if low == 0 else (low + high) / 2 for low, high in window) / len(window))
    assert sum(fitted) / len(fitted) == pytest.approx(5.0, abs=0.2)
    assert sum(naive) / len(naive) > 5.4


def test_spread_has_a_floor_and_is_wider_with_few_samples() -> None:
    one = fit([(4.9, 5.1)])
    many = fit([(4.9, 5.1)] * 24)
    assert one is not None and many is not None
    assert many.sd >= 0.3  # 6 % of 5 s: identical durations do not make a point bet
    assert one.quantile(0.98) - one.mean > 2 * (many.quantile(0.98) - many.mean)


# --- the plan --------------------------------------------------------------------------------------------


def test_plan_first_near_the_expected_finish_then_dense_then_backing_off() -> None:
    estimate = Estimate(mean=5.0, sd=0.8, samples=24, weight=20.0)
    times = list(itertools.islice(DEFAULT_PLAN.poll_times(estimate), 14))
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert times[0] == pytest.approx(estimate.quantile(0.72))
    dense = list(itertools.takewhile(lambda g: g == pytest.approx(0.9), gaps))  # the lag budget
    assert len(dense) == 2  # 5.49 -> 6.39 -> 7.29: the first poll past the 98th percentile (~6.8)
    assert times[len(dense) - 1] <= estimate.quantile(0.98) < times[len(dense)]
    later = gaps[len(dense) :]
    assert later[0] == pytest.approx(1.35) and later[-1] == 5.0
    assert all(b >= a for a, b in itertools.pairwise(later))


def test_plan_dense_interval_is_the_lag_budget_unless_the_spread_is_wide() -> None:
    def first_gap(sd: float) -> float:
        a, b = itertools.islice(DEFAULT_PLAN.poll_times(Estimate(30.0, sd, 24, 20.0, longest=40.0)), 2)
        return b - a

    assert first_gap(0.5) == pytest.approx(0.9)  # a finer spacing would buy a shorter lag with calls
    assert first_gap(1.0) == pytest.approx(0.9)
    assert first_gap(2.0) == pytest.approx(1.5)  # a wide spread: calls kept down, the lag let grow
    assert first_gap(6.0) == pytest.approx(2.0)  # 4.5 would leave the dense window too sparse


def test_plan_stays_dense_until_the_latest_finish_seen() -> None:
    """Durations with a hard upper edge (the emulator's uniform ones) make the fitted normal narrow, so its
    98th percentile falls short of the slowest tasks: those must still be caught within the lag budget,
    not after a back-off gap."""
    estimate = Estimate(mean=5.0, sd=0.5, samples=24, weight=20.0, longest=7.2)
    times = list(itertools.islice(DEFAULT_PLAN.poll_times(estimate), 8))
    assert estimate.quantile(0.98) < 6.2
    dense = [t for t in times if t < 7.2 + 0.9]  # up to the first poll at or after 7.2 s
    assert dense[-2] < 7.2 <= dense[-1]
    assert all(b - a == pytest.approx(0.9) for a, b in itertools.pairwise(dense))


def test_fit_keeps_the_latest_finish_of_its_window() -> None:
    estimate = fit([(0.0, 5.6), (5.6, 6.5), (6.5, 7.4), (0.0, 5.5)])
    assert estimate is not None and estimate.longest == 7.4
    censored = fit([(0.0, 5.6), (0.0, 5.8)])
    assert censored is not None and censored.longest == 5.8


def test_plan_probe_comes_before_the_first_poll() -> None:
    estimate = Estimate(12.0, 1.0, 24, 20.0)
    plain = list(itertools.islice(DEFAULT_PLAN.poll_times(estimate), 3))
    probed = list(itertools.islice(DEFAULT_PLAN.poll_times(estimate, probe=True), 4))
    assert probed[0] == pytest.approx(0.6 * plain[0]) and probed[1:] == plain


@pytest.mark.parametrize(
    "fields",
    [
        {"first_quantile": 0.99},
        {"dense_min": 0},
        {"dense_max": 0.1},
        {"dense_lag": 0},
        {"factor": 0.9},
        {"probe_after": 0},
        {"probe_factor": 1.0},
        {"max_delay": 0},
    ],
)
def test_plan_rejects_nonsense(fields: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        PlanTuning(**fields)  # type: ignore[arg-type]


# --- learning --------------------------------------------------------------------------------------------


def test_converges_on_a_steady_service() -> None:
    """5 s +- 30 % (uniform): the first poll settles near the true 72nd percentile, 5.66 s."""
    firsts = []
    for seed in range(8):
        rng = random.Random(seed)
        model = TimingModel()
        teach(model, [5.0 * rng.uniform(0.7, 1.3) for _ in range(60)])
        estimate = model.estimate(B)
        assert estimate is not None and 0.3 < estimate.sd < 1.5  # the truth is 0.87
        firsts.append(next(iter(model.poll_times(B) or [])))
    assert all(abs(first - 5.66) < 0.75 for first in firsts)  # a window of ~15 tasks in effect: noisy
    assert sum(firsts) / len(firsts) == pytest.approx(5.66, abs=0.25)


def test_one_stuck_task_moves_nothing() -> None:
    rng = random.Random(4)
    model = TimingModel()
    teach(model, [5.0 * rng.uniform(0.7, 1.3) for _ in range(30)])
    before = model.estimate(B)
    assert model.observe(B, 55.0, 60.0) == "late"
    assert model.estimate(B) == before
    teach(model, [5.0, 5.0])
    estimate = model.estimate(B)
    assert before is not None and estimate is not None and estimate.mean < before.mean + 0.5


def test_a_sudden_slowdown_resets_after_three_late_tasks() -> None:
    rng = random.Random(5)
    model = TimingModel()
    teach(model, [5.0 * rng.uniform(0.7, 1.3) for _ in range(30)])
    sides = [model.observe(B, *polled(model, 12.0 * rng.uniform(0.9, 1.1))) for _ in range(3)]
    assert sides == ["late", "late", "late"]
    estimate = model.estimate(B)
    assert estimate is not None and estimate.mean == pytest.approx(12.0, abs=1.5)
    assert len(model.buckets[B].window) == 3  # the old regime is gone


def test_a_speedup_is_found_by_probing() -> None:
    """Tasks done at the first poll only say 'earlier'; after a run of them a probe finds how much."""
    rng = random.Random(6)
    model = TimingModel()
    teach(model, [12.0 * rng.uniform(0.7, 1.3) for _ in range(30)])
    teach(model, [5.0 * rng.uniform(0.7, 1.3) for _ in range(20)])
    first = next(iter(model.poll_times(B) or []))
    assert first < 7.5  # from ~13 s


def test_observations_must_make_sense() -> None:
    model = TimingModel()
    for low, high in [(3.0, 2.0), (0.0, 0.0), (float("nan"), 1.0), (0.0, float("inf"))]:
        with pytest.raises(ValueError):
            model.observe(B, low, high)
    assert model.estimate(B) is None


# --- persistence -----------------------------------------------------------------------------------------


def test_state_round_trips_through_json() -> None:
    rng = random.Random(7)
    model = TimingModel()
    teach(model, [5.0 * rng.uniform(0.7, 1.3) for _ in range(30)])
    model.observe(B, 40.0, 41.0)  # a held-back outlier is part of the state too
    text = json.dumps(model.to_dict())
    assert len(text) < 2000
    again = TimingModel.from_dict(json.loads(text))
    assert list(itertools.islice(again.poll_times(B) or [], 8)) == pytest.approx(
        list(itertools.islice(model.poll_times(B) or [], 8)), abs=1e-3
    )
    assert again.buckets[B].recent[-1][2] == "late"


@pytest.mark.parametrize(
    "state",
    [
        {},
        {"v": 3, "window": []},
        {"v": 1, "window": "x"},
        {"v": 1, "window": [[1.0]]},
        {"v": 1, "window": [[2.0, 1.0]]},
        {"v": 1, "window": [["a", 1.0]]},
        {"v": 1, "window": [], "recent": [[1.0, 2.0, "sideways"]]},
    ],
)
def test_state_that_it_did_not_write_is_refused(state: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        BucketTimes.from_dict(state)
