"""The crash soak's test hooks change nothing unless their variables are set (bot/jobs/fault_hooks.py)."""

import os
import time

import pytest

from api_client.clock import SystemClock
from bot.jobs import runner
from bot.jobs.fault_hooks import CLOCK_OFFSET_ENV, TIME_SCALE_ENV, SteppedClock, scaled, stepped_clock


def test_without_the_variables_nothing_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    scaled_at_import = TIME_SCALE_ENV in os.environ  # the constants were read then
    monkeypatch.delenv(CLOCK_OFFSET_ENV, raising=False)
    monkeypatch.delenv(TIME_SCALE_ENV, raising=False)
    assert stepped_clock() is None
    assert scaled(90.0) == 90.0
    if not scaled_at_import:
        assert (runner.LEASE_SECONDS, runner.SCAN_INTERVAL_SECONDS) == (90.0, 5.0)


def test_time_scale_multiplies_and_refuses_nonsense(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TIME_SCALE_ENV, "0.5")
    assert scaled(90.0) == 45.0
    for bad in ("0", "-1", "fast"):
        monkeypatch.setenv(TIME_SCALE_ENV, bad)
        with pytest.raises(ValueError, match=TIME_SCALE_ENV):
            scaled(90.0)


def test_a_stepped_clock_moves_the_wall_clock_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CLOCK_OFFSET_ENV, "120.5")
    clock = stepped_clock()
    assert isinstance(clock, SteppedClock)
    before = time.time()
    assert before + 120.5 <= clock.now() <= time.time() + 120.5
    assert type(clock).monotonic is SystemClock.monotonic  # the fencing relies on it staying true
