"""Upgrading a live database to typed recovery state (migration 0003): tasks left in every state by the
previous release, with its free-text marks in `last_status`, resume exactly as that release would have.

The old database is made for real: tasks are driven to each state through the store (with genuine upstream
ids from the emulator), copied column by column into a file migrated only to version 2, given the marks the
old runner wrote, and then opened by the current code, which migrates it and resumes.
"""

from __future__ import annotations

from pathlib import Path

import aiosqlite

from api_client.models import SubmitRequest
from storage import Delivery, RetryReason, Store, Task, TaskState
from storage.migrate import migrate
from tests.bot.runner_support import FILES, Bench, bench

OLD_VERSION = 2


async def _old_copy(source: Path, target: Path) -> None:
    """`target` at schema 2 holding every row of `source` (the columns schema 2 has)."""
    async with aiosqlite.connect(target, isolation_level=None) as conn:
        await migrate(conn, now=1.0, target=OLD_VERSION)
        await conn.execute("ATTACH DATABASE ? AS src", (str(source),))
        tables = [r[0] for r in await conn.execute_fetchall(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
            "AND name != 'schema_version'"
        )]  # fmt: skip
        await conn.execute("BEGIN")
        for table in tables:
            columns = [r[1] for r in await conn.execute_fetchall(f"PRAGMA main.table_info({table})")]
            names = ", ".join(columns)
            await conn.execute(f"INSERT INTO main.{table} ({names}) SELECT {names} FROM src.{table}")
        await conn.execute("COMMIT")
        await conn.execute("DETACH DATABASE src")


async def _at(b: Bench, state: TaskState, user_id: int) -> Task:
    """A task of `user_id` moved to `state` through the store, submitted to the emulator for real."""
    task = await b.task(user_id=user_id)
    if state is TaskState.QUEUED:
        return task
    await b.store.tasks.transition(task.id, TaskState.SUBMITTING)
    if state is TaskState.SUBMITTING:
        return task
    client = b.client()

    upstream = await client.submit(SubmitRequest.from_images(FILES["face"]))
    await b.store.tasks.transition(task.id, TaskState.SUBMITTED, upstream_task_id=upstream)
    await b.store.tasks.update(task.id, next_poll_at=b.clock.now())  # the old "poll window opened"
    for step in (TaskState.POLLING, TaskState.DELIVERING):
        if state is TaskState.SUBMITTED:
            break
        await b.store.tasks.transition(task.id, step)
        if step is state:
            break
    return task


async def test_tasks_in_every_state_resume_correctly_after_the_upgrade(tmp_path: Path) -> None:
    async with bench(tmp_path) as b:
        plan = {
            "queued": (TaskState.QUEUED, None),
            "rate_limited": (TaskState.SUBMITTING, "rate_limited"),
            "resubmitting": (TaskState.SUBMITTING, "resubmitting"),
            "submitting": (TaskState.SUBMITTING, None),
            "submitted": (TaskState.SUBMITTED, None),
            "polling": (TaskState.POLLING, "generating"),
            "sending": (TaskState.DELIVERING, "sending"),
            "sent": (TaskState.DELIVERING, "sent:photo-xyz"),
            "deferred": (TaskState.DELIVERING, "send_deferred"),
        }
        tasks: dict[str, Task] = {}
        for user_id, (name, (state, _)) in enumerate(plan.items(), start=1):
            tasks[name] = await _at(b, state, user_id)
        b.clock.advance(10)  # the emulator finishes what was submitted
        await b.store.close()

        old = tmp_path / "old.db"
        await _old_copy(tmp_path / "bot.db", old)
        async with aiosqlite.connect(old, isolation_level=None) as conn:
            for name, (_, mark) in plan.items():
                if mark is not None:
                    await conn.execute(
                        "UPDATE tasks SET last_status = ? WHERE id = ?", (mark, tasks[name].id)
                    )

        b.store = await Store.open(old, clock=b.clock, daily_free_quota=3, synchronous="NORMAL")
        upgraded = {name: await b.state(task.id) for name, task in tasks.items()}
        assert upgraded["rate_limited"].retry_reason is RetryReason.RATE_LIMITED
        assert upgraded["resubmitting"].retry_reason is None
        assert upgraded["sending"].delivery is Delivery.SENDING
        assert (upgraded["sent"].delivery, upgraded["sent"].sent_file_id) == (Delivery.SENT, "photo-xyz")
        assert upgraded["deferred"].delivery is Delivery.DEFERRED
        assert upgraded["submitted"].poll_started_at == upgraded["submitted"].next_poll_at is not None
        assert upgraded["polling"].last_status == "generating"  # display text stays
        assert all(
            t.last_status in (None, "generating") for t in upgraded.values()
        ), "recovery marks leave last_status"

        submits_before = b.app_state.submits_received
        runner, notifier = b.runner()
        await runner.resume()
        await runner.run_until_idle()

        final = {name: await b.state(task.id) for name, task in tasks.items()}
        outcome = {name: (t.state, t.error_code) for name, t in final.items()}
        assert outcome == {
            "queued": (TaskState.DONE, None),
            "rate_limited": (TaskState.DONE, None),
            "resubmitting": (TaskState.FAILED, "submit_unknown"),
            "submitting": (TaskState.FAILED, "submit_unknown"),
            "submitted": (TaskState.DONE, None),
            "polling": (TaskState.DONE, None),
            "sending": (TaskState.DONE, "delivery_uncertain"),  # spent, "Send it again" offered
            "sent": (TaskState.DONE, None),
            "deferred": (TaskState.DONE, None),
        }
        assert final["sent"].result_file_id == "photo-xyz"
        # Only the queued and the safely rate-limited task were submitted again; nothing was sent twice.
        assert b.app_state.submits_received - submits_before == 2
        delivered = sorted(task_id for task_id, _ in notifier.delivered)
        expected = sorted(tasks[n].id for n in ("queued", "rate_limited", "submitted", "polling", "deferred"))
        assert delivered == expected
        assert [task_id for task_id, _, _ in notifier.unconfirmed_notes] == [tasks["sending"].id]
        # Units: the failures were refunded, the rest spent; the ledger agrees with the balances.
        for name, task in tasks.items():
            spent = final[name].state is TaskState.DONE
            assert await b.free_left(task.user_id) == (2 if spent else 3), name
        assert await b.ledger_ok()
