"""The bounded dispatcher: how many tasks run at once, in which order waiting ones start, what waiting
users are told, and how many commits one generation costs. Real runner, store and emulator."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

from bot.jobs.announcer import Place, meaningful, rough_minutes
from storage import Task, TaskState

from .runner_support import Bench, RecordingNotifier, bench

GROUP = -1_000_000_100


def one_slot(b: Bench) -> None:
    b.settings = dataclasses.replace(b.settings, max_concurrent_tasks=1)


def submit_order(notifier: RecordingNotifier) -> list[int]:
    return [task_id for task_id, stage in notifier.statuses if stage == "submitting"]


async def test_only_the_upstream_limit_runs_and_the_rest_wait_without_coroutines(tmp_path: Path) -> None:
    async with bench(tmp_path) as b:  # max_concurrent_tasks=2
        runner, notifier = b.runner()
        tasks = [await b.task(user_id=n) for n in range(1, 31)]
        samples: list[tuple[int, int, int]] = []
        real_status = notifier.status

        async def sampling(task: Task, stage: str, elapsed: float, **kw: object) -> None:
            samples.append((len(runner.running), len(asyncio.all_tasks()), len(runner._upstream)))
            await real_status(task, stage, elapsed, **kw)  # type: ignore[arg-type]

        notifier.status = sampling  # type: ignore[method-assign]
        await runner.run_until_idle()

        assert [(await b.state(t.id)).state for t in tasks] == [TaskState.DONE] * 30
        assert len(notifier.delivered) == 30 and b.app_state.submits_received == 30
        limit = runner.upstream_limit + runner.extra_limit
        assert max(running for running, _, _ in samples) <= limit
        assert max(alive for _, alive, _ in samples) < 30  # never one coroutine per waiting task
        assert max(upstream for _, _, upstream in samples) == runner.upstream_limit  # full, never over
        assert await b.ledger_ok()


async def test_waiting_tasks_start_first_come_first_served_with_groups_taking_turns(tmp_path: Path) -> None:
    """Six group requests arrive first, then three private ones: the private ones are not stuck behind
    the whole group flood, and each lane keeps its own arrival order. The line is read from the table
    (no enqueue), so the order survives a restart."""
    async with bench(tmp_path) as b:
        one_slot(b)
        groups = []
        for n in range(6):
            groups.append(await b.task(user_id=100 + n, chat_id=GROUP))
            b.clock.advance(1)
        private = []
        for n in range(3):
            private.append(await b.task(user_id=200 + n))
            b.clock.advance(1)
        runner, notifier = b.runner()
        await runner.run_until_idle()

        g, p = [t.id for t in groups], [t.id for t in private]
        assert submit_order(notifier) == [g[0], p[0], g[1], p[1], g[2], p[2], g[3], g[4], g[5]]
        assert len(notifier.delivered) == 9


async def test_a_restarted_runner_keeps_the_order_and_the_running_task_goes_first(tmp_path: Path) -> None:
    async with bench(tmp_path) as b:
        one_slot(b)
        first, first_notifier = b.runner(owner="worker-a")
        first_notifier.hold_at = "in_queue"
        tasks = []
        for n in range(4):
            tasks.append(await b.task(user_id=n + 1))
            b.clock.advance(1)
        await first.resume()
        await asyncio.wait_for(first_notifier.held.wait(), 5)
        await first.stop()  # task 1 is submitted upstream, 2..4 wait in the table

        second, notifier = b.runner(owner="worker-a")
        await second.run_until_idle()
        delivered = [task_id for task_id, _ in notifier.delivered]
        assert delivered == [t.id for t in tasks]
        assert b.app_state.submits_received == 4  # the first was polled again, not resubmitted


async def test_waiting_users_see_their_place_and_it_is_updated_sparingly(tmp_path: Path) -> None:
    async with bench(tmp_path) as b:
        one_slot(b)
        runner, notifier = b.runner()
        notifier.hold_at = "in_queue"
        busy = await b.task(user_id=1, status_message_id=10)
        runner.enqueue(busy)
        await asyncio.wait_for(notifier.held.wait(), 5)

        shown: list[Place] = []
        waiting = []
        for n in range(2, 8):
            place = runner.estimate_new(n)
            assert place is not None
            shown.append(place)
            task = await b.task(user_id=n, status_message_id=10 + n)
            runner.enqueue(task, shown=place)
            waiting.append(task)
        assert [p.position for p in shown] == [1, 2, 3, 4, 5, 6]
        assert shown[-1].minutes >= shown[0].minutes >= 1

        # Nothing changed since the handlers' first messages: no edit is worth sending.
        assert await runner.announcer.tick() == 0
        # The first waiting task is cancelled: everyone behind it moves up one place.
        await runner.cancel(waiting[0].id)
        sent = await runner.announcer.tick()
        moved = {task_id: position for task_id, position, _ in notifier.places}
        assert sent == len(moved) == 5
        assert moved == {t.id: n for n, t in enumerate(waiting[1:], start=1)}
        # Within the status interval nothing is edited again, whatever happens.
        await runner.cancel(waiting[1].id)
        assert await runner.announcer.tick() == 0
        b.clock.advance(b.settings.status_edit_interval)
        assert await runner.announcer.tick() == 4
        notifier.release.set()
        await runner.run_until_idle()
        await runner.stop()


async def test_queue_place_edits_keep_within_the_global_budget_front_first(tmp_path: Path) -> None:
    async with bench(tmp_path) as b:
        one_slot(b)
        runner, notifier = b.runner()
        notifier.hold_at = "in_queue"
        runner.enqueue(await b.task(user_id=1, status_message_id=1))
        await asyncio.wait_for(notifier.held.wait(), 5)
        for n in range(2, 40):  # resumed tasks: nobody has been shown a place yet
            runner.enqueue(await b.task(user_id=n, status_message_id=n))
        await asyncio.sleep(0)
        assert await runner.announcer.tick() == 10  # ANNOUNCEMENTS_PER_SECOND x one-second tick
        assert [position for _, position, _ in notifier.places] == list(range(1, 11))
        notifier.release.set()
        await runner.run_until_idle()
        await runner.stop()


def test_meaningful_changes_and_rough_minutes() -> None:
    assert not meaningful(Place(100, 20), Place(95, 20))  # 5 %: not worth an edit
    assert meaningful(Place(100, 20), Place(90, 20))
    assert meaningful(Place(2, 1), Place(1, 1))
    assert meaningful(Place(100, 25), Place(99, 20))  # the wait shown changed
    assert [rough_minutes(s) for s in (1, 61, 599, 601, 3000, 3700)] == [1, 2, 10, 15, 50, 75]


async def test_one_generation_costs_two_durable_commits(tmp_path: Path) -> None:
    """Each durable commit is an fsync on SQLite: submitting (with the lease) and delivering with the
    sending mark. submitted (+ upstream id and poll start), DONE and lease bookkeeping are not fsynced."""
    async with bench(tmp_path) as b:
        runner, notifier = b.runner()
        task = await b.task()
        db = b.store._ctx.db
        commits, durable = db.commits, db.durable_commits
        runner.enqueue(task.id)
        await runner.run_until_idle()
        assert (await b.state(task.id)).state is TaskState.DONE and len(notifier.delivered) == 1
        assert db.durable_commits - durable == 2
        assert db.commits - commits == 4  # + submitted and DONE, unsynced; no claim, renewal or release


async def test_a_busy_group_runs_two_at_a_time_and_private_chats_use_the_other_slots(tmp_path: Path) -> None:
    """A group's results can only leave at the group's pace (20 messages a minute): more of its tasks at
    once would hold slots the private chats behind it need."""
    async with bench(tmp_path) as b:
        b.settings = dataclasses.replace(b.settings, max_concurrent_tasks=4)
        group = [await b.task(user_id=100 + n, chat_id=GROUP) for n in range(6)]
        private = [await b.task(user_id=200 + n) for n in range(4)]
        runner, notifier = b.runner()
        group_ids = {t.id for t in group}
        most = 0
        real_status = notifier.status

        async def sampling(task: Task, stage: str, elapsed: float, **kw: object) -> None:
            nonlocal most
            most = max(most, len(runner.running & group_ids))
            await real_status(task, stage, elapsed, **kw)  # type: ignore[arg-type]

        notifier.status = sampling  # type: ignore[method-assign]
        await runner.run_until_idle()
        assert most == 2
        assert len(notifier.delivered) == 10
        first_four = submit_order(notifier)[:4]
        assert sorted(first_four) == sorted([group[0].id, group[1].id, private[0].id, private[1].id])
