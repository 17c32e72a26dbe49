"""JobRunner end to end against the emulator: what the user is told, what is charged, what upstream sees."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest

from api_client.emulator import Fault
from bot.jobs.notifier import DeliveryUncertain, RecipientGone
from bot.jobs.runner import BUSY_BACKOFF_SECONDS, LEASE_SECONDS, MAX_BUSY_RETRIES, CancelOutcome
from storage import UNCONFIRMED, Delivery, RetryReason, Task, TaskState

from .runner_support import SK, HangAfterSubmit, RecordingNotifier, bench

SUBMIT = "CVSync2AsyncSubmitTask"
RESULT = "CVSync2AsyncGetResult"


async def test_happy_path_delivers_once_and_commits_once(tmp_path: Path) -> None:
    async with bench(tmp_path) as b:
        runner, notifier = b.runner()
        task = await b.task(prompt="smiling")
        assert await b.free_left() == 2  # reserved at creation
        runner.enqueue(task.id)
        await runner.run_until_idle()

        done = await b.state(task.id)
        assert done.state is TaskState.DONE and done.result_file_id == f"photo-{task.id}"
        assert [tid for tid, _ in notifier.delivered] == [task.id]
        assert notifier.delivered[0][1][:2] == b"\xff\xd8"  # the emulator's JPEG reached the user
        assert notifier.failures == [] and notifier.alerts == []
        stages = notifier.stages(task.id)
        assert stages[:3] == ["preparing", "submitting", "in_queue"]
        assert "generating" in stages and stages[-1] == "sending"
        assert b.app_state.submits_received == 1
        assert await b.free_left() == 2  # committed, not refunded
        ledger = await b.store.quotas.ledger(1)
        assert sorted(e.kind for e in ledger) == ["commit", "reserve"]
        assert await b.ledger_ok()
        await runner.run_until_idle()  # nothing left to do: no second delivery
        assert len(notifier.delivered) == 1


@pytest.mark.parametrize(
    ("choices", "face", "code", "key", "submits"),
    [
        ({"prompt": "something risky"}, "face", "50412", "error.risk.input_text", 1),
        ({"prompt": "blocklisted name"}, "face", "50413", "error.risk.blocklist", 1),
        ({}, "magenta", "50411", "error.risk.input_image", 1),
        ({"seed": 50511}, "face", "50511", "error.risk.output", 1),
        ({"seed": 50512}, "face", "50512", "error.risk.output", 1),
        ({"seed": 50519}, "face", "50519", "error.risk.copyright_output", 1),
        ({"seed": 60102}, "face", "60102", "error.no_face", 1),
        ({"seed": 50500}, "face", "50500", "error.service", 1),
        ({}, "tiny", "image:selfie:too_small", "error.image.stored_selfie", 0),
        ({}, "junk", "image:selfie:not_image", "error.image.stored_selfie", 0),
    ],
)
async def test_each_failure_reaches_the_user_as_its_message_and_is_refunded(
    tmp_path: Path, choices: dict[str, Any], face: str, code: str, key: str, submits: int
) -> None:
    async with bench(tmp_path) as b:
        runner, notifier = b.runner()
        task = await b.task(face=face, language="zh", **choices)
        runner.enqueue(task.id)
        await runner.run_until_idle()

        failed = await b.state(task.id)
        assert (failed.state, failed.error_code) == (TaskState.FAILED, code)
        assert notifier.keys() == [key]
        assert notifier.failures[0][2] == "zh"
        assert notifier.delivered == []
        assert b.app_state.submits_received == submits
        assert await b.free_left() == 3
        assert await b.ledger_ok()


async def test_output_rejection_invites_another_try(tmp_path: Path) -> None:
    async with bench(tmp_path) as b:
        runner, notifier = b.runner()
        task = await b.task(seed=50511)
        runner.enqueue(task.id)
        await runner.run_until_idle()
        assert notifier.failures[0][1].retryable_by_user is True


async def test_bad_credentials_apologise_and_alert_admins(tmp_path: Path) -> None:
    async with bench(tmp_path) as b:
        runner, notifier = b.runner(client=b.client(secret=SK + "-wrong"))
        task = await b.task()
        runner.enqueue(task.id)
        await runner.run_until_idle()
        assert (await b.state(task.id)).error_code == "100010"
        assert notifier.keys() == ["error.config"]
        assert len(notifier.alerts) == 1 and f"task {task.id}" in notifier.alerts[0]
        assert SK not in notifier.alerts[0]
        assert await b.free_left() == 3


async def test_dropped_submit_is_never_resent(tmp_path: Path) -> None:
    async with bench(tmp_path) as b:
        b.app_state.faults.push(Fault.DROP_AFTER, SUBMIT)
        runner, notifier = b.runner()
        task = await b.task()
        runner.enqueue(task.id)
        await runner.run_until_idle()
        assert (await b.state(task.id)).error_code == "submit_unknown"
        assert notifier.keys() == ["error.submit_unknown"]
        assert b.app_state.submits_received == 1
        assert await b.free_left() == 3 and await b.ledger_ok()


async def test_crash_while_submitting_is_refunded_and_not_resubmitted(tmp_path: Path) -> None:
    async with bench(tmp_path) as b:
        hang = HangAfterSubmit(b.transport)
        first, first_notifier = b.runner(client=b.client(transport=hang), owner="worker-a")
        task = await b.task()
        first.enqueue(task.id)
        await asyncio.wait_for(hang.forwarded.wait(), 5)
        await first.stop()  # the process dies with the submit in flight
        assert (await b.state(task.id)).state is TaskState.SUBMITTING

        second, notifier = b.runner(owner="worker-b")
        assert await second.resume() == 1
        await second.run_until_idle()
        failed = await b.state(task.id)
        assert (failed.state, failed.error_code) == (TaskState.FAILED, "submit_unknown")
        assert notifier.keys() == ["error.submit_unknown"]
        assert b.app_state.submits_received == 1  # told, refunded, never sent twice
        assert first_notifier.delivered == notifier.delivered == []
        assert await b.free_left() == 3 and await b.ledger_ok()


async def test_stop_mid_poll_then_a_new_runner_delivers_exactly_once(tmp_path: Path) -> None:
    async with bench(tmp_path) as b:
        first, first_notifier = b.runner(owner="worker-a")
        first_notifier.hold_at = "in_queue"
        task = await b.task()
        first.enqueue(task.id)
        await asyncio.wait_for(first_notifier.held.wait(), 5)
        await first.stop()
        stopped = await b.state(task.id)
        assert stopped.state is TaskState.SUBMITTED and stopped.lease_owner is None  # polled, not re-stored

        second, notifier = b.runner(owner="worker-b")
        await second.start()
        await second.run_until_idle()
        await second.stop()
        assert (await b.state(task.id)).state is TaskState.DONE
        assert first_notifier.delivered == [] and [t for t, _ in notifier.delivered] == [task.id]
        assert b.app_state.submits_received == 1
        assert await b.free_left() == 2 and await b.ledger_ok()


async def test_stop_while_delivering_refetches_the_result_on_resume(tmp_path: Path) -> None:
    async with bench(tmp_path) as b:
        first, first_notifier = b.runner(owner="worker-a")
        first_notifier.hold_at = "sending"
        task = await b.task()
        first.enqueue(task.id)
        await asyncio.wait_for(first_notifier.held.wait(), 5)
        await first.stop()
        # Stopped before the photo request: still `submitted` (the move to delivering comes with the
        # `sending` mark), so the next run polls the finished task again and sends it.
        stopped = await b.state(task.id)
        assert stopped.state is TaskState.SUBMITTED and stopped.delivery is Delivery.NONE

        second, notifier = b.runner(owner="worker-b")
        await second.resume()
        await second.run_until_idle()
        assert (await b.state(task.id)).state is TaskState.DONE
        assert len(notifier.delivered) == 1 and b.app_state.submits_received == 1


async def test_a_send_interrupted_by_a_crash_is_not_sent_again(tmp_path: Path) -> None:
    async with bench(tmp_path) as b:
        runner, notifier = b.runner()
        task = await b.task()
        await b.store.tasks.transition(task.id, TaskState.SUBMITTING)
        await b.store.tasks.transition(task.id, TaskState.SUBMITTED, upstream_task_id="123")
        await b.store.tasks.transition(task.id, TaskState.POLLING)
        await b.store.tasks.transition(task.id, TaskState.DELIVERING)
        await b.store.tasks.update(task.id, delivery=Delivery.SENDING)  # died inside send_photo
        await runner.resume()
        await runner.run_until_idle()
        done = await b.state(task.id)
        assert (done.state, done.error_code, done.reservation) == (TaskState.DONE, UNCONFIRMED, "committed")
        assert notifier.delivered == [] and notifier.failures == []
        assert [e.key for _, e, _ in notifier.unconfirmed_notes] == ["error.delivery_uncertain"]
        assert await b.free_left() == 2 and await b.ledger_ok()


async def test_delivery_timeout_is_spent_with_a_send_again_note_not_resent(tmp_path: Path) -> None:
    async with bench(tmp_path) as b:
        runner, notifier = b.runner()
        notifier.deliver_error = DeliveryUncertain("send_photo timed out")
        task = await b.task()
        runner.enqueue(task.id)
        await runner.run_until_idle()
        assert (await b.state(task.id)).error_code == UNCONFIRMED
        assert [e.key for _, e, _ in notifier.unconfirmed_notes] == ["error.delivery_uncertain"]
        assert notifier.delivered == [] and await b.free_left() == 2 and await b.ledger_ok()


async def test_a_users_cancel_after_the_submit_is_refused_and_the_portrait_still_arrives(
    tmp_path: Path,
) -> None:
    """Regression: /cancel after the submit refunded a generation the service bills, so /anime + /cancel in
    a loop got unlimited billed work for free. Once accepted, the unit is spent and the result is kept."""
    async with bench(tmp_path) as b:
        runner, notifier = b.runner()
        notifier.hold_at = "in_queue"
        task = await b.task()
        runner.enqueue(task.id)
        await asyncio.wait_for(notifier.held.wait(), 5)
        assert await runner.cancel(task.id) is CancelOutcome.STARTED
        notifier.release.set()
        await runner.run_until_idle()
        done = await b.state(task.id)
        assert done.state is TaskState.DONE and [tid for tid, _ in notifier.delivered] == [task.id]
        assert notifier.failures == []
        assert await b.free_left() == 2 and await b.ledger_ok()
        assert await runner.cancel(task.id) is CancelOutcome.TOO_LATE  # already over


async def test_a_ban_mid_generation_stops_it_and_the_unit_stays_spent(tmp_path: Path) -> None:
    async with bench(tmp_path) as b:
        runner, notifier = b.runner()
        notifier.hold_at = "in_queue"
        task = await b.task()
        runner.enqueue(task.id)
        await asyncio.wait_for(notifier.held.wait(), 5)
        assert await runner.cancel(task.id, reason="ban") is CancelOutcome.CANCELLED
        cancelled = await b.state(task.id)
        assert (cancelled.state, cancelled.error_code) == (TaskState.CANCELLED, "cancelled:ban")
        assert cancelled.reservation == "committed"
        assert notifier.keys() == ["banned"] and notifier.delivered == []
        assert runner.running == frozenset()
        await runner.run_until_idle()
        assert notifier.delivered == []
        assert await b.free_left() == 2 and await b.ledger_ok()


async def test_a_cancel_before_the_submit_refunds_and_tells_the_user(tmp_path: Path) -> None:
    """Held while its request is built (the selfie's download), so surely before the submit. Held at the
    "preparing" status, as it once was, the cancel raced the submit: that edit is no longer waited for."""
    async with bench(tmp_path) as b:
        runner, notifier = b.runner()
        notifier.hold_download = True
        task = await b.task()
        runner.enqueue(task.id)
        await asyncio.wait_for(notifier.held.wait(), 5)
        assert await runner.cancel(task.id) is CancelOutcome.CANCELLED
        cancelled = await b.state(task.id)
        assert (cancelled.state, cancelled.error_code) == (TaskState.CANCELLED, "cancelled:user")
        assert notifier.keys() == ["job.cancelled"] and b.app_state.submits_received == 0
        assert await b.free_left() == 3 and await b.ledger_ok()


async def test_a_status_edit_waiting_for_telegram_does_not_hold_the_submit_back(tmp_path: Path) -> None:
    """Regression (bench_burst): the "preparing" edit was awaited while the task held an upstream place, so
    with Telegram's 30 messages a second taken by other messages the place sat idle until it went out."""
    async with bench(tmp_path) as b:
        runner, notifier = b.runner()
        notifier.hold_at = "preparing"  # the edit waits behind the flood control
        task = await b.task()
        runner.enqueue(task.id)
        await asyncio.wait_for(notifier.held.wait(), 5)
        async with asyncio.timeout(5):  # the submit goes out while the edit still waits
            while b.app_state.submits_received == 0:  # noqa: ASYNC110 - the emulator's count has no event
                await asyncio.sleep(0.01)
        notifier.release.set()
        await runner.run_until_idle()
        assert (await b.state(task.id)).state is TaskState.DONE
        assert [tid for tid, _ in notifier.delivered] == [task.id]
        assert notifier.stages(task.id)[0] == "preparing"  # still shown, only not waited for
        assert await b.free_left() == 2 and await b.ledger_ok()


class RefusesLate(RecordingNotifier):
    """The "preparing" edit is answered 403 only after the submit went out (it waited for Telegram)."""

    async def status(self, task: Task, stage: str, elapsed: float, *, lang: str, final: bool = False) -> None:
        if stage == "preparing":
            self.held.set()
            await self.release.wait()
            raise RecipientGone(task.chat_id)
        await super().status(task, stage, elapsed, lang=lang, final=final)


async def test_a_refusal_of_the_edit_after_the_submit_ends_the_task_spent(tmp_path: Path) -> None:
    async with bench(tmp_path) as b:
        runner, notifier = b.runner(RefusesLate())
        notifier.hold_at = "in_queue"  # the poll waits here until the late refusal has come
        task = await b.task()
        runner.enqueue(task.id)
        await asyncio.wait_for(notifier.held.wait(), 5)
        async with asyncio.timeout(5):
            while b.app_state.submits_received == 0:  # noqa: ASYNC110 - the emulator's count has no event
                await asyncio.sleep(0.01)
        notifier.release.set()
        await runner.run_until_idle()
        ended = await b.state(task.id)
        assert (ended.state, ended.error_code) == (TaskState.FAILED, "blocked")
        assert notifier.delivered == [] and notifier.failures == []
        assert await b.free_left() == 2 and await b.ledger_ok()  # the service had it: spent


async def test_cancel_of_a_queued_task_never_submits(tmp_path: Path) -> None:
    async with bench(tmp_path) as b:
        runner, _ = b.runner()
        task = await b.task()
        assert await runner.cancel(task.id, reason="admin") is CancelOutcome.CANCELLED
        await runner.run_until_idle()
        assert (await b.state(task.id)).error_code == "cancelled:admin"
        assert b.app_state.submits_received == 0


async def test_blocked_user_is_refunded_and_not_messaged(tmp_path: Path) -> None:
    async with bench(tmp_path) as b:
        runner, notifier = b.runner()
        notifier.gone = {1}
        task = await b.task()
        runner.enqueue(task.id)
        await runner.run_until_idle()
        failed = await b.state(task.id)
        assert (failed.state, failed.error_code) == (TaskState.FAILED, "blocked")
        assert notifier.failures == [] and notifier.delivered == []
        assert b.app_state.submits_received == 0
        assert await b.free_left() == 3

        notifier.gone = set()  # the user unblocked the bot and asked again
        b.clock.advance(60)
        again = await b.task()
        runner.enqueue(again.id)
        await runner.run_until_idle()
        assert (await b.state(again.id)).state is TaskState.DONE


async def test_user_blocking_during_delivery_spends_the_unit_the_service_billed(tmp_path: Path) -> None:
    """Regression: blocking the bot while a task ran refunded it, a free billed generation each time."""
    async with bench(tmp_path) as b:
        runner, notifier = b.runner()
        notifier.gone, notifier.gone_on = {1}, {"deliver"}
        task = await b.task()
        runner.enqueue(task.id)
        await runner.run_until_idle()
        assert (await b.state(task.id)).error_code == "blocked"
        assert notifier.failures == []
        assert await b.free_left() == 2 and await b.ledger_ok()


async def test_a_task_stuck_upstream_expires_at_the_deadline(tmp_path: Path) -> None:
    async with bench(tmp_path, stuck_rate=1.0) as b:
        runner, notifier = b.runner()
        task = await b.task()
        runner.enqueue(task.id)
        await runner.run_until_idle()
        expired = await b.state(task.id)
        assert (expired.state, expired.error_code) == (TaskState.EXPIRED, "deadline")
        assert notifier.keys() == ["error.expired"]
        assert b.settings.task_deadline_seconds <= b.clock.now() - task.created_at < 200
        assert await b.free_left() == 3 and await b.ledger_ok()


async def test_rate_limited_submit_is_requeued_with_backoff_then_succeeds(tmp_path: Path) -> None:
    async with bench(tmp_path) as b:
        for _ in range(2):  # the client's own attempt and its one retry
            b.app_state.faults.push(Fault.THROTTLED, SUBMIT)
        runner, notifier = b.runner()
        task = await b.task()
        runner.enqueue(task.id)
        await runner.run_until_idle()
        done = await b.state(task.id)
        assert done.state is TaskState.DONE and done.attempts == 1
        assert "retrying" in notifier.stages(task.id)
        assert b.clock.now() - task.created_at >= BUSY_BACKOFF_SECONDS
        assert b.app_state.submits_received == 3 and len(notifier.delivered) == 1
        assert await b.free_left() == 2 and await b.ledger_ok()


async def test_rate_limited_poll_is_retried_later(tmp_path: Path) -> None:
    async with bench(tmp_path) as b:
        for _ in range(2):
            b.app_state.faults.push(Fault.CONCURRENCY, RESULT)
        runner, notifier = b.runner()
        task = await b.task()
        runner.enqueue(task.id)
        await runner.run_until_idle()
        assert (await b.state(task.id)).state is TaskState.DONE
        assert "retrying" in notifier.stages(task.id) and len(notifier.delivered) == 1


async def test_rate_limits_that_never_end_fail_as_busy_after_bounded_retries(tmp_path: Path) -> None:
    async with bench(tmp_path, fault_rate_429=1.0) as b:
        runner, notifier = b.runner()
        task = await b.task()
        runner.enqueue(task.id)
        await runner.run_until_idle()
        failed = await b.state(task.id)
        assert (failed.state, failed.error_code) == (TaskState.FAILED, "50429")
        assert failed.attempts == MAX_BUSY_RETRIES
        assert notifier.stages(task.id).count("retrying") == MAX_BUSY_RETRIES
        assert notifier.keys() == ["error.busy"]
        assert await b.free_left() == 3 and await b.ledger_ok()


async def test_an_unexpected_exception_apologises_alerts_and_logs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with bench(tmp_path) as b:
        runner, notifier = b.runner()
        notifier.download_error = RuntimeError("disk on fire /secret/path")
        task = await b.task()
        runner.enqueue(task.id)
        with caplog.at_level(logging.ERROR, logger="bot.jobs.runner"):
            await runner.run_until_idle()
        assert (await b.state(task.id)).error_code == "unexpected"
        assert notifier.keys() == ["error.unexpected"]
        assert len(notifier.alerts) == 1 and "RuntimeError" in notifier.alerts[0]
        assert any(r.exc_info and "disk on fire" in str(r.exc_info[1]) for r in caplog.records)
        assert await b.free_left() == 3 and await b.ledger_ok()


async def test_upstream_concurrency_limit_is_respected(tmp_path: Path) -> None:
    async with bench(tmp_path) as b:
        runner, notifier = b.runner()
        tasks = [await b.task(user_id=uid) for uid in range(1, 6)]
        await runner.start()
        for task in tasks:
            runner.enqueue(task.id)
        await runner.run_until_idle()
        await runner.stop()
        assert [(await b.state(t.id)).state for t in tasks] == [TaskState.DONE] * 5
        # The service's own count: from an accepted submit until its result is fetched. (Submit to photo,
        # as the chat sees it, is longer: a place is given back once the result reads done.)
        assert 1 <= b.app_state.max_in_flight <= b.settings.max_concurrent_tasks
        assert sorted(t for t, _ in notifier.delivered) == [t.id for t in tasks]


async def test_style_image_is_downloaded_only_when_the_choice_uses_it(tmp_path: Path) -> None:
    async with bench(tmp_path) as b:
        runner, notifier = b.runner()
        used = await b.task(user_id=1, style="style", identity="face")
        unused = await b.task(user_id=2, style="style", identity="none")
        runner.enqueue(used.id)
        runner.enqueue(unused.id)
        await runner.run_until_idle()
        assert notifier.downloads.count("style") == 1
        assert len(notifier.delivered) == 2


async def test_a_rate_limited_submit_interrupted_by_a_restart_is_safely_resubmitted(tmp_path: Path) -> None:
    async with bench(tmp_path) as b:
        task = await b.task()
        await b.store.tasks.transition(task.id, TaskState.SUBMITTING)
        # What a runner writes after a definite 429 on submit, before it died during the back-off:
        await b.store.tasks.update(
            task.id, retry_reason=RetryReason.RATE_LIMITED, next_poll_at=b.clock.now() + 30, attempts_inc=True
        )
        runner, notifier = b.runner(owner="worker-b")
        await runner.resume()
        await runner.run_until_idle()
        assert (await b.state(task.id)).state is TaskState.DONE
        assert b.app_state.submits_received == 1 and len(notifier.delivered) == 1


async def test_a_task_leased_by_another_worker_is_left_alone_until_the_lease_expires(tmp_path: Path) -> None:
    async with bench(tmp_path) as b:
        task = await b.task()
        assert await b.store.tasks.claim(task.id, "worker-elsewhere", 60.0)
        runner, notifier = b.runner(owner="worker-b")
        await runner.resume()
        await runner.run_until_idle()
        assert (await b.state(task.id)).state is TaskState.QUEUED and notifier.statuses == []

        b.clock.advance(61)  # the other worker died: its lease runs out
        await runner.resume()
        await runner.run_until_idle()
        assert (await b.state(task.id)).state is TaskState.DONE and len(notifier.delivered) == 1


async def test_a_killed_worker_restarted_under_its_id_takes_its_tasks_back_at_once(tmp_path: Path) -> None:
    """Regression: the owner was host-pid and the lease the whole deadline plus 5 minutes, so a bot restarted
    after kill -9 left its users waiting ten minutes for their portraits."""
    async with bench(tmp_path) as b:
        task = await b.task()
        worker = b.settings.worker_id  # the default owner: WORKER_ID, else the host name
        assert await b.store.tasks.claim(task.id, worker, LEASE_SECONDS)  # killed while holding it
        runner, notifier = b.runner(owner=None)
        assert runner.owner == worker
        await runner.resume()
        await runner.run_until_idle()
        assert (await b.state(task.id)).state is TaskState.DONE and len(notifier.delivered) == 1


async def test_running_work_renews_its_lease_so_no_other_worker_takes_it(tmp_path: Path) -> None:
    async with bench(tmp_path) as b:
        runner, notifier = b.runner(owner="worker-a")
        notifier.hold_at = "in_queue"
        task = await b.task()
        runner.enqueue(task.id)
        await asyncio.wait_for(notifier.held.wait(), 5)
        for _ in range(3):  # three lease lengths pass while the generation runs
            b.clock.advance(LEASE_SECONDS * 0.8)
            await runner._renew_leases()
        assert not await b.store.tasks.claim(task.id, "worker-b", LEASE_SECONDS)
        await runner.stop()


async def test_a_user_who_blocks_the_bot_mid_generation_gets_nothing_more(tmp_path: Path) -> None:
    async with bench(tmp_path) as b:
        runner, notifier = b.runner()
        notifier.blocks_at = "generating"
        task = await b.task()
        runner.enqueue(task.id)
        await runner.run_until_idle()
        assert (await b.state(task.id)).error_code == "blocked"
        assert notifier.delivered == [] and notifier.failures == []
        assert notifier.stages(task.id)[-1] == "in_queue"  # nothing was shown after the refusal
        assert await b.free_left() == 2 and await b.ledger_ok()  # the service had it: spent
