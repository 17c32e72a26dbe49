"""JobRunner under trouble that should not cost the user their portrait: upstream outages while polling,
a store that is briefly locked after the photo went out, Telegram asking us to slow down, slot waits, and
tasks ended elsewhere (the admin CLI)."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from api_client.emulator import Fault
from bot.jobs import runner as runner_module
from bot.jobs.delivery import FINISH_ATTEMPTS
from bot.jobs.notifier import TryLater
from bot.jobs.outcomes import GONE_TTL_SECONDS
from bot.jobs.runner import MAX_BUSY_RETRIES, CancelOutcome
from storage import Delivery, Task, TaskState

from .runner_support import Bench, bench

SUBMIT = "CVSync2AsyncSubmitTask"
RESULT = "CVSync2AsyncGetResult"


async def test_a_short_outage_while_polling_is_waited_out_not_refunded(tmp_path: Path) -> None:
    """Regression: a 500 burst on GetResult that outlasted the client's retries failed (and refunded) a task
    the service went on to finish and bill."""
    async with bench(tmp_path) as b:
        for _ in range(4):  # two polls' worth: the client's attempt and its one retry, twice
            b.app_state.faults.push(Fault.INTERNAL, RESULT)
        runner, notifier = b.runner()
        task = await b.task()
        runner.enqueue(task.id)
        await runner.run_until_idle()

        done = await b.state(task.id)
        assert done.state is TaskState.DONE
        assert [tid for tid, _ in notifier.delivered] == [task.id]
        assert notifier.failures == [] and notifier.alerts == []
        assert "retrying" in notifier.stages(task.id)
        assert b.app_state.submits_received == 1
        assert await b.free_left() == 2  # charged once
        ledger = await b.store.quotas.ledger(1)
        assert sorted(e.kind for e in ledger) == ["commit", "reserve"]
        assert await b.ledger_ok()


async def test_an_outage_while_polling_that_never_ends_fails_after_bounded_retries(tmp_path: Path) -> None:
    async with bench(tmp_path) as b:
        runner, notifier = b.runner()
        task = await b.task()
        b.app_state.faults.actions = frozenset({RESULT})
        b.app_state.faults.rate_500 = 1.0
        runner.enqueue(task.id)
        await runner.run_until_idle()

        failed = await b.state(task.id)
        assert failed.state in (TaskState.FAILED, TaskState.EXPIRED)
        assert notifier.keys() in (["error.service"], ["error.expired"])
        assert b.app_state.submits_received == 1 and notifier.delivered == []
        assert await b.free_left() == 3 and await b.ledger_ok()


async def test_a_server_error_on_submit_is_still_never_resent(tmp_path: Path) -> None:
    async with bench(tmp_path) as b:
        for _ in range(2):
            b.app_state.faults.push(Fault.INTERNAL, SUBMIT)
        runner, notifier = b.runner()
        task = await b.task()
        runner.enqueue(task.id)
        await runner.run_until_idle()
        assert (await b.state(task.id)).error_code == "submit_unknown"
        assert b.app_state.submits_received <= 2 and notifier.delivered == []


def lock_done_transitions(b: Bench, monkeypatch: pytest.MonkeyPatch, times: int) -> list[int]:
    """The next `times` moves to DONE fail as SQLite does while the admin CLI holds the write lock."""
    real = b.store.tasks.transition
    refused: list[int] = []

    async def transition(task_id: int, to: TaskState, **kwargs: Any) -> Task:
        if to is TaskState.DONE and len(refused) < times:
            refused.append(task_id)
            raise sqlite3.OperationalError("database is locked")
        return await real(task_id, to, **kwargs)

    monkeypatch.setattr(b.store.tasks, "transition", transition)
    return refused


async def test_a_locked_store_after_the_photo_went_out_never_refunds_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: 'database is locked' on the DONE transition after send_photo failed the task: the user
    had the photo, a refund and an 'unexpected error' apology; the admins an alert."""
    async with bench(tmp_path) as b:
        refused = lock_done_transitions(b, monkeypatch, times=2)
        runner, notifier = b.runner()
        task = await b.task()
        runner.enqueue(task.id)
        await runner.run_until_idle()

        done = await b.state(task.id)
        assert refused == [task.id, task.id]
        assert (done.state, done.result_file_id) == (TaskState.DONE, f"photo-{task.id}")
        assert len(notifier.delivered) == 1
        assert notifier.failures == [] and notifier.alerts == []
        assert await b.free_left() == 2 and await b.ledger_ok()


