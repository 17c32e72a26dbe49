"""SIGKILL a process in the middle of its transactions, many times: the ledger stays right and every
unfinished task can still be resolved.

This is the store alone; tests/e2e/test_crash_soak.py kills whole bot processes (two workers on one
database, frozen workers, stepped clocks) and checks deliveries, submits and units end to end."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
import time
from pathlib import Path

import pytest

from storage import ALLOWED, Store, TaskState

from .crash_worker import fast_clock

S = TaskState
KILLS = 20
WORKER = Path(__file__).with_name("crash_worker.py")


def _reachable(state: TaskState) -> set[TaskState]:
    """The state itself and every state a sequence of allowed moves can lead to."""
    seen, todo = {state}, [state]
    while todo:
        for nxt in ALLOWED[todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


# How a restarted runner resolves each unfinished state (submitting is never resubmitted: see tasks.py).
RESUME: dict[TaskState, list[tuple[TaskState, str | None]]] = {
    S.QUEUED: [(S.CANCELLED, None)],
    S.SUBMITTING: [(S.FAILED, "submit_unknown")],
    S.SUBMITTED: [(S.POLLING, None), (S.DELIVERING, None), (S.DONE, None)],
    S.POLLING: [(S.DELIVERING, None), (S.DONE, None)],
    S.DELIVERING: [(S.DONE, None)],
}


def _acknowledged(log: Path) -> dict[int, TaskState]:
    last: dict[int, TaskState] = {}
    if log.exists():
        for line in log.read_text().splitlines():
            parts = line.split()
            if len(parts) == 2:  # a line cut by the kill is not an acknowledgement
                last[int(parts[0])] = TaskState(parts[1])
    return last


@pytest.mark.slow
async def test_sigkill_at_random_points_keeps_ledger_and_tasks_recoverable(tmp_path: Path) -> None:
    db, epoch, rng = tmp_path / "crash.db", time.time(), random.Random(20261126)
    resolved_submitting = 0
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    for i in range(KILLS):
        log = tmp_path / f"ack-{i}.log"
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(WORKER), str(db), str(i), repr(epoch), str(log),
            stdout=asyncio.subprocess.PIPE, env=env,
        )  # fmt: skip
        assert proc.stdout is not None
        assert (await proc.stdout.readline()).strip() == b"ready"
        # Not a timing assertion: a random point in the worker's stream of transactions to kill it at.
        await asyncio.sleep(rng.uniform(0.02, 0.3))
        proc.send_signal(signal.SIGKILL)
        assert await asyncio.wait_for(proc.wait(), 10) == -signal.SIGKILL

        async with await Store.open(
            db, clock=lambda: fast_clock(epoch), quota_timezone="Asia/Shanghai", synchronous="NORMAL"
        ) as store:
            check = await store.quotas.check()
            assert check.ok, check.problems
            for task_id, state in _acknowledged(log).items():
                task = await store.tasks.get(task_id)
                assert task is not None and task.state in _reachable(state), (task_id, state, task)
            for task in await store.tasks.unfinished():
                resolved_submitting += task.state == S.SUBMITTING
                for to, code in RESUME[task.state]:
                    task = await store.tasks.transition(
                        task.id, to, upstream_task_id=f"up{task.id}", error_code=code
                    )
                expected = "committed" if task.state == S.DONE else "refunded"
                assert task.reservation == expected
            assert await store.tasks.unfinished() == []
            check = await store.quotas.check()
            assert check.ok, check.problems
    async with await Store.open(db) as store:
        stats = await store.admin.stats()
    assert stats.tasks_by_state.get("done", 0) > 0 and sum(stats.tasks_by_state.values()) > KILLS
