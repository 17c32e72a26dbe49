"""The bot benchmark still runs end to end (it drives the whole bot in its own process, so it rots when the
wiring changes), and its arithmetic says what it means. Timings are printed, never asserted."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pytest

from benchmarks import bench_bot
from benchmarks.bot_report import Baseline, ImageCost, Scenario, Window, goals, pct, report_rows
from benchmarks.procs import Snapshot, cpu_seconds


@pytest.mark.slow
def test_bench_bot_runs_with_few_users(capsys: pytest.CaptureFixture[str]) -> None:
    code = bench_bot.main(["--quick", "--users", "2", "--rounds", "1"])

    out = capsys.readouterr().out
    assert code == 0, out
    assert "every user got exactly one photo; ledger check ok" in out
    for row in (
        "update -> submit",
        "done -> sendPhoto",
        "end to end",
        "baseline raw sendPhoto",
        "bot CPU ms/generation",
        "bot's own: CPU - image prep",
        "bot's own: CPU - that",
        "SQLite commits",
        "of which fsynced",
        "  sendPhoto",
    ):
        assert row in out  # fmt: skip
    assert "goals (1 user)" in out


def test_percentile_is_a_measured_value() -> None:
    values = [0.4, 0.1, 0.3, 0.2]
    assert pct(values, 50) == 0.2
    assert pct(values, 95) == 0.4
    assert pct(values, 0) == 0.1


def test_report_is_per_generation_and_against_the_baseline() -> None:
    scenario = Scenario("2 at once", generations=2, seconds=4.0, update_to_submit=[0.010, 0.030],
                        done_to_photo=[0.02, 0.02], end_to_end=[1.0, 1.2])  # fmt: skip
    scenario.upload.add(Snapshot(0.04, 4, 10, fsynced=2), Counter(sendMessage=2, getFile=2), 2)
    scenario.generate.add(Snapshot(0.16, 20, 100, fsynced=8), Counter(sendPhoto=2), 2)
    base = Baseline("2", submit=[0.005, 0.005], round_trip=[0.5], send_photo=[0.01], cpu_per_generation=0.02,
                    failures=0)  # fmt: skip
    images = ImageCost(check=0.01, prepare=0.03)

    rows = {row[0].strip(): row[1] for row in report_rows([(scenario, base)], images)}

    assert rows["generations/s"] == "0.5"
    assert rows["bot CPU ms/generation"] == "100.0"
    assert rows["bot's own: CPU - image prep"] == "60.0"
    assert rows["own / baseline"] == "3.00x"
    assert rows["SQLite commits/gen (selfie+anime)"] == "12.0 (2.0 + 10.0)"
    assert rows["of which fsynced"] == "5.0 (1.0 + 4.0)"
    assert rows["sendMessage"] == "1.00" and rows["sendPhoto"] == "1.00"
    assert rows["(file downloads)"] == "2.00"
    ratios = [
        row[1] for row in report_rows([(scenario, base)], images) if row[0].strip() == "p50 / baseline p50"
    ]
    assert ratios[0] == "2.00x"  # update -> submit p50 10 ms against a 5 ms raw submit
    assert "bot's own CPU 60.0 ms/generation (< 10: not met)" in goals(scenario, images)
    assert "update -> submit p50 10.0 ms (< 20: met)" in goals(scenario, images)


def test_own_cpu_is_less_the_image_work_the_bot_timed_itself() -> None:
    scenario = Scenario("1 user", generations=2, update_to_submit=[0.015])
    scenario.upload.add(
        Snapshot(0.10, 4, 10, image_cpu=0.07, loop_cpu=0.01, sqlite_cpu=0.004), Counter(getFile=2), 2
    )
    scenario.generate.add(Snapshot(0.04, 10, 50, loop_cpu=0.02, sqlite_cpu=0.006), Counter(sendPhoto=2), 0)
    base = Baseline("1", submit=[0.02], round_trip=[0.5], send_photo=[0.01], cpu_per_generation=0.01,
                    failures=0)  # fmt: skip
    images = ImageCost(check=0.01, prepare=0.02)  # the driver's timing, 30 ms: not used when the bot timed

    rows = {row[0].strip(): row[1] for row in report_rows([(scenario, base)], images)}

    assert rows["image work timed in the bot"] == "35.0"
    assert rows["bot's own: CPU - that"] == "35.0"
    assert rows["own (timed in bot) / baseline"] == "3.50x"
    assert rows["of which event-loop thread"] == "15.0"
    assert rows["of which SQLite threads"] == "5.0"
    assert rows["bot's own: CPU - image prep"] == "40.0"  # the driver's figure stays beside it
    assert "bot's own CPU 35.0 ms/generation (< 10: not met)" in goals(scenario, images)


def test_window_sums_snapshots() -> None:
    window = Window()
    window.add(Snapshot(1.0, 3, 7) - Snapshot(0.5, 1, 2), Counter(a=1), 1)
    window.add(Snapshot(0.25, 1, 1), Counter(a=1, b=2), 0)
    assert (window.cpu, window.commits, window.hops, window.downloads) == (0.75, 3, 6, 1)
    assert window.calls == Counter(a=2, b=2)


def test_cpu_of_this_process_is_read_from_proc() -> None:
    import os
    import time

    before = cpu_seconds(os.getpid())
    deadline = time.process_time() + 0.05
    while time.process_time() < deadline:
        pass
    assert cpu_seconds(os.getpid()) >= before


def test_snapshots_leave_out_what_taking_them_cost(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The bot's CPU is read by a signal handler inside the bot (reading /proc, writing a file): two per
    generation. Between two snapshots only the bot's own work may count, not the handler's."""
    from benchmarks import bot_proc

    now = {"cpu": 10.0}
    fake_time = SimpleNamespace(thread_time=lambda: now["cpu"], process_time=lambda: now["cpu"] + 5.0)
    monkeypatch.setattr(bot_proc, "time", fake_time)
    write = bot_proc.write_atomically

    def costly_write(path: Path, payload: object) -> None:
        now["cpu"] += 0.25
        write(path, payload)

    monkeypatch.setattr(bot_proc, "write_atomically", costly_write)
    counters, target = bot_proc.Counters(), tmp_path / "counters.json"
    counters.write_snapshot(target)
    first = json.loads(target.read_text())
    now["cpu"] += 1.0  # the bot's work between the two
    counters.write_snapshot(target)
    second = json.loads(target.read_text())

    assert second["cpu"] - first["cpu"] == pytest.approx(1.0)
    assert second["loop_cpu"] - first["loop_cpu"] == pytest.approx(1.0)