async def test_a_store_locked_for_longer_is_finished_later_without_sending_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with bench(tmp_path) as b:
        lock_done_transitions(b, monkeypatch, times=FINISH_ATTEMPTS)
        runner, notifier = b.runner()
        task = await b.task()
        runner.enqueue(task.id)
        await runner.run_until_idle()

        done = await b.state(task.id)
        assert (done.state, done.result_file_id) == (TaskState.DONE, f"photo-{task.id}")
        assert len(notifier.delivered) == 1 and notifier.failures == [] and notifier.alerts == []
        assert await b.free_left() == 2 and await b.ledger_ok()


async def test_after_a_restart_a_photo_recorded_as_sent_is_finished_not_resent(tmp_path: Path) -> None:
    async with bench(tmp_path) as b:
        task = await b.task()
        await b.store.tasks.transition(task.id, TaskState.SUBMITTING)
        await b.store.tasks.transition(task.id, TaskState.SUBMITTED, upstream_task_id="123")
        await b.store.tasks.transition(task.id, TaskState.POLLING)
        await b.store.tasks.transition(task.id, TaskState.DELIVERING)
        # What a runner writes when the photo went out but DONE could not be recorded, before it died:
        await b.store.tasks.update(task.id, delivery=Delivery.SENT, sent_file_id="photo-xyz")
        runner, notifier = b.runner()
        await runner.resume()
        await runner.run_until_idle()
        done = await b.state(task.id)
        assert (done.state, done.result_file_id) == (TaskState.DONE, "photo-xyz")
        assert notifier.delivered == [] and notifier.failures == []
        assert await b.free_left() == 2 and await b.ledger_ok()


async def test_telegram_asking_us_to_wait_before_the_photo_delays_it_without_a_refund(
    tmp_path: Path,
) -> None:
    """Regression: RetryAfter from sendPhoto (nothing sent) ended the task as 'unexpected': refunded, the
    user apologised to, the admins alerted."""
    async with bench(tmp_path) as b:
        runner, notifier = b.runner()
        notifier.deliver_errors = [TryLater("flood control", retry_after=40.0)]
        task = await b.task()
        runner.enqueue(task.id)
        await runner.run_until_idle()

        done = await b.state(task.id)
        assert (done.state, done.result_file_id) == (TaskState.DONE, f"photo-{task.id}")
        assert len(notifier.delivered) == 1
        assert notifier.failures == [] and notifier.alerts == []
        assert b.clock.now() - task.created_at >= 40.0
        assert await b.free_left() == 2 and await b.ledger_ok()


async def test_a_network_error_fetching_the_selfie_is_retried_later(tmp_path: Path) -> None:
    async with bench(tmp_path) as b:
        runner, notifier = b.runner()
        notifier.download_errors = [TryLater("getFile: TimedOut")]
        task = await b.task()
        runner.enqueue(task.id)
        await runner.run_until_idle()

        assert (await b.state(task.id)).state is TaskState.DONE
        assert len(notifier.delivered) == 1
        assert notifier.failures == [] and notifier.alerts == []
        assert b.app_state.submits_received == 1
        assert await b.free_left() == 2 and await b.ledger_ok()


async def test_telegram_refusing_for_good_ends_the_task_as_busy_without_alerting(tmp_path: Path) -> None:
    async with bench(tmp_path) as b:
        runner, notifier = b.runner()
        notifier.download_error = TryLater("getFile: NetworkError")
        task = await b.task()
        runner.enqueue(task.id)
        await runner.run_until_idle()

        failed = await b.state(task.id)
        assert failed.state is TaskState.FAILED and failed.attempts == MAX_BUSY_RETRIES
        assert notifier.keys() == ["error.busy"] and notifier.alerts == []
        assert b.app_state.submits_received == 0
        assert await b.free_left() == 3 and await b.ledger_ok()


async def test_time_spent_waiting_for_a_slot_does_not_eat_the_poll_deadline(tmp_path: Path) -> None:
    """Regression: the deadline counted from the task's creation, so a task that waited minutes for an
    upstream slot was polled for 30 s, expired and refunded while the service went on to bill it."""
    async with bench(tmp_path, stuck_rate=1.0) as b:
        runner, _ = b.runner()
        task = await b.task()
        b.clock.advance(280)  # queued behind other users' generations
        submitted_at = b.clock.now()
        runner.enqueue(task.id)
        await runner.run_until_idle()

        expired = await b.state(task.id)
        assert (expired.state, expired.error_code) == (TaskState.EXPIRED, "deadline")
        polled = b.clock.now() - submitted_at
        assert b.settings.task_deadline_seconds <= polled < b.settings.task_deadline_seconds + 60


