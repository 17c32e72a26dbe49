"""Many coroutines (and two connections, as two processes would) against one balance never overspend."""

from __future__ import annotations

import asyncio
from pathlib import Path

from storage import QuotaExhausted, Store, Task, TaskState

from .conftest import FakeClock, add_user, new_task
from .helpers import drive


async def _try_create(store: Store, key: str) -> Task | None:
    try:
        task, created = await store.tasks.create(new_task(key=key, max_active_per_user=10_000))
    except QuotaExhausted:
        return None
    assert created
    return task


async def test_hundreds_of_concurrent_reservations_never_overspend(store: Store) -> None:
    await add_user(store)
    await store.quotas.grant(1, 50, actor=9, reason="bought 50")
    results = await asyncio.gather(*(_try_create(store, f"k{i}") for i in range(300)))
    created = [t for t in results if t is not None]
    assert len(created) == 2 + 50  # daily allowance 2 plus 50 credits, not one more
    assert sorted(t.quota_unit for t in created).count("free") == 2
    balance = await store.quotas.balance(1)
    assert (balance.free_left, balance.credits) == (0, 0)
    assert (await store.quotas.check()).ok


async def test_reservations_racing_with_refunds_stay_consistent(store: Store) -> None:
    await add_user(store)
    await store.quotas.grant(1, 20, actor=9, reason="")

    async def create_then_settle(i: int) -> str:
        task = await _try_create(store, f"k{i}")
        if task is None:
            return "refused"
        await drive(store, task, TaskState.FAILED if i % 2 else TaskState.DONE)
        return "ok"

    outcomes = await asyncio.gather(*(create_then_settle(i) for i in range(200)))
    done = len([t for t in await store.tasks.recent_for_user(1, limit=1000) if t.state == TaskState.DONE])
    balance = await store.quotas.balance(1)
    # Every unit is either spent by a done task or still available: nothing lost, nothing created.
    assert done + balance.credits + balance.free_left == 22
    assert outcomes.count("ok") >= 22
    assert (await store.quotas.check()).ok


async def test_racing_terminal_moves_have_exactly_one_quota_effect(store: Store) -> None:
    await add_user(store)
    task = await drive(store, (await store.tasks.create(new_task()))[0], TaskState.DELIVERING)

    async def move(to: TaskState) -> str:
        try:
            return (await store.tasks.transition(task.id, to)).state.value
        except Exception as exc:  # IllegalTransition for the losers
            return type(exc).__name__

    outcomes = await asyncio.gather(
        *(move(TaskState.DONE if i % 2 else TaskState.FAILED) for i in range(100))
    )
    final = await store.tasks.get(task.id)
    assert final is not None
    losers = {"IllegalTransition"}
    assert set(outcomes) <= {final.state.value} | losers
    kinds = [e.kind for e in await store.quotas.ledger(1)]
    assert sorted(kinds) == sorted(["reserve", "commit" if final.state == TaskState.DONE else "refund"])
    assert (await store.quotas.check()).ok


async def test_two_connections_on_one_file_never_overspend(migrated_path: Path, clock: FakeClock) -> None:
    a = await Store.open(migrated_path, clock=clock, daily_free_quota=1, synchronous="NORMAL")
    b = await Store.open(migrated_path, clock=clock, daily_free_quota=1, synchronous="NORMAL")
    try:
        await add_user(a)
        await a.quotas.grant(1, 30, actor=9, reason="")
        results = await asyncio.gather(*(_try_create(a if i % 2 else b, f"k{i}") for i in range(120)))
        assert len([r for r in results if r is not None]) == 31
        assert (await b.quotas.balance(1)).credits == 0
        assert (await a.quotas.check()).ok
    finally:
        await a.close()
        await b.close()
