"""processed_updates (each Telegram update taken once, across processes) and the dashboard's gauges."""

from __future__ import annotations

import asyncio
from pathlib import Path

from storage import Store, TaskState
from tests.storage.conftest import ZONE, FakeClock, add_user, new_task
from tests.storage.helpers import drive


async def test_an_update_is_first_seen_once(store: Store) -> None:
    assert await store.updates.first_seen(100_000_001) is True
    assert await store.updates.first_seen(100_000_001) is False
    assert await store.updates.first_seen(100_000_002) is True
    assert await store.updates.count() == 2


async def test_two_processes_racing_for_one_update_take_it_once(migrated_path: Path) -> None:
    """Two stores on one file stand for two processes that got the same webhook delivery."""
    first = await Store.open(migrated_path, quota_timezone=ZONE)
    second = await Store.open(migrated_path, quota_timezone=ZONE)
    try:
        results = await asyncio.gather(
            *(store.updates.first_seen(update_id) for update_id in range(1, 21) for store in (first, second))
        )
    finally:
        await first.close()
        await second.close()
    assert sum(results) == 20  # each of the 20 ids taken by exactly one of the two


async def test_prune_forgets_only_old_updates(store: Store, clock: FakeClock) -> None:
    await store.updates.first_seen(1)
    clock.advance(23 * 3600)
    await store.updates.first_seen(2)
    clock.advance(2 * 3600)  # update 1 is now 25 h old, update 2 only 2 h
    assert await store.updates.prune() == 1
    assert await store.updates.first_seen(2) is False
    assert await store.updates.count() == 1


async def test_gauges_count_unfinished_tasks_and_the_queue_head(store: Store, clock: FakeClock) -> None:
    await store.gauges.ping()
    empty = await store.gauges.tasks()
    assert empty.queued == 0 and empty.oldest_queued_age == 0.0
    assert set(empty.by_state) == {"queued", "submitting", "submitted", "polling", "delivering"}
    for user_id in (1, 2, 3):
        await add_user(store, user_id)
    first, _ = await store.tasks.create(new_task(1, "a"))
    clock.advance(40)
    await store.tasks.create(new_task(2, "b"))
    polling, _ = await store.tasks.create(new_task(3, "c"))
    await drive(store, polling, TaskState.POLLING)
    clock.advance(5)
    gauges = await store.gauges.tasks()
    assert gauges.by_state["queued"] == 2 and gauges.by_state["polling"] == 1
    assert gauges.queued == 2 and gauges.oldest_queued_age == 45.0
    await drive(store, first, TaskState.FAILED)
    assert (await store.gauges.tasks()).oldest_queued_age == 5.0
