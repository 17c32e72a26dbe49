"""The bot under `bench_burst`: `python -m bot` with a timeline of each upstream place's hand-over.

    python -m benchmarks.burst_bot      (configured by the environment, as `python -m bot`)

Why a wrapper: the benchmark must see where the time between one task's result and the next submit goes
without a line of bot code written for it, so the marks are patched in here, in the bot's own process,
before `bot.cli.main(["run"])` starts. With `BURST_TRACE=path` the marks (name, task id, monotonic
seconds) are written to `path` as JSON when the bot exits (the driver stops it with SIGTERM, a graceful
stop). `handover()` turns them into the stages the driver prints:

- `done_seen → left`: the GetResult that read `done` returned (its image decoded) until the runner was told
  the place is free; `done_seen → ready`: until the upstream part handed the result over (the learned
  polling model recorded);
- `left → spawn`: until the next task was started on that place (the freed places and the starts paired
  first come first served; a place with nothing runnable to take stays unpaired until something comes);
  `freed_at_cap`: how many were freed while the runner ran its most tasks (upstream
  plus results being delivered), so that nothing could start there until a delivery ended;
- `spawn → commit`: reading the task, the user's language and building the request (or, built ahead,
  taking it); `commit`: the fsynced move to `submitting`; `commit → submit`: up to the POST; `submit`:
  the HTTP submit (the upstream's own handling included);
- `build`: building a request (the prepared selfie read, the body), wherever it ran;
- `status <stage>`: how long a status update of the upstream part took (`submitting`, awaited before the
  POST; `in_queue`, awaited when polling begins; `generating`, shown between polls: the poll loop used
  to await it too, holding the place, and now goes on beside it), in private chats and in groups apart.
"""

from __future__ import annotations

import asyncio
import functools
import os
import statistics
import sys
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.bot_proc import write_atomically
from benchmarks.bot_report import pct

TRACE_ENV = "BURST_TRACE"

#: Status updates of the upstream part, shown while it holds a place.
AWAITED_STAGES = ("submitting", "in_queue", "generating")

Mark = tuple[str, int, float]
MARKS: list[Mark] = []


def mark(name: str, task_id: int) -> None:
    MARKS.append((name, task_id, time.monotonic()))


def current_task_id() -> int:
    """The runner names each task's work `task-<id>`; -1 elsewhere."""
    current = asyncio.current_task()
    name = current.get_name() if current is not None else ""
    return int(name[5:]) if name.startswith("task-") and name[5:].isdigit() else -1


