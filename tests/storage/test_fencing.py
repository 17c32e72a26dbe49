"""Fenced task writes: a worker's move or mark happens only while it holds an unexpired lease, checked in
the same statement; and a unit is spent, not refunded, when a task ends by the user's doing after the
service accepted it (reliability items 1 and 3)."""

from __future__ import annotations

import pytest

from storage import Delivery, IllegalTransition, LeaseLost, Store
from storage import TaskState as S

from .conftest import FakeClock, add_user, new_task
from .helpers import drive

LEASE = 90.0


async def test_a_worker_whose_lease_was_taken_over_cannot_move_the_task(
    store: Store, clock: FakeClock
) -> None:
    await add_user(store)
    task, _ = await store.tasks.create(new_task())
    assert await store.tasks.claim(task.id, "worker-a", LEASE)
    clock.advance(LEASE + 1)  # worker A froze past its lease
    assert await store.tasks.claim(task.id, "worker-b", LEASE)
    await store.tasks.transition(task.id, S.SUBMITTING, expect=S.QUEUED, owner="worker-b")
    with pytest.raises(IllegalTransition):  # A wakes up: nothing it writes lands
        await store.tasks.transition(task.id, S.SUBMITTING, expect=S.QUEUED, owner="worker-a")
    with pytest.raises(LeaseLost):
        await store.tasks.transition(task.id, S.FAILED, expect=S.SUBMITTING, owner="worker-a")
    with pytest.raises(LeaseLost):
        await store.tasks.update(task.id, delivery=Delivery.SENDING, owner="worker-a")
    assert (await store.tasks.get(task.id)).lease_owner == "worker-b"  # type: ignore[union-attr]


async def test_an_expired_lease_fences_even_before_anyone_takes_over(store: Store, clock: FakeClock) -> None:
    await add_user(store)
    task, _ = await store.tasks.create(new_task())
    assert await store.tasks.claim(task.id, "worker-a", LEASE)
    clock.advance(LEASE)
    with pytest.raises(LeaseLost):
        await store.tasks.transition(task.id, S.SUBMITTING, expect=S.QUEUED, owner="worker-a")
    assert (await store.tasks.get(task.id)).state is S.QUEUED  # type: ignore[union-attr]
    assert await store.tasks.claim(task.id, "worker-a", LEASE)  # renewed: it may go on
    moved = await store.tasks.transition(task.id, S.SUBMITTING, expect=S.QUEUED, owner="worker-a")
    assert moved.state is S.SUBMITTING


async def test_people_move_tasks_without_a_lease(store: Store) -> None:
    """/cancel and an admin's ban must work whoever holds the lease; the holder's next write then fails."""
    await add_user(store)
    task, _ = await store.tasks.create(new_task())
    assert await store.tasks.claim(task.id, "worker-a", LEASE)
    cancelled = await store.tasks.transition(task.id, S.CANCELLED, error_code="cancelled:ban")
    assert cancelled.state is S.CANCELLED
    with pytest.raises(LeaseLost):
        await store.tasks.update(task.id, last_status="generating", owner="worker-a")


@pytest.mark.parametrize("end", [S.CANCELLED, S.FAILED])
async def test_a_task_ended_by_the_user_after_the_submit_spends_its_unit(store: Store, end: S) -> None:
    await add_user(store)
    before = (await store.quotas.balance(1)).free_left
    task, _ = await store.tasks.create(new_task())
    task = await drive(store, task, S.POLLING)
    ended = await store.tasks.transition(task.id, end, error_code="cancelled:user", spend=True)
    assert ended.reservation == "committed"
    assert (await store.quotas.balance(1)).free_left == before - 1
    assert (await store.quotas.check()).ok


async def test_spend_before_the_submit_still_refunds(store: Store) -> None:
    """Nothing was billed before the service accepted the task: the user always gets that unit back."""
    await add_user(store)
    before = (await store.quotas.balance(1)).free_left
    task, _ = await store.tasks.create(new_task())
    ended = await store.tasks.transition(task.id, S.CANCELLED, error_code="cancelled:user", spend=True)
    assert ended.reservation == "refunded"
    assert (await store.quotas.balance(1)).free_left == before
    assert (await store.quotas.check()).ok
