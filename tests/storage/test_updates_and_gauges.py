"""processed_updates (the durable inbox: stored, claimed once across processes, replayed) and the
dashboard's gauges."""

from __future__ import annotations

import asyncio
import json

from storage import Received, Store, TaskState
from tests.storage.conftest import ZONE, FakeClock, add_user, new_task
from tests.storage.helpers import drive


async def test_an_update_is_claimed_once(store: Store) -> None:
    assert await store.updates.claim(100_000_001) is True
    assert await store.updates.claim(100_000_001) is False
    assert await store.updates.claim(100_000_002) is True
    assert await store.updates.count() == 2


def _update(update_id: int) -> Received:
    message = {"text": f"/anime {update_id}"}
    return Received(update_id, json.dumps({"update_id": update_id, "message": message}))


async def test_received_updates_wait_for_one_claim_and_a_duplicate_delivery_stores_nothing(
    store: Store,
) -> None:
    assert await store.updates.receive([_update(3), _update(1), _update(2)]) == [1, 2, 3]
    assert await store.updates.receive([_update(2), _update(4)]) == [2, 4]  # 2 still waits: fed again
    assert await store.updates.claim(2) is True
    assert await store.updates.receive([_update(2)]) == []  # claimed: a re-delivery is a duplicate
    assert await store.updates.claim(2) is False
    assert await store.updates.states() == {"received": 3, "started": 1}
    assert await store.updates.claim(4, handled=[2]) is True  # 2's handlers are done: marked on the way
    assert await store.updates.states() == {"received": 2, "started": 1, "handled": 1}


async def test_a_batch_with_an_update_twice_or_over_a_statements_worth_is_received_whole(
    store: Store,
) -> None:
    assert await store.updates.receive([_update(7), _update(7), _update(8)]) == [7, 8]
    assert await store.updates.claim(8) is True
    many = [_update(n) for n in range(1, 251)]  # three statements' worth, in one commit
    waiting = await store.updates.receive(many)
    assert waiting == [n for n in range(1, 251) if n != 8]
    assert await store.updates.states() == {"received": 249, "started": 1}


async def test_unclaimed_lists_old_received_rows_never_started_or_handled_ones(
    store: Store, clock: FakeClock
) -> None:
    """The replay's list: what a dead process received and nobody claimed. A row whose handler started
    (then its process died) is not on it: at most once."""
    await store.updates.receive([_update(1), _update(2), _update(3)])
    assert await store.updates.claim(2)  # started, never handled: its process died mid-handler
    assert await store.updates.claim(3)
    assert await store.updates.handled([3]) == 1
    clock.advance(4)
    await store.updates.receive([_update(4)])
    old = await store.updates.unclaimed(older_than=3)
    assert [(r.update_id, json.loads(r.payload)["message"]["text"]) for r in old] == [(1, "/anime 1")]
    assert [r.update_id for r in await store.updates.unclaimed(older_than=0)] == [1, 4]
    clock.advance(-10)  # a clock behind the receivers': both rows are in its future
    assert await store.updates.unclaimed(older_than=0) == []
    assert [r.update_id for r in await store.updates.unclaimed(older_than=None)] == [1, 4]
    clock.advance(10)
    assert await store.updates.claim(1) is True
    assert [r.update_id for r in await store.updates.unclaimed(older_than=0)] == [4]
    assert await store.updates.states() == {"received": 1, "started": 2, "handled": 1}


async def test_a_claim_clears_the_stored_update(store: Store) -> None:
    """The user's words stay in the inbox only until a handler takes them."""
    await store.updates.receive([_update(7)])
    await store.updates.claim(7)
    async with store._ctx.db.read() as r:
        assert await r.value("SELECT payload FROM processed_updates WHERE update_id = 7") is None


