"""What the crash soak reports when its workers do not answer before any chaos began.

Why all of it: such a failure is rare (one CI run in many) and happens once; the log tails alone did not
say which process stopped where. So the report holds every side of it: each worker's state (alive, or
the exit code of one that ended by itself), the stacks of its threads and the awaits of its asyncio tasks
(tests/e2e/soak_workers.py writes them to its log on SIGUSR1 and SIGUSR2), its log, the store's inbox
and tasks as the workers left them, and the fake Telegram's record of the calls it received.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from fake_telegram import FakeTelegram
from tests.e2e.soak_workers import TASKS_DUMPED

#: How long a live worker gets to write its stacks and tasks (it may be frozen or stuck outside Python).
DUMP_WAIT = 10.0
TAIL_LINES = 40
CALLS = 80


@dataclass(frozen=True)
class WorkerState:
    name: str
    pid: int
    status: str  # "alive", or the exit code (minus the signal) of a worker that ended by itself
    log: Path


async def stuck_report(workers: Sequence[WorkerState], fake: FakeTelegram, db: Path) -> str:
    """The whole picture, as text for the failure message; it never raises (it reports instead)."""
    parts = [await _worker_part(worker) for worker in workers]
    parts.append(await asyncio.to_thread(_store_part, db))
    parts.append(_fake_part(fake))
    return "\n".join(parts)


async def _worker_part(worker: WorkerState) -> str:
    before = _read(worker.log)
    tail = "\n".join(before.splitlines()[-TAIL_LINES:])
    head = f"==== {worker.name} (pid {worker.pid}): {worker.status}\n---- its log's last lines\n{tail}"
    if worker.status != "alive":
        return head
    try:
        for signum in (signal.SIGUSR1, signal.SIGUSR2):  # the threads first: that one needs no Python
            os.kill(worker.pid, signum)
    except ProcessLookupError:
        return f"{head}\n---- it ended while being asked for its stacks"
    for _ in range(int(DUMP_WAIT / 0.1)):
        if TASKS_DUMPED in _read(worker.log)[len(before) :]:
            break
        await asyncio.sleep(0.1)  # waiting for the worker to write, not a timing assumption
    dump = _read(worker.log)[len(before) :] or f"(nothing written within {DUMP_WAIT:.0f} s)"
    return f"{head}\n---- its threads (SIGUSR1) and asyncio tasks (SIGUSR2)\n{dump.rstrip()}"


def _store_part(db: Path) -> str:
    lines = [f"==== the store ({db.name})"]
    try:
        with sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True, timeout=2) as conn:
            versions = [row[0] for row in conn.execute("SELECT version FROM schema_version ORDER BY version")]
            lines.append(f"schema versions: {versions}")
            lines.append("inbox (update_id, state, claimed_by, at, started_at):")
            lines += [f"  {row}" for row in conn.execute(
                "SELECT update_id, state, claimed_by, at, started_at FROM processed_updates "
                "ORDER BY update_id"
            )]  # fmt: skip
            lines.append("tasks (id, user_id, state, lease_owner, lease_until):")
            lines += [f"  {row}" for row in conn.execute(
                "SELECT id, user_id, state, lease_owner, lease_until FROM tasks ORDER BY id"
            )]  # fmt: skip
    except (sqlite3.Error, OSError) as exc:
        lines.append(f"unreadable: {exc!r}")
    return "\n".join(lines)


def _fake_part(fake: FakeTelegram) -> str:
    calls = fake.calls[-CALLS:]
    start = calls[0].at if calls else 0.0
    lines = [
        f"==== the fake Telegram: {len(fake.calls)} call(s), the last {len(calls)} below (seconds from the "
        f"first of them); updates not confirmed yet: {[u['update_id'] for u in fake.updates]}; "
        f"long polls parked now: {fake.waiting_polls}"
    ]
    for call in calls:
        what = f"{len(call.result)} update(s)" if isinstance(call.result, list) else ""
        lines.append(f"  {call.at - start:8.3f} {call.method} {call.status} {call.error or what}")
    return "\n".join(lines)


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""
