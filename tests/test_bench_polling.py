"""The polling benchmark still runs end to end (it wires client, learner, store and emulator together)."""

from __future__ import annotations

import pytest

from benchmarks import __main__ as all_benchmarks
from benchmarks import bench_polling


def test_bench_polling_runs_with_few_tasks(capsys: pytest.CaptureFixture[str]) -> None:
    code = bench_polling.main(["--quick", "--steady", "8", "--slow", "6", "--workers", "2", "--speed", "20"])

    out = capsys.readouterr().out
    assert code == 0, out
    for row in ("warm-up (first 4)", "steady 5 s", "slowdown, first 8", "all tasks", "the same plan"):
        assert row in out
    assert "then suddenly 7 s +-30%:" in out and "then suddenly 12 s +-30%:" in out  # two scenarios
    assert out.count("best any schedule could do") == 2
    bound_12 = next(line for line in out.splitlines() if line.strip().startswith("12 s +-30%:"))
    assert "out of reach" in bound_12  # 5/3 calls at best for a median lag under 1 s
    all_tasks = next(line for line in out.splitlines() if line.startswith("all tasks"))
    assert all_tasks.split()[2] == "14"  # every task of both phases finished


def test_it_is_part_of_make_bench() -> None:
    assert "benchmarks.bench_polling" in all_benchmarks.BENCHMARKS


def test_percentile_is_a_measured_value() -> None:
    assert bench_polling.pct([0.4, 0.1, 0.3, 0.2], 50) == 0.2
    assert bench_polling.pct([0.4, 0.1, 0.3, 0.2], 95) == 0.4