async def test_a_replay_safe_claim_keeps_its_update_and_claimer_until_handled(store: Store) -> None:
    """Only a claim the caller calls replay-safe keeps the payload (and only until the handled mark); every
    claim names its claimer."""
    await store.updates.receive([_update(1), _update(2)])
    assert await store.updates.claim(1, by="w-a", keep=True)
    assert await store.updates.claim(2, by="w-a")
    (cut,) = await store.updates.cut_off(older_than=0)
    assert (cut.update_id, cut.claimed_by, json.loads(cut.payload)["message"]["text"]) == (
        1,
        "w-a",
        "/anime 1",
    )
    assert await store.updates.claim(3, handled=[1], by="w-a", keep=True)  # a fresh row has no payload
    assert await store.updates.cut_off(older_than=0) == []
    async with store._ctx.db.read() as r:
        rows = await r.all("SELECT update_id, claimed_by, payload FROM processed_updates ORDER BY 1")
        assert [tuple(row) for row in rows] == [
            (1, "w-a", None), (2, "w-a", None), (3, "w-a", None)
        ]  # fmt: skip


async def test_cut_off_lists_stale_claims_and_a_dead_claimers_own_and_release_gives_one_back_once(
    store: Store, clock: FakeClock
) -> None:
    """The replay's second list: others' claims once stale, the restarted id's own at any age. A release
    puts the update back as received (replayed like an unclaimed one) only while the claim is the one
    listed: a claimer that took it again meanwhile keeps it."""
    await store.updates.receive([_update(1), _update(2), _update(3)])
    assert await store.updates.claim(1, by="w-a", keep=True)
    assert await store.updates.claim(2, by="w-b", keep=True)
    assert await store.updates.claim(3, by="w-b")  # not replay-safe: never listed
    assert await store.updates.cut_off(older_than=10) == []
    assert [c.update_id for c in await store.updates.cut_off(older_than=10, mine="w-a")] == [1]
    clock.advance(10)
    first, second = await store.updates.cut_off(older_than=10)
    assert (first.claimed_by, second.claimed_by) == ("w-a", "w-b")
    assert await store.updates.release(first) is True
    assert await store.updates.release(first) is False  # released once
    assert [(r.update_id, r.payload) for r in await store.updates.unclaimed(older_than=0)] == [
        (1, first.payload)
    ]
    assert await store.updates.claim(1, by="w-c", keep=True)
    clock.advance(1)
    assert await store.updates.release(first) is False  # w-c's claim, not the one w-a died with
    again = await store.updates.cut_off(older_than=0)
    assert [(c.update_id, c.claimed_by) for c in again] == [(1, "w-c"), (2, "w-b")]
    assert await store.updates.release(again[1]) and await store.updates.claim(2, by="w-a", keep=True)
    assert await store.updates.release(again[1]) is False
    assert await store.updates.states() == {"started": 3}


async def test_two_processes_racing_for_one_update_take_it_once(migrated_db: str) -> None:
    """Two stores on one database stand for two processes holding the same update: a webhook delivered
    twice, or one process's queue and another's replay. Ids 1-10 were received first, 11-20 were not."""
    first = await Store.open(migrated_db, quota_timezone=ZONE)
    second = await Store.open(migrated_db, quota_timezone=ZONE)
    try:
        await asyncio.gather(
            first.updates.receive([_update(n) for n in range(1, 11)]),
            second.updates.receive([_update(n) for n in range(5, 11)]),
        )
        results = await asyncio.gather(
            *(store.updates.claim(update_id) for update_id in range(1, 21) for store in (first, second))
        )
        states = await first.updates.states()
    finally:
        await first.close()
        await second.close()
    assert sum(results) == 20  # each of the 20 ids taken by exactly one of the two
    assert states == {"started": 20}


async def test_prune_forgets_only_old_updates(store: Store, clock: FakeClock) -> None:
    await store.updates.claim(1)
    clock.advance(23 * 3600)
    await store.updates.claim(2)
    clock.advance(2 * 3600)  # update 1 is now 25 h old, update 2 only 2 h
    assert await store.updates.prune() == 1
    assert await store.updates.claim(2) is False
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