def install() -> None:
    """Patch the marks in (only where the names exist, so the wrapper survives a refactor)."""
    import api_client.client
    import bot.jobs.lifecycle
    import bot.jobs.runner
    import bot.jobs.task_store
    from api_client.models import TaskStatus
    from storage import TaskState

    runner: Any = bot.jobs.runner.JobRunner
    spawn = runner._spawn

    @functools.wraps(spawn)
    def traced_spawn(self: Any, task_id: int, *, upstream: bool) -> bool:
        started: bool = spawn(self, task_id, upstream=upstream)
        if started and upstream:
            mark("spawn", task_id)
        return started

    runner._spawn = traced_spawn
    leave = runner._leave_upstream

    @functools.wraps(leave)
    def traced_leave(self: Any, task_id: int) -> None:
        freed = task_id in self._upstream
        if freed:
            mark("left", task_id)
        leave(self, task_id)
        if freed and len(self._running) >= self.upstream_limit + self.extra_limit:
            mark("left_at_cap", task_id)  # nothing may start: results waiting for Telegram fill the runner

    runner._leave_upstream = traced_leave
    lifecycle: Any = bot.jobs.lifecycle
    build = lifecycle.build_request

    @functools.wraps(build)
    async def traced_build(notifier: Any, task: Any, *args: Any, **kwargs: Any) -> Any:
        mark("build0", task.id)
        try:
            return await build(notifier, task, *args, **kwargs)
        finally:
            mark("build1", task.id)

    lifecycle.build_request = traced_build
    upstream = lifecycle.Lifecycle.upstream

    @functools.wraps(upstream)
    async def traced_upstream(self: Any, task: Any, **kwargs: Any) -> Any:
        ready = await upstream(self, task, **kwargs)
        if ready is not None:
            mark("ready", task.id)
        return ready

    lifecycle.Lifecycle.upstream = traced_upstream
    tasks: Any = bot.jobs.task_store.ShieldedTasks
    transition = tasks.transition

    @functools.wraps(transition)
    async def traced_transition(self: Any, task_id: int, to: Any, **kwargs: Any) -> Any:
        if to is not TaskState.SUBMITTING:
            return await transition(self, task_id, to, **kwargs)
        mark("commit0", task_id)
        try:
            return await transition(self, task_id, to, **kwargs)
        finally:
            mark("commit1", task_id)

    tasks.transition = traced_transition
    client: Any = api_client.client.PortraitClient
    submit, get_result = client.submit, client.get_result

    @functools.wraps(submit)
    async def traced_submit(self: Any, request: Any) -> Any:
        task_id = current_task_id()
        mark("submit0", task_id)
        try:
            return await submit(self, request)
        finally:
            mark("submit1", task_id)

    @functools.wraps(get_result)
    async def traced_result(self: Any, *args: Any, **kwargs: Any) -> Any:
        result = await get_result(self, *args, **kwargs)
        if result.status is TaskStatus.DONE:
            mark("done_seen", current_task_id())
        return result

    client.submit, client.get_result = traced_submit, traced_result
    import bot.chat.notifier

    notifier: Any = bot.chat.notifier.TelegramNotifier
    status = notifier.status

    @functools.wraps(status)
    async def traced_status(self: Any, task: Any, stage: str, *args: Any, **kwargs: Any) -> Any:
        if stage not in AWAITED_STAGES:
            return await status(self, task, stage, *args, **kwargs)
        where = " (group)" if task.chat_id < 0 else ""
        mark(f"{stage}{where}0", task.id)
        try:
            return await status(self, task, stage, *args, **kwargs)
        finally:
            mark(f"{stage}{where}1", task.id)

    notifier.status = traced_status


def spread(values: Sequence[float]) -> dict[str, float]:
    """n, p50, p90 (measured values: nearest rank) and mean, in milliseconds."""
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "p50_ms": 1000 * pct(values, 50),
        "p90_ms": 1000 * pct(values, 90),
        "mean_ms": 1000 * statistics.fmean(values),
    }


def handover(marks: Sequence[Sequence[Any]]) -> dict[str, dict[str, float]]:
    """The stages of the module docstring, each as n, p50, p90 and mean in milliseconds."""
    at: dict[tuple[str, int], float] = {}
    for name, task_id, when in marks:
        at.setdefault((str(name), int(task_id)), float(when))  # the first of each (a resend is rare)
    ids = {task_id for _, task_id in at if task_id >= 0}

    def span(start: str, end: str) -> list[float]:
        return [at[(end, i)] - at[(start, i)] for i in ids if (start, i) in at and (end, i) in at]

    freed: deque[float] = deque()
    paired: list[float] = []
    events = sorted((when, name) for name, _, when in marks if name in ("left", "spawn"))
    for when, name in events:
        if name == "left":
            freed.append(float(when))
        elif freed:
            paired.append(float(when) - freed.popleft())
    at_cap = sum(1 for name, _, _ in marks if name == "left_at_cap")
    return {
        "freed_at_cap": {"n": at_cap},
        "done_seen -> left": spread(span("done_seen", "left")),
        "done_seen -> ready": spread(span("done_seen", "ready")),
        "left -> spawn": spread(paired),
        "spawn -> commit": spread(span("spawn", "commit0")),
        "commit": spread(span("commit0", "commit1")),
        "commit -> submit": spread(span("commit1", "submit0")),
        "submit": spread(span("submit0", "submit1")),
        "build": spread(span("build0", "build1")),
        **{
            f"status {stage}{where}": spread(span(f"{stage}{where}0", f"{stage}{where}1"))
            for stage in AWAITED_STAGES
            for where in ("", " (group)")
        },
    }


def main() -> int:
    install()
    from bot.cli import main as bot_main

    try:
        return bot_main(sys.argv[1:] or ["run"])
    finally:
        target = os.environ.get(TRACE_ENV)
        if target:
            write_atomically(Path(target), MARKS)


if __name__ == "__main__":
    sys.exit(main())
