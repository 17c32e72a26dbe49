"""The hand-over of an upstream place from one task to the next: the place is given back the moment a poll
reads the result done, not after the bot's own bookkeeping. Real runner, store and emulator."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path

from api_client.learning import PollingLearner
from bot.jobs.runner import JobRunner
from storage import TaskState

from .runner_support import RecordingNotifier, bench


class HeldTimings:
    """A TimingStore whose saves wait until released: the learned model's write after each `done`."""

    def __init__(self) -> None:
        self.saving = asyncio.Event()
        self.release = asyncio.Event()

    async def load(self) -> Mapping[str, Mapping[str, object]]:
        return {}

    async def save(self, bucket: str, state: Mapping[str, object]) -> None:
        self.saving.set()
        await self.release.wait()


async def until(condition: Callable[[], object], what: str) -> None:
    """Let the runner's steps (and the store's threads) run until `condition()` holds; fails after 10 s
    of real time, which only a place that is never given back takes."""
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


async def test_the_next_task_is_submitted_while_the_finished_one_still_records_its_timings(
    tmp_path: Path,
) -> None:
    async with bench(tmp_path) as b:
        b.settings = dataclasses.replace(b.settings, max_concurrent_tasks=1)
        timings = HeldTimings()
        learner = await PollingLearner.open(timings)
        notifier = RecordingNotifier()
        runner = JobRunner(
            b.store, b.client(), notifier, settings=b.settings, clock=b.clock, owner="worker-a",
            learner=learner,
        )  # fmt: skip
        first, second = await b.task(user_id=1), await b.task(user_id=2)
        runner.enqueue(first)
        runner.enqueue(second)
        work = asyncio.create_task(runner.run_until_idle())
        await asyncio.wait_for(timings.saving.wait(), 10)  # the first one read done; its record is held
        await until(lambda: b.app_state.submits_received == 2, "the second submit")
        assert (await b.state(first.id)).state is TaskState.SUBMITTED  # its result not even sent yet
        timings.release.set()
        await work
        assert [(await b.state(t.id)).state for t in (first, second)] == [TaskState.DONE] * 2
        assert b.app_state.max_in_flight == 1  # never over the limit
        assert await b.ledger_ok()


async def test_a_progress_edit_stuck_behind_telegram_holds_neither_the_place_nor_the_result(
    tmp_path: Path,
) -> None:
    """The "generating" edit (and its chat action) can wait seconds behind Telegram's 30 messages a second,
    in a group behind the group's results: the polls go on meanwhile, the place is given back once the
    result reads done, and the edit, stale by then, is dropped (a message saved) before the result goes
    on, so no stage shows after it."""
    async with bench(tmp_path) as b:
        b.settings = dataclasses.replace(b.settings, max_concurrent_tasks=1)
        runner, notifier = b.runner()
        notifier.hold_at = "generating"  # each task's "generating" edit waits until released
        first, second = await b.task(user_id=1), await b.task(user_id=2)
        runner.enqueue(first)
        runner.enqueue(second)
        await asyncio.wait_for(runner.run_until_idle(), 10)  # never released
        assert [(await b.state(t.id)).state for t in (first, second)] == [TaskState.DONE] * 2
        for task in (first, second):
            stages = notifier.stages(task.id)
            assert stages.index("generating") < stages.index("sending")
        assert b.app_state.max_in_flight == 1
        assert await b.ledger_ok()