async def test_a_resumed_poll_keeps_the_deadline_counted_from_its_submit(tmp_path: Path) -> None:
    async with bench(tmp_path, stuck_rate=1.0) as b:
        first, first_notifier = b.runner(owner="worker-a")
        first_notifier.hold_at = "in_queue"
        task = await b.task()
        b.clock.advance(280)
        submitted_at = b.clock.now()
        first.enqueue(task.id)
        await asyncio.wait_for(first_notifier.held.wait(), 5)
        await first.stop()
        b.clock.advance(50)  # the bot was down for a while

        second, _ = b.runner(owner="worker-a")
        await second.resume()
        await second.run_until_idle()
        assert (await b.state(task.id)).state is TaskState.EXPIRED
        polled = b.clock.now() - submitted_at
        assert b.settings.task_deadline_seconds <= polled < b.settings.task_deadline_seconds + 60


async def test_a_task_ended_elsewhere_stops_here_without_a_second_transition(tmp_path: Path) -> None:
    """Regression: a ban from the admin CLI cancels tasks in the database only; the running bot kept
    polling them and their status messages stayed on 'generating'."""
    async with bench(tmp_path) as b:
        runner, notifier = b.runner()
        notifier.hold_at = "in_queue"
        task = await b.task()
        runner.enqueue(task.id)
        await asyncio.wait_for(notifier.held.wait(), 5)
        # What bot/admin/ops.py does for /ban from the command line:
        await b.store.tasks.transition(task.id, TaskState.CANCELLED, error_code="cancelled:ban")
        polls = b.app_state.received[RESULT]

        await runner._renew_leases()
        assert runner.running == frozenset()
        assert notifier.stages(task.id)[-1] == "stopped"
        notifier.release.set()
        b.clock.advance(60)
        await runner.run_until_idle()

        assert b.app_state.received[RESULT] == polls  # no further upstream polls
        assert notifier.delivered == [] and notifier.failures == []
        cancelled = await b.state(task.id)
        assert (cancelled.state, cancelled.error_code) == (TaskState.CANCELLED, "cancelled:ban")
        refunds = [e for e in await b.store.quotas.ledger(1) if e.kind == "refund"]
        assert len(refunds) == 1
        assert await b.free_left() == 3 and await b.ledger_ok()


async def test_a_stop_while_waiting_for_the_chats_turn_sends_later_instead_of_refunding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: the `sending` mark was written before the pacer's wait, so a stop in that window gave
    'may not have arrived' and a refund though nothing had been sent."""
    monkeypatch.setattr(runner_module, "STOP_GRACE_SECONDS", 0.2)
    async with bench(tmp_path) as b:
        first, first_notifier = b.runner(owner="worker-a")
        first_notifier.hold_before_send = True
        task = await b.task()
        first.enqueue(task.id)
        await asyncio.wait_for(first_notifier.held.wait(), 5)
        assert (await b.state(task.id)).delivery is not Delivery.SENDING
        await first.stop()

        second, notifier = b.runner(owner="worker-a")
        await second.resume()
        await second.run_until_idle()
        done = await b.state(task.id)
        assert (done.state, done.result_file_id) == (TaskState.DONE, f"photo-{task.id}")
        assert len(notifier.delivered) == 1 and notifier.failures == []
        assert await b.free_left() == 2 and await b.ledger_ok()


async def test_every_ending_lets_the_chat_side_forget_the_task(tmp_path: Path) -> None:
    """Regression: progress state of tasks that ended without a final message (the user blocked the bot,
    a chat already refusing us) was kept for the life of the process."""
    async with bench(tmp_path) as b:
        runner, notifier = b.runner()
        notifier.gone, notifier.gone_on = {2}, {"deliver", "failed"}
        done = await b.task(user_id=1)
        blocked = await b.task(user_id=2)
        refused = await b.task(user_id=3, prompt="something risky")
        cancelled = await b.task(user_id=4)
        assert await runner.cancel(cancelled.id) is CancelOutcome.CANCELLED
        for task in (done, blocked, refused):
            runner.enqueue(task.id)
        await runner.run_until_idle()

        states = [(await b.state(t.id)).state for t in (done, blocked, refused, cancelled)]
        assert states == [TaskState.DONE, TaskState.FAILED, TaskState.FAILED, TaskState.CANCELLED]
        assert set(notifier.forgotten) == {done.id, blocked.id, refused.id, cancelled.id}


async def test_chats_that_refused_us_long_ago_are_forgotten(tmp_path: Path) -> None:
    async with bench(tmp_path) as b:
        runner, _ = b.runner()
        outcomes = runner._outcomes
        for chat_id in range(1, 501):
            outcomes.mark_gone(chat_id)
            b.clock.advance(GONE_TTL_SECONDS / 100)
        assert len(outcomes._gone) <= 101
