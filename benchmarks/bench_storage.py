"""Storage benchmark: `python -m benchmarks.bench_storage [--quick]`.

Measures on one SQLite file (WAL, as Store.open configures it):
- reserve + commit throughput: tasks created (unit reserved) and driven through all five moves to `done`
  (unit committed) per second, sequentially and with 32 concurrent coroutines;
- task transitions per second (each one transaction with its state check and, at the end, the ledger row);
- database size per 100k finished tasks, extrapolated from the tasks actually written (10k with --quick,
  30k without);
- the cost of quotas.check() and admin.stats() on that database.

The same store workload then runs on PostgreSQL (`--postgres URL`, default DATABASE_URL or the local
server's `test` database; `--postgres none` skips it), in a schema of its own that is dropped afterwards:
reservations/s, transitions/s and the concurrent lifecycle, each with its ratio to SQLite FULL (the
durability PostgreSQL's default commit gives).

The baseline, measured in the same run on the same kind of file with the same synchronous setting, is plain
aiosqlite doing the same number of transactions (one INSERT, then five UPDATEs of the state) on a table
with the same columns, without reservations, ledger rows or transition checks. Ratios are store / baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiosqlite
import asyncpg

from storage import NewTask, Store, TaskState

S = TaskState
LIFECYCLE = (S.SUBMITTING, S.SUBMITTED, S.POLLING, S.DELIVERING, S.DONE)
USERS = 100

_BASELINE_TABLE = """
CREATE TABLE tasks (
    id INTEGER PRIMARY KEY AUTOINCREMENT, user_id INTEGER NOT NULL, chat_id INTEGER NOT NULL,
    charge_chat_id INTEGER, origin_key TEXT NOT NULL UNIQUE, request_message_id INTEGER,
    status_message_id INTEGER, face_file_id TEXT NOT NULL, style_file_id TEXT, params TEXT NOT NULL,
    state TEXT NOT NULL, upstream_task_id TEXT, error_code TEXT, attempts INTEGER NOT NULL DEFAULT 0,
    last_status TEXT, result_file_id TEXT, next_poll_at REAL, quota_day TEXT NOT NULL,
    quota_unit TEXT NOT NULL,
    reservation TEXT NOT NULL DEFAULT 'held', created_at REAL NOT NULL, updated_at REAL NOT NULL,
    finished_at REAL, lease_owner TEXT, lease_until REAL
)
"""

FACE = "AgACAgIAAxkBAAIBY2Vh" + "x" * 52  # a Telegram file_id is ~70-80 characters
PARAMS = {"prompt": "1girl,beautiful,looking at viewer,portrait,", "seed": -1, "width": 1000, "height": 1000}


def _new(user_id: int, key: str) -> NewTask:
    return NewTask(
        user_id=user_id, chat_id=user_id, origin_key=key, request_message_id=1234, face_file_id=FACE,
        style_file_id=None, params=PARAMS, max_active_per_user=1_000_000,
    )  # fmt: skip


async def _prepare_store(path: Path | str, sync: str) -> Store:
    store = await Store.open(path, synchronous=sync)  # type: ignore[arg-type]
    for uid in range(1, USERS + 1):
        await store.users.upsert_seen(uid, username=f"user{uid}", first_name="U", language_code="en")
        await store.quotas.grant(uid, 10_000_000, actor=0, reason="benchmark credits")
    return store


async def _store_run(store: Store, n: int, prefix: str, concurrency: int) -> tuple[float, float]:
    """Create n tasks then drive each to done; returns (seconds creating, seconds transitioning)."""
    ids: list[int] = []

    async def create(i: int) -> None:
        task, _ = await store.tasks.create(_new(1 + i % USERS, f"{prefix}{i}"))
        ids.append(task.id)

    async def finish(task_id: int) -> None:
        for to in LIFECYCLE:
            await store.tasks.transition(
                task_id, to, upstream_task_id=f"up{task_id}" if to == S.SUBMITTED else None
            )

    t0 = time.perf_counter()
    await _bounded([functools.partial(create, i) for i in range(n)], concurrency)
    t1 = time.perf_counter()
    await _bounded([functools.partial(finish, t) for t in ids], concurrency)
    return t1 - t0, time.perf_counter() - t1


async def _baseline_run(path: Path, sync: str, n: int) -> tuple[float, float]:
    async with aiosqlite.connect(path, isolation_level=None) as conn:
        await conn.execute("PRAGMA journal_mode=WAL")
        await conn.execute(f"PRAGMA synchronous={sync}")
        await conn.execute(_BASELINE_TABLE)
        t0 = time.perf_counter()
        ids = []
        for i in range(n):
            await conn.execute("BEGIN IMMEDIATE")
            cur = await conn.execute(
                "INSERT INTO tasks (user_id, chat_id, origin_key, request_message_id, face_file_id, params, "
                "state, quota_day, quota_unit, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?)",
                (1 + i % USERS, 1 + i % USERS, f"b{i}", 1234, FACE, repr(PARAMS), "2026-11-26", "credits",
                 time.time(), time.time()),
            )  # fmt: skip
            ids.append(cur.lastrowid)
            await cur.close()
            await conn.execute("COMMIT")
        t1 = time.perf_counter()
        for task_id in ids:
            for to in LIFECYCLE:
                await conn.execute("BEGIN IMMEDIATE")
                await conn.execute(
                    "UPDATE tasks SET state = ?, updated_at = ? WHERE id = ?", (to, time.time(), task_id)
                )
                await conn.execute("COMMIT")
        return t1 - t0, time.perf_counter() - t1


async def _bounded(jobs: list[Callable[[], Awaitable[None]]], concurrency: int) -> None:
    if concurrency <= 1:
        for job in jobs:
            await job()
        return
    queue = iter(jobs)

    async def worker() -> None:
        for job in queue:
            await job()

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def _timed(fn: Callable[[], Awaitable[object]]) -> float:
    t0 = time.perf_counter()
    await fn()
    return time.perf_counter() - t0


async def run_postgres(url: str, n: int, sqlite: dict[str, float]) -> list[tuple[str, str, str, str]]:
    """The store workload on a fresh schema of `url`; the third column is PostgreSQL / SQLite FULL."""
    name = f"bench_{os.getpid()}"
    admin = await asyncpg.connect(url)
    await admin.execute(f"CREATE SCHEMA {name}")
    try:
        sep = "&" if "?" in url else "?"
        store = await _prepare_store(f"{url}{sep}search_path={name}", "FULL")
        create_s, trans_s = await _store_run(store, n, "s", 1)
        c_create_s, c_trans_s = await _store_run(store, n, "c", 32)
        ok = (await store.quotas.check()).ok
        await store.close()
    finally:
        await admin.execute(f"DROP SCHEMA {name} CASCADE")
        await admin.close()
    measured = {
        "reservations": n / create_s, "transitions": 5 * n / trans_s, "lifecycle": n / (create_s + trans_s),
        "lifecycle32": n / (c_create_s + c_trans_s),
    }  # fmt: skip
    units = {"reservations": "tasks/s", "transitions": "moves/s", "lifecycle": "tasks/s",
             "lifecycle32": "tasks/s"}  # fmt: skip
    labels = {"reservations": "create (reserve)", "transitions": "transition", "lifecycle": "lifecycle",
              "lifecycle32": "lifecycle, 32 coroutines"}  # fmt: skip
    rows = [
        (f"PostgreSQL: {labels[k]}", f"{v:,.0f} {units[k]}", f"{sqlite[k]:,.0f} on SQLite FULL",
         f"{v / sqlite[k]:.2f}")
        for k, v in measured.items()
    ]  # fmt: skip
    rows.append(("PostgreSQL: quotas.check() after the run", f"ok={ok}", "", ""))
    return rows


async def run(quick: bool, workdir: Path, postgres: str | None = None) -> list[tuple[str, str, str, str]]:
    n = 300 if quick else 3000
    size_n = 10_000 if quick else 30_000  # size grows linearly; 100k would take ~10 min here
    rows: list[tuple[str, str, str, str]] = []
    for sync in ("FULL", "NORMAL"):
        store = await _prepare_store(workdir / f"store-{sync}.db", sync)
        create_s, trans_s = await _store_run(store, n, "s", 1)
        c_create_s, c_trans_s = await _store_run(store, n, "c", 32)
        await store.close()
        if sync == "FULL":
            sqlite_full = {
                "reservations": n / create_s, "transitions": 5 * n / trans_s,
                "lifecycle": n / (create_s + trans_s), "lifecycle32": n / (c_create_s + c_trans_s),
            }  # fmt: skip
        base_create_s, base_trans_s = await _baseline_run(workdir / f"base-{sync}.db", sync, n)
        rows += [
            (f"create (reserve), {sync}", f"{n / create_s:,.0f} tasks/s",
             f"{n / base_create_s:,.0f} inserts/s", f"{base_create_s / create_s:.2f}"),
            (f"transition, {sync}", f"{5 * n / trans_s:,.0f} moves/s",
             f"{5 * n / base_trans_s:,.0f} updates/s", f"{base_trans_s / trans_s:.2f}"),
            (f"reserve+commit lifecycle, {sync}", f"{n / (create_s + trans_s):,.0f} tasks/s",
             f"{n / (base_create_s + base_trans_s):,.0f} tasks/s",
             f"{(base_create_s + base_trans_s) / (create_s + trans_s):.2f}"),
            (f"lifecycle, 32 coroutines, {sync}", f"{n / (c_create_s + c_trans_s):,.0f} tasks/s", "", ""),
        ]  # fmt: skip
    # Size: tasks written through the store (reserve + 5 moves + commit each); NORMAL only for speed,
    # the bytes on disk do not depend on it.
    path = workdir / "size.db"
    store = await _prepare_store(path, "NORMAL")
    empty = path.stat().st_size
    t0 = time.perf_counter()
    await _store_run(store, size_n, "z", 32)
    fill_s = time.perf_counter() - t0
    check_s = await _timed(store.quotas.check)
    stats_s = await _timed(store.admin.stats)
    ok = (await store.quotas.check()).ok
    await store.close()  # checkpoints the WAL into the main file
    size = path.stat().st_size
    per_100k = (size - empty) / size_n * 100_000
    note = f"extrapolated from {size_n:,}" if size_n != 100_000 else "measured"
    rows += [
        ("db size per 100k done tasks", f"{per_100k / 1e6:,.1f} MB", note, ""),
        (f"fill {size_n:,} tasks, 32 coroutines", f"{size_n / fill_s:,.0f} tasks/s", "NORMAL", ""),
        (f"quotas.check() on {size_n:,} tasks", f"{check_s * 1000:,.0f} ms", f"ok={ok}", ""),
        (f"admin.stats() on {size_n:,} tasks", f"{stats_s * 1000:,.0f} ms", "", ""),
    ]
    if postgres:
        rows += await run_postgres(postgres, n, sqlite_full)
    return rows


def _print(rows: list[tuple[str, str, str, str]]) -> None:
    header = ("measure", "store", "baseline (raw aiosqlite)", "store/baseline")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_storage", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--quick", action="store_true", help="fewer tasks; size extrapolated from 10k")
    parser.add_argument(
        "--dir", type=Path, default=None, help="where to put the database files (default: a temp dir)"
    )
    parser.add_argument(
        "--postgres", default=os.environ.get("DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/test",
        help="PostgreSQL server to compare with (a schema is made and dropped); 'none' skips it",
    )
    args = parser.parse_args(argv)
    postgres = None if args.postgres == "none" or not args.postgres.startswith("postgres") else args.postgres
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        print(f"SQLite {aiosqlite.sqlite_version}, files in {tmp} ({os.cpu_count()} CPUs)", flush=True)
        rows = asyncio.run(run(args.quick, Path(tmp), postgres))
    _print(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
