"""A portrait whose delivery Telegram never confirmed: spent, never resent on its own, "Send it again" once.

The bench's real store, the emulator's client and a recording notifier: what the user would see and what the
ledger says (tests/bot/runner_support.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.jobs import runner as runner_module
from bot.jobs.notifier import DeliveryUncertain
from bot.jobs.resend import HOLD_SECONDS, Resender, Resent
from bot.replies.errors import FriendlyError
from storage import RESULT_KEPT_SECONDS, UNCONFIRMED, Delivery, Task, TaskState

from .runner_support import Bench, RecordingNotifier, bench


async def killed_while_sending(b: Bench, monkeypatch: pytest.MonkeyPatch) -> tuple[Task, RecordingNotifier]:
    """A worker stops for good inside send_photo (after the `sending` mark), and the next one resumes."""
    monkeypatch.setattr(runner_module, "STOP_GRACE_SECONDS", 0.2)
    first, first_notifier = b.runner(owner="worker-a")
    first_notifier.hold_while_sending = True
    task = await b.task()
    first.enqueue(task.id)
    await asyncio.wait_for(first_notifier.held.wait(), 5)
    await first.stop()
    stuck = await b.state(task.id)
    assert (stuck.state, stuck.delivery) == (TaskState.DELIVERING, Delivery.SENDING)

    second, notifier = b.runner(owner="worker-b")
    await second.resume()
    await second.run_until_idle()
    return await b.state(task.id), notifier


async def test_a_send_killed_midway_is_spent_not_resent_and_offers_send_it_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: it was refunded ("this one was not charged"), a free portrait whenever the photo had
    in fact arrived."""
    async with bench(tmp_path) as b:
        task, notifier = await killed_while_sending(b, monkeypatch)
        assert (task.state, task.reservation, task.error_code) == (TaskState.DONE, "committed", UNCONFIRMED)
        assert task.result_file_id is None
        assert notifier.delivered == [] and notifier.failures == []
        notes = [(task_id, error.key) for task_id, error, _ in notifier.unconfirmed_notes]
        assert notes == [(task.id, "error.delivery_uncertain")]
        assert await b.free_left() == 2 and await b.ledger_ok()

        resender = Resender(b.store, b.client(), notifier)
        pressed = await resender.press(task.id, task.user_id, "q1")
        assert pressed.outcome is Resent.SENDING
        assert await resender.send(pressed, lang="en") is Resent.SENT
        assert [t for t, _ in notifier.delivered] == [task.id]
        sent = await b.state(task.id)
        assert sent.result_file_id == f"photo-{task.id}" and sent.lease_owner is None

        again = await resender.press(task.id, task.user_id, "q2")
        assert again.outcome is Resent.ALREADY
        assert len(notifier.delivered) == 1
        assert b.app_state.submits_received == 1
        assert await b.free_left() == 2 and await b.ledger_ok()


async def test_a_timed_out_send_is_spent_and_offers_send_it_again(tmp_path: Path) -> None:
    async with bench(tmp_path) as b:
        runner, notifier = b.runner()
        notifier.deliver_errors = [DeliveryUncertain("send_photo timed out")]
        task = await b.task()
        runner.enqueue(task.id)
        await runner.run_until_idle()
        done = await b.state(task.id)
        assert (done.state, done.reservation, done.error_code) == (TaskState.DONE, "committed", UNCONFIRMED)
        assert notifier.delivered == [] and len(notifier.unconfirmed_notes) == 1
        assert await b.free_left() == 2 and await b.ledger_ok()


async def test_concurrent_presses_send_one_photo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with bench(tmp_path) as b:
        task, notifier = await killed_while_sending(b, monkeypatch)
        first = Resender(b.store, b.client(), notifier)
        second = Resender(b.store, b.client(), notifier)  # another process on the same database
        presses = await asyncio.gather(
            first.press(task.id, task.user_id, "q1"), second.press(task.id, task.user_id, "q2")
        )
        assert sorted(p.outcome for p in presses) == sorted([Resent.SENDING, Resent.BUSY])
        winner = next(p for p in presses if p.outcome is Resent.SENDING)
        assert await first.send(winner, lang="en") is Resent.SENT
        assert len(notifier.delivered) == 1


