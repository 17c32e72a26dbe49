"""JobRunner under trouble that should not cost the user their portrait: upstream outages while polling,
a store that is briefly locked after the photo went out, Telegram asking us to slow down, slot waits, and
tasks ended elsewhere (the admin CLI)."""

from __future__ import annotations

from pathlib import Path

from api_client.emulator import Fault
from storage import TaskState

from .runner_support import bench

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
