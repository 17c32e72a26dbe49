"""Money and double work (reliability items 1, 2 and 4), through the real runner, store and emulator:
two workers never both act on one task, a billed submit survives a store that is unavailable for a while,
and DONE is recorded as soon as the photo is accepted."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from bot.jobs.runner import LEASE_SECONDS
from bot.ops.metrics import REGISTRY
from storage import Task, TaskState
from tests.bot.runner_support import Bench, bench


async def test_a_worker_frozen_past_its_lease_does_not_deliver_a_second_time(tmp_path: Path) -> None:
    """Regression: transitions did not check the lease, so worker A, frozen for longer than its lease while
    worker B took the task over and finished it, woke up and went on (two photos, or two submits)."""
    async with bench(tmp_path) as b:
        a, a_chat = b.runner(owner="worker-a")
        a_chat.hold_at = "in_queue"  # A is polling when it freezes
        task = await b.task()
        a.enqueue(task.id)
        await asyncio.wait_for(a_chat.held.wait(), 5)

        b.clock.advance(LEASE_SECONDS + 1)  # A's lease runs out while it is frozen
        other, b_chat = b.runner(owner="worker-b")
        await other.resume()
        await other.run_until_idle()
        assert (await b.state(task.id)).state is TaskState.DONE
        assert [tid for tid, _ in b_chat.delivered] == [task.id]

        a_chat.release.set()  # A wakes up
        await a.run_until_idle()
        assert a_chat.delivered == [] and a_chat.failures == []
        assert b.app_state.submits_received == 1
        assert await b.free_left() == 2 and await b.ledger_ok()


async def test_a_worker_frozen_before_its_submit_does_not_submit(tmp_path: Path) -> None:
    async with bench(tmp_path) as b:
        a, a_chat = b.runner(owner="worker-a")
        a_chat.hold_at = "submitting"  # just before the submit request
        task = await b.task()
        a.enqueue(task.id)
        await asyncio.wait_for(a_chat.held.wait(), 5)

        b.clock.advance(LEASE_SECONDS + 1)
        other, _ = b.runner(owner="worker-b")
        await other.resume()
        await other.run_until_idle()  # B finds it submitting with no safe-to-resend mark: not resent
        assert (await b.state(task.id)).error_code == "submit_unknown"

        a_chat.release.set()
        await a.run_until_idle()
        assert b.app_state.submits_received == 0  # A checked its lease before the submit
        assert await b.free_left() == 3 and await b.ledger_ok()


async def test_a_lease_taken_over_stops_the_local_work_at_once(tmp_path: Path) -> None:
    async with bench(tmp_path) as b:
        a, a_chat = b.runner(owner="worker-a")
        a_chat.hold_at = "in_queue"
        task = await b.task()
        a.enqueue(task.id)
        await asyncio.wait_for(a_chat.held.wait(), 5)
        b.clock.advance(LEASE_SECONDS + 1)
        assert await b.store.tasks.claim(task.id, "worker-b", LEASE_SECONDS)
        await a._renew_leases()  # the idle loop's renewal finds the lease gone
        assert a.running == frozenset()


async def test_a_queued_task_another_worker_started_first_is_left_to_it_without_a_lost_lease(
    tmp_path: Path,
) -> None:
    """Two processes may pick the same queued task; the one that did not claim it never held a lease, so
    its renewal loop stops its copy quietly instead of counting a lease lost."""
    async with bench(tmp_path) as b:
        a, a_chat = b.runner(owner="worker-a")
        fetching, release = asyncio.Event(), asyncio.Event()
        real_download = a_chat.download

        async def slow_download(file_id: str) -> bytes:  # A builds its request: no claim, no lease yet
            fetching.set()
            await release.wait()
            return await real_download(file_id)

        a_chat.download = slow_download  # type: ignore[method-assign]
        task = await b.task()
        a.enqueue(task.id)
        await asyncio.wait_for(fetching.wait(), 5)
        assert await b.store.tasks.claim(task.id, "worker-b", LEASE_SECONDS)  # B started it first
        before = _leases_lost()
        await a._renew_leases()
        assert a.running == frozenset() and _leases_lost() == before
        release.set()


def _leases_lost() -> float:
    return REGISTRY.get_sample_value("portrait_bot_lease_takeovers_total", {"direction": "lost"}) or 0.0


def fail_writes(b: Bench, monkeypatch: pytest.MonkeyPatch, to: TaskState, times: int) -> list[int]:
    """The next `times` moves to `to` fail as SQLite does when locked, full or broken."""
    real = b.store.tasks.transition
    refused: list[int] = []

    async def transition(task_id: int, state: TaskState, **kwargs: Any) -> Task:
        if state is to and len(refused) < times:
            refused.append(task_id)
            raise sqlite3.OperationalError("database or disk is full")
        return await real(task_id, state, **kwargs)

    monkeypatch.setattr(b.store.tasks, "transition", transition)
    return refused


@pytest.mark.parametrize("to", [TaskState.SUBMITTED, TaskState.DELIVERING])
async def test_an_unavailable_store_after_a_billed_submit_keeps_the_task(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, to: TaskState
) -> None:
    """Regression: a storage error right after the billed submit failed the task, refunded it and lost the
    upstream task id (only a log line had it); the same for polling -> delivering."""
    async with bench(tmp_path) as b:
        refused = fail_writes(b, monkeypatch, to, times=3)
        runner, notifier = b.runner()
        task = await b.task()
        runner.enqueue(task.id)
        await runner.run_until_idle()
        done = await b.state(task.id)
        assert len(refused) == 3
        assert done.state is TaskState.DONE and done.upstream_task_id is not None
        assert b.app_state.submits_received == 1 and len(notifier.delivered) == 1
        assert notifier.failures == [] and notifier.alerts == []
        assert await b.free_left() == 2 and await b.ledger_ok()


async def test_done_is_recorded_as_soon_as_the_photo_is_accepted(tmp_path: Path) -> None:
    """Regression: DONE was recorded only after the full-size document and the final status edit, so a stop
    while those went out refunded (and apologised for) a portrait the user already had."""
    async with bench(tmp_path) as b:
        runner, notifier = b.runner()
        notifier.hold_after_sent = True
        task = await b.task()
        runner.enqueue(task.id)
        await asyncio.wait_for(notifier.held.wait(), 5)
        assert (await b.state(task.id)).state is TaskState.DONE  # before the extras are out
        await runner.stop()

        again, later = b.runner()
        await again.resume()
        await again.run_until_idle()
        assert later.failures == [] and later.delivered == []
        assert await b.free_left() == 2 and await b.ledger_ok()


async def test_a_lease_renewal_after_done_leaves_the_jobs_own_ending_alone(tmp_path: Path) -> None:
    """Regression (seen in bench_bot: 62 of 223 portraits): a renewal that found a task DONE while its own
    job was still wrapping up (out of the sending set, giving its lease back) took it for one ended
    elsewhere, cancelled the job and turned the status message of a delivered portrait into "Stopped"."""
    async with bench(tmp_path) as b:
        runner, notifier = b.runner()
        task = await b.task()
        runner.enqueue(task.id)
        await runner.run_until_idle()
        assert (await b.state(task.id)).state is TaskState.DONE
        wrapping_up = asyncio.create_task(asyncio.sleep(3600))  # the job, still between its last awaits
        runner._running[task.id] = wrapping_up
        await runner._renew_leases()
        assert not wrapping_up.cancelled() and "stopped" not in notifier.stages(task.id)
        wrapping_up.cancel()

        banned = await b.task(user_id=2)  # a task a person ended elsewhere is still dropped
        await b.store.tasks.transition(banned.id, TaskState.CANCELLED, error_code="cancelled:ban")
        running = asyncio.create_task(asyncio.sleep(3600))
        runner._running[banned.id] = running
        await runner._renew_leases()
        await asyncio.sleep(0)
        assert running.cancelled() and "stopped" in notifier.stages(banned.id)
