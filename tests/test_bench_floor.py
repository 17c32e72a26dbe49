"""The bot benchmark's floor (`benchmarks.floor_worker`): a minimal program doing a generation's I/O must
really do it, against the same fake Telegram and emulator processes the bot is measured against, or its
CPU would be a floor under nothing. Timings are printed by the benchmark, never asserted here."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from benchmarks.bench_bot import TOKEN, two_servers
from benchmarks.bot_baselines import FLOOR_WARMUP, FloorRun, run_floor, sql_spec
from benchmarks.bot_report import Baseline, ImageCost, Scenario, Window, floor_line, report_rows
from benchmarks.floor_worker import Floor, sql_plan
from benchmarks.procs import Servers, Snapshot
from fake_telegram.load import default_selfie

SELFIE_SQL, ANIME_SQL = "2,1,7", "6,3,25"  # commits, fsynced, hops per window


async def _drive(fake: str, emulator: str, face: Path, workdir: Path) -> tuple[FloorRun, list[Any]]:
    async with httpx.AsyncClient(timeout=30) as http:
        servers = Servers(http, fake, emulator)
        run = await run_floor(
            servers, f"{fake}/bot{TOKEN}", face, workdir, 2, selfie_sql=SELFIE_SQL, anime_sql=ANIME_SQL
        )
        users = [user for batch in run.batches for user in await servers.report(batch)]
    return run, users


@pytest.mark.slow
def test_the_floor_worker_does_two_generations_against_the_fake_and_the_emulator(tmp_path: Path) -> None:
    face = tmp_path / "selfie.jpg"
    face.write_bytes(default_selfie())
    with two_servers(face) as (emulator, fake):
        run, users = asyncio.run(_drive(fake, emulator, face, tmp_path / "floor"))

    assert run.problems == []
    assert run.floor is not None
    assert run.floor.generations == 2 and run.floor.cpu > 0
    assert len(run.floor.tasks) == len(run.floor.update_to_submit) == 2  # joined with the servers' marks
    assert len(users) == FLOOR_WARMUP + 2  # one user per generation, warm-up included
    assert [len(user["photos"]) for user in users] == [1] * len(users)
    calls = Counter(run.floor.calls)
    assert calls.pop("getUpdates") >= 4  # one per update; a long poll that timed out adds one
    assert calls == {
        "getFile": 2, "sendMessage": 4, "sendChatAction": 2, "sendPhoto": 2, "editMessageText": 2,
    }  # fmt: skip
    assert run.floor.downloads == 2
    assert (run.floor.commits, run.floor.fsynced, run.floor.hops) == (2 * 8, 2 * 4, 2 * 32)


def test_each_window_is_split_into_transactions_with_the_durable_ones_first() -> None:
    assert sql_plan("6,3,25") == [(True, 3), (True, 2), (True, 2), (False, 2), (False, 2), (False, 2)]
    assert sql_plan("2,1,3") == [(True, 0), (False, 0)]  # fewer hops than BEGIN + COMMIT: no statements
    assert sql_plan("0,0,5") == []


def test_the_floor_takes_the_bots_commits_and_hops_per_generation() -> None:
    window = Window(commits=28, fsynced=12, hops=125)
    assert sql_spec(window, 20) == "1,1,6"
    assert sql_spec(Window(), 0) == "0,0,0"


def test_the_report_puts_the_bots_own_cpu_over_the_floor() -> None:
    scenario = Scenario("1 user x2", generations=2, update_to_submit=[0.012])
    scenario.upload.add(Snapshot(0.05, 4, 10, image_cpu=0.03), Counter(getFile=2), 2)
    scenario.generate.add(Snapshot(0.03, 20, 100), Counter(sendPhoto=2), 0)
    floor = Floor(cpu=0.010, generations=2, update_to_submit=[0.004, 0.006], calls={"sendPhoto": 2},
                  downloads=2, commits=24, fsynced=10, hops=110)  # fmt: skip
    base = Baseline("1", submit=[0.002], round_trip=[0.5], send_photo=[0.01], cpu_per_generation=0.004,
                    failures=0, floor=floor)  # fmt: skip

    rows = {row[0].strip(): row[1] for row in report_rows([(scenario, base)], ImageCost(0.01, 0.02))}

    assert rows["baseline: floor (same exchanges + commits, no framework)"] == "5.0"
    assert rows["own / floor"] == "5.00x"  # (80 - 30 timed in the bot) / 2 generations = 25 ms over 5 ms
    assert rows["baseline floor"] == "4.0 / 6.0"
    assert "SQLite commits 12.0 (fsynced 5.0), thread hops 55.0" in floor_line(floor)
    without = Baseline("N", [0.002], [0.5], [0.01], 0.004, 0)  # N at once: no floor
    rows = {row[0].strip(): row[1] for row in report_rows([(scenario, without)], ImageCost(0.01, 0.02))}
    assert rows["own / floor"] == "-"
