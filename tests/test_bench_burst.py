"""The viral-burst benchmark still runs end to end: three processes plus the bot, every request settled."""

from __future__ import annotations

import asyncio
import json
import tempfile
from pathlib import Path

import pytest

from benchmarks import __main__ as all_benchmarks
from benchmarks import bench_burst
from benchmarks.burst_bot import handover
from bot.ops.looplag import LagProbe


@pytest.mark.slow
def test_bench_burst_runs_with_a_few_users(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the run's own folder goes
    code = bench_burst.main(["--users", "12", "--spread", "2", "--timeout", "240"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert list(tmp_path.iterdir()) == []  # its database and logs are gone with the run
    assert "delivered 12 of 12" in out
    assert "status edits: 0)" in out  # no 429 for a status edit
    figures = ("bot peak RSS", "event-loop lag", "upstream in flight (limit 10)", "the bot's line",
               "wait for the portrait")  # fmt: skip
    for figure in figures:
        assert figure in out


def test_it_is_part_of_make_bench() -> None:
    assert "benchmarks.bench_burst" in all_benchmarks.BENCHMARKS


async def test_the_lag_probe_writes_its_percentiles(tmp_path: Path) -> None:
    probe = LagProbe(tmp_path / "lag.json")
    probe.start()
    for _ in range(3):
        await asyncio.sleep(0.06)
    await probe.stop()
    summary = json.loads((tmp_path / "lag.json").read_text())
    assert summary["samples"] >= 1 and 0.0 <= summary["p50"] <= summary["p99"] <= summary["max"]


def test_the_line_tells_why_upstream_places_were_idle() -> None:
    line = bench_burst.Dispatch()
    line.add({"queued": 5, "queued_private": 0, "submitted": 4})  # only group requests wait
    line.add({"queued": 5, "queued_private": 3, "submitted": 8, "delivering": 22})  # the runner is full
    line.add({"queued": 5, "queued_private": 3, "submitting": 2, "polling": 5, "delivering": 1})  # no reason
    line.add({"queued": 5, "queued_private": 3, "submitted": 10})  # every place taken
    line.add({"queued": 0, "submitted": 1})  # the line has drained: not a sample
    summary = line.summary()
    assert (summary["samples"], summary["idle"]) == (4, 3)
    assert (summary["idle_at_cap"], summary["idle_groups_only"]) == (1, 1)


def test_the_hand_over_is_split_into_stages_and_freed_places_pair_with_the_next_start() -> None:
    marks = [
        ("spawn", 1, 0.0), ("commit0", 1, 0.01), ("commit1", 1, 0.03), ("submit0", 1, 0.031),
        ("submit1", 1, 0.05), ("done_seen", 1, 2.0), ("ready", 1, 2.02), ("left", 1, 2.021),
        ("spawn", 2, 2.024), ("build0", 2, 2.025), ("build1", 2, 2.027), ("commit0", 2, 2.03),
        ("commit1", 2, 2.04), ("submit0", 2, 2.041), ("submit1", 2, 2.06),
        ("left", 2, 5.0),  # nothing else came: an unpaired free place is not a hand-over
        ("left_at_cap", 2, 5.0),  # ... because the runner was full of results waiting for Telegram
    ]  # fmt: skip
    stages = handover(marks)
    assert stages["left -> spawn"]["n"] == 1
    assert abs(stages["left -> spawn"]["p50_ms"] - 3.0) < 1e-6
    assert abs(stages["done_seen -> ready"]["p50_ms"] - 20.0) < 1e-6
    assert abs(stages["done_seen -> left"]["p50_ms"] - 21.0) < 1e-6
    assert stages["commit"]["n"] == 2 and abs(stages["commit"]["mean_ms"] - 15.0) < 1e-6
    assert stages["build"]["n"] == 1 and stages["submit"]["n"] == 2
    assert stages["freed_at_cap"]["n"] == 1


def test_the_upstream_count_is_also_kept_for_the_samples_where_private_requests_waited() -> None:
    line = bench_burst.Dispatch()
    line.add({"queued": 5, "queued_private": 2, "submitted": 9}, in_flight=9)
    line.add({"queued": 5, "queued_private": 1, "submitted": 10}, in_flight=10)
    line.add({"queued": 3, "queued_private": 0, "submitted": 4}, in_flight=4)  # groups' turns: apart
    summary = line.summary()
    assert summary["private_samples"] == 2
    assert summary["private_in_flight"] == 9.5 and summary["private_at_limit"] == 0.5
