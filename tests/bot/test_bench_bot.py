"""The bot benchmark still runs end to end (it drives the whole bot, so it rots when the wiring changes)."""

from __future__ import annotations

import pytest

from benchmarks import bench_bot


def test_bench_bot_runs_with_few_users(capsys: pytest.CaptureFixture[str]) -> None:
    code = bench_bot.main(["--quick", "--users", "3"])

    out = capsys.readouterr().out
    assert code == 0, out
    assert "every user got exactly one photo; ledger check ok" in out
    for row in ("update -> submit", "done -> sendPhoto", "end to end", "raw sendPhoto"):
        assert row in out
    assert "3 in " in out  # throughput counted all three generations


def test_percentile_is_a_measured_value() -> None:
    values = [0.4, 0.1, 0.3, 0.2]
    assert bench_bot.pct(values, 50) == 0.2
    assert bench_bot.pct(values, 95) == 0.4
    assert bench_bot.pct(values, 0) == 0.1
