"""The scale-out benchmark still runs end to end: N webhook processes on one PostgreSQL schema."""

from __future__ import annotations

import asyncio
import re

import asyncpg
import pytest

from benchmarks import __main__ as all_benchmarks
from benchmarks import bench_scale
from tests.pg import SERVER_URL, postgres_or_skip


@pytest.mark.slow
def test_bench_scale_runs_with_one_and_two_processes(capsys: pytest.CaptureFixture[str]) -> None:
    postgres_or_skip()
    code = bench_scale.main(["--users", "4", "--processes", "1,2", "--postgres", SERVER_URL])

    out = capsys.readouterr().out
    assert code == 0, out
    assert "every user got exactly one photo; ledger check ok" in out
    table = [re.split(r"\s{2,}", line.strip()) for line in out.splitlines() if "  " in line.strip()]
    rows = {cells[0]: cells[1:] for cells in table}
    assert table[0] == ["1 process(es)", "2 process(es)"]  # the header: no label
    assert rows["generations"] == ["4", "4"]  # every user of both runs got a photo
    for row in ("generations/s", "update -> submit p95 ms", "done -> sendPhoto p95 ms",
                "bots' CPU ms/generation (sum)", "PostgreSQL writes/generation",
                "machine CPUs busy (/anime window)"):  # fmt: skip
        assert len(rows[row]) == 2, out
    assert rows["ratio to 1 process"][0] == "1.00x"
    schemas = re.findall(r"schema (bench_scale_[0-9a-f]+) dropped", out)
    assert len(schemas) == 2
    assert asyncio.run(_existing(schemas)) == []  # the benchmark cleaned up after itself


def test_it_is_part_of_make_bench() -> None:
    assert "benchmarks.bench_scale" in all_benchmarks.BENCHMARKS


def test_the_schema_is_chosen_through_the_search_path() -> None:
    assert bench_scale.with_search_path("postgresql://u@h/db", "s1") == "postgresql://u@h/db?search_path=s1"
    assert bench_scale.with_search_path("postgresql://u@h/db?sslmode=disable", "s1") == (
        "postgresql://u@h/db?sslmode=disable&search_path=s1"
    )


async def _existing(schemas: list[str]) -> list[str]:
    conn = await asyncpg.connect(SERVER_URL)
    try:
        rows = await conn.fetch("SELECT nspname FROM pg_namespace WHERE nspname = ANY($1::text[])", schemas)
    finally:
        await conn.close()
    return [row["nspname"] for row in rows]