async def test_a_press_killed_midway_leaves_the_button_working_once_its_claim_runs_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with bench(tmp_path) as b:
        task, notifier = await killed_while_sending(b, monkeypatch)
        resender = Resender(b.store, b.client(), notifier)
        died = await resender.press(task.id, task.user_id, "q1")  # the process dies before sending
        assert died.outcome is Resent.SENDING
        assert (await resender.press(task.id, task.user_id, "q2")).outcome is Resent.BUSY
        b.clock.advance(HOLD_SECONDS + 1)
        pressed = await resender.press(task.id, task.user_id, "q3")
        assert pressed.outcome is Resent.SENDING
        assert await resender.send(pressed, lang="en") is Resent.SENT
        assert len(notifier.delivered) == 1
        assert await b.free_left() == 2 and await b.ledger_ok()


async def test_a_failed_or_unconfirmed_resend_gives_the_button_back_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with bench(tmp_path) as b:
        task, notifier = await killed_while_sending(b, monkeypatch)
        resender = Resender(b.store, b.client(), notifier)
        notifier.deliver_errors = [DeliveryUncertain("timed out again")]
        pressed = await resender.press(task.id, task.user_id, "q1")
        assert await resender.send(pressed, lang="en") is Resent.UNCONFIRMED
        pressed = await resender.press(task.id, task.user_id, "q2")
        assert pressed.outcome is Resent.SENDING
        assert await resender.send(pressed, lang="en") is Resent.SENT
        assert len(notifier.delivered) == 1


async def test_only_the_requester_may_press_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with bench(tmp_path) as b:
        task, notifier = await killed_while_sending(b, monkeypatch)
        resender = Resender(b.store, b.client(), notifier)
        assert (await resender.press(task.id, task.user_id + 1, "q1")).outcome is Resent.NOT_YOURS
        assert (await resender.press(task.id + 99, task.user_id, "q2")).outcome is Resent.STALE
        assert notifier.delivered == []


async def test_past_twelve_hours_it_is_too_late_and_stays_spent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with bench(tmp_path) as b:
        task, notifier = await killed_while_sending(b, monkeypatch)
        b.clock.advance(RESULT_KEPT_SECONDS)
        resender = Resender(b.store, b.client(), notifier)
        assert (await resender.press(task.id, task.user_id, "q1")).outcome is Resent.TOO_LATE
        assert notifier.delivered == []
        assert (await b.state(task.id)).reservation == "committed"
        kinds = sorted(e.kind for e in await b.store.quotas.ledger(task.user_id) if e.task_id == task.id)
        assert kinds == ["commit", "reserve"] and await b.ledger_ok()  # a new quota day: no free_left check


async def test_a_result_the_service_forgot_early_is_too_late(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with bench(tmp_path) as b:
        task, notifier = await killed_while_sending(b, monkeypatch)
        b.app_state.store.tasks.clear()  # the service no longer has it: GetResult says not_found
        resender = Resender(b.store, b.client(), notifier)
        pressed = await resender.press(task.id, task.user_id, "q1")
        assert await resender.send(pressed, lang="en") is Resent.TOO_LATE
        assert notifier.delivered == []
        assert (await b.state(task.id)).lease_owner is None  # given back: a later press is answered too
        assert await b.free_left() == 2 and await b.ledger_ok()


async def test_a_delivered_portrait_offers_nothing_to_send_again(tmp_path: Path) -> None:
    async with bench(tmp_path) as b:
        runner, notifier = b.runner()
        task = await b.task()
        runner.enqueue(task.id)
        await runner.run_until_idle()
        resender = Resender(b.store, b.client(), notifier)
        assert (await resender.press(task.id, task.user_id, "q1")).outcome is Resent.STALE
        assert len(notifier.delivered) == 1


class NoteThenStop(RecordingNotifier):
    """The note goes out, then the process stops before DONE is stored."""

    async def unconfirmed(self, task: Task, error: FriendlyError, lang: str) -> None:
        await super().unconfirmed(task, error, lang)
        self.held.set()
        await self.release.wait()


async def test_a_stop_after_the_note_repeats_the_note_and_never_loses_the_button(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with bench(tmp_path) as b:
        first, notifier = b.runner(NoteThenStop(), owner="worker-a")
        notifier.deliver_errors = [DeliveryUncertain("send_photo timed out")]
        task = await b.task()
        first.enqueue(task.id)
        await asyncio.wait_for(notifier.held.wait(), 5)
        await first.stop()
        assert (await b.state(task.id)).state is TaskState.DELIVERING  # not spent without its note

        second, again = b.runner(owner="worker-b")
        await second.resume()
        await second.run_until_idle()
        done = await b.state(task.id)
        assert (done.state, done.reservation) == (TaskState.DONE, "committed")
        assert len(notifier.unconfirmed_notes) == len(again.unconfirmed_notes) == 1
        assert notifier.delivered == again.delivered == []
        assert await b.free_left() == 2 and await b.ledger_ok()
