"""benchmarks.poll_bound: the fewest calls any poll schedule could spend for a median lag, on cases solved
by hand."""

from __future__ import annotations

import pytest

from benchmarks.poll_bound import fewest_calls, uniform_around


def test_durations_uniform_over_four_seconds_and_a_one_second_lag() -> None:
    """By hand, with the gaps g1 = t1, g2 = t2 - t1, ... and the last poll at 4 s (earlier, the longest tasks
    are never caught): a task pays a call for each poll it is still running at, so the calls are
    1 + (g2 + 2 g3 + 3 g4 + ...) / 4, and the tasks caught within 1 s of a poll span sum(min(gj, 1)), which
    must reach 2 s (half). g1 gives at most 1, so g2 + g3 + ... >= 1 and the calls >= 1.25: polls at 3 and
    4 s (g = 3, 1)."""
    bound = fewest_calls(0.0, 4.0, 1.0)

    assert bound.achievable == pytest.approx(1.25)
    assert bound.times == pytest.approx((3.0, 4.0))
    assert bound.calls <= 1.25 < bound.calls + 0.02  # the lower bound is at most a grid step below


def test_twelve_seconds_plus_minus_thirty_percent_is_out_of_reach() -> None:
    """8.4-15.6 s, the same way: 3.6 s of durations to cover, at most 1 s a gap, g1 gives 1 s, so the later
    gaps sum to 2.6 s at least, cheapest as 1, 1, 0.6 (the smaller weights first): polls at 13, 14, 15 and
    15.6 s, calls 1 + (1 + 2 + 3 * 0.6) / 7.2 = 5/3."""
    bound = fewest_calls(*uniform_around(12.0, 0.3), 1.0)

    assert bound.achievable == pytest.approx(5 / 3)
    assert bound.times == pytest.approx((13.0, 14.0, 15.0, 15.6))
    assert 1.5 < bound.calls <= 5 / 3


def test_a_lag_of_half_the_spread_needs_one_poll_at_the_end() -> None:
    bound = fewest_calls(4.0, 6.0, 1.0)

    assert bound.achievable == pytest.approx(1.0) and bound.calls == pytest.approx(1.0)
    assert bound.times == pytest.approx((6.0,))


def test_a_tighter_lag_never_costs_fewer_calls() -> None:
    low, high = uniform_around(7.0, 0.3)
    calls = [fewest_calls(low, high, lag, steps=20).calls for lag in (0.5, 0.8, 1.0, 1.5)]

    assert calls == sorted(calls, reverse=True)


@pytest.mark.parametrize("args", [(5.0, 4.0, 1.0), (-1.0, 4.0, 1.0), (0.0, 4.0, 0.0)])
def test_nonsense_is_refused(args: tuple[float, float, float]) -> None:
    with pytest.raises(ValueError):
        fewest_calls(*args)
