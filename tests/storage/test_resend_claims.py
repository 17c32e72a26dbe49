"""The claims behind "Send it again", on both backends: one conditional update per press, so one send
however many presses or processes race; a claim runs out; the recorded photo ends the offer; nothing
touches the ledger."""

from __future__ import annotations

import asyncio

from storage import RESULT_KEPT_SECONDS, UNCONFIRMED, Delivery, Resend, Store, Task
from storage import TaskState as S

from .conftest import FakeClock, add_user, new_task

HOLD = 120.0


async def unconfirmed_task(store: Store) -> Task:
    """Done with its unit spent, its photo never confirmed (bot.jobs.outcomes)."""
    await add_user(store)
    task, _ = await store.tasks.create(new_task())
    await store.tasks.transition(task.id, S.SUBMITTING)
    await store.tasks.transition(task.id, S.SUBMITTED, upstream_task_id="up-1", poll_started_at=None)
    await store.tasks.transition(task.id, S.DELIVERING, delivery=Delivery.SENDING)
    return await store.tasks.transition(task.id, S.DONE, error_code=UNCONFIRMED)


async def test_racing_presses_claim_once_and_the_recorded_photo_ends_the_offer(store: Store) -> None:
    task = await unconfirmed_task(store)
    results = await asyncio.gather(*(store.tasks.claim_resend(task.id, f"press-{i}", HOLD) for i in range(5)))
    assert sorted(found for found, _ in results) == [Resend.BUSY] * 4 + [Resend.CLAIMED]
    assert await store.tasks.record_resend(task.id, "photo-2")
    recorded = await store.tasks.get(task.id)
    assert recorded is not None
    assert (recorded.result_file_id, recorded.delivery) == ("photo-2", Delivery.SENT)
    assert recorded.lease_owner is None
    assert (await store.tasks.claim_resend(task.id, "press-9", HOLD))[0] is Resend.SENT
    assert not await store.tasks.record_resend(task.id, "photo-3")  # a late second photo changes nothing
    check = await store.quotas.check()
    assert check.ok, check.problems


async def test_a_claim_runs_out_and_a_released_one_is_free_at_once(store: Store, clock: FakeClock) -> None:
    task = await unconfirmed_task(store)
    assert (await store.tasks.claim_resend(task.id, "press-1", HOLD))[0] is Resend.CLAIMED
    clock.advance(HOLD)
    assert (await store.tasks.claim_resend(task.id, "press-2", HOLD))[0] is Resend.CLAIMED
    await store.tasks.release(task.id, "press-2")
    assert (await store.tasks.claim_resend(task.id, "press-3", HOLD))[0] is Resend.CLAIMED


async def test_too_late_after_twelve_hours_and_nothing_offered_for_other_tasks(
    store: Store, clock: FakeClock
) -> None:
    task = await unconfirmed_task(store)
    delivered, _ = await store.tasks.create(new_task(key="k2"))
    assert (await store.tasks.claim_resend(delivered.id, "press-1", HOLD))[0] is Resend.NOT_OFFERED
    assert (await store.tasks.claim_resend(999, "press-2", HOLD))[0] is Resend.NOT_OFFERED
    clock.advance(RESULT_KEPT_SECONDS)
    assert (await store.tasks.claim_resend(task.id, "press-3", HOLD))[0] is Resend.TOO_LATE