async def test_commits_are_the_stores_own_count_one_statement_writes_included(tmp_path: Path) -> None:
    """A one-statement write commits by itself in SQLite, with no COMMIT call: counting aiosqlite's commit()
    calls missed those (10 of 14 commits a generation)."""
    from benchmarks import bot_proc
    from storage.db import Database

    counters = bot_proc.Counters()
    db = await Database.open(tmp_path / "counted.db")
    counters._databases.append(db)
    try:
        async with db.transaction() as tx:
            await tx.all("CREATE TABLE t (n INTEGER)")
        await db.write_one("INSERT INTO t VALUES (1)")
        await db.write_one("INSERT INTO t VALUES (2)", durable=False)
        snapshot = counters.snapshot()
    finally:
        await db.close()
    assert (snapshot["commits"], snapshot["fsynced"]) == (3, 2)


def test_lifting_the_flood_limit_reaches_the_limiter_the_bot_builds(monkeypatch: pytest.MonkeyPatch) -> None:
    """The "lifted" scenarios mean no Telegram limit in the bot: the patch must hit what bot.app calls
    (it once replaced a name bot.app no longer used, and the lifted runs were paced at 30/s)."""
    from benchmarks import bot_proc
    from bot import app
    from bot.config import Settings

    monkeypatch.setattr(app, "telegram_rate_limiter", app.telegram_rate_limiter)  # undone after the test
    bot_proc.lift_flood_limit()
    limiter = app.telegram_rate_limiter(Settings.from_env({}, require_telegram=False, require_volc=False))
    assert limiter._base_limiter is None and limiter._group_max_rate == 0


def test_profile_entries_are_grouped_by_whose_code_they_are() -> None:
    from benchmarks.bot_report import library
    from benchmarks.procs import ROOT

    site = "/usr/lib/python3.11/site-packages"
    assert library((f"{site}/telegram/_message.py", 1, "de_json")) == "telegram"
    assert library((f"{site}/aiohttp/client.py", 1, "_request")) == "aiohttp"
    assert library(("/usr/lib/python3.11/asyncio/tasks.py", 1, "shield")) == "python"
    assert library(("~", 0, "<built-in method builtins.isinstance>")) == "python"
    assert library((str(ROOT / "bot" / "jobs" / "runner.py"), 1, "_work")) == "bot/jobs"
    assert library((str(ROOT / "storage" / "db.py"), 1, "transaction")) == "storage"
