"""A store user doing random operations until it is killed; driven by test_crash.py.

Usage: python tests/storage/crash_worker.py DB_PATH SEED EPOCH LOG_PATH

After each operation commits it appends "task_id state" to LOG_PATH (flushed), so the test can check that
every acknowledged change survived the SIGKILL. Time runs 2000x faster than real time from EPOCH, so the
daily reset happens during the test.
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
from pathlib import Path
from typing import TextIO

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from storage import (
    ALLOWED,
    TERMINAL,
    GroupCapReached,
    NewTask,
    QuotaExhausted,
    Store,
    TaskState,
    TooManyActiveTasks,
)

SPEED = 2000.0
USERS = (1, 2, 3, 4, 5)
GROUP = -100


def fast_clock(epoch: float) -> float:
    return epoch + (time.time() - epoch) * SPEED


async def run(path: str, seed: int, epoch: float, log: TextIO) -> None:
    rng = random.Random(seed)
    # NORMAL: in WAL mode a process kill loses nothing either way (FULL only adds power-loss safety).
    store = await Store.open(
        path, clock=lambda: fast_clock(epoch), quota_timezone="Asia/Shanghai", synchronous="NORMAL"
    )
    for uid in USERS:
        await store.users.upsert_seen(uid, username=f"u{uid}", first_name="", language_code="en")
    await store.chats.upsert(GROUP, type="supergroup", title="G")
    await store.chats.update_settings(GROUP, daily_cap=20, actor=0)
    print("ready", flush=True)
    n = 0
    while True:
        n += 1
        op = rng.random()
        uid = rng.choice(USERS)
        if op < 0.35:
            group = rng.random() < 0.3
            new = NewTask(
                user_id=uid,
                chat_id=GROUP if group else uid,
                origin_key=f"{seed}:{n}",
                request_message_id=n,
                face_file_id="f",
                style_file_id=None,
                params={"n": n},
                charge_chat_id=GROUP if group else None,
                max_active_per_user=3,
            )
            try:
                task, _ = await store.tasks.create(new)
                log.write(f"{task.id} {task.state.value}\n")
            except (QuotaExhausted, TooManyActiveTasks, GroupCapReached):
                pass
        elif op < 0.85:
            tasks = await store.tasks.active_for_user(uid)
            if tasks:
                task = rng.choice(tasks)
                # Mostly forward along the happy path, sometimes any allowed move.
                forward = [s for s in ALLOWED[task.state] if s in (TaskState.DONE,) or s not in TERMINAL]
                to = rng.choice(sorted(forward if rng.random() < 0.8 else ALLOWED[task.state]))
                moved = await store.tasks.transition(
                    task.id,
                    to,
                    expect=task.state,
                    upstream_task_id=f"up{task.id}",
                    error_code="e" if to == TaskState.FAILED else None,
                )
                log.write(f"{moved.id} {moved.state.value}\n")
        elif op < 0.95:
            await store.quotas.grant(uid, rng.choice((1, 2, 5, -1, -3)), actor=0, reason="crash test")
        else:
            await store.quotas.set_daily(uid, rng.choice((None, 0, 1, 3)), actor=0, reason="crash test")


if __name__ == "__main__":
    with open(sys.argv[4], "a", buffering=1) as ack_log:
        asyncio.run(run(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), ack_log))
