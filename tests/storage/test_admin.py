"""Admin: the audit log and the stats an admin sees."""

from __future__ import annotations

from storage import Store, TaskState

from .conftest import FakeClock, add_user, new_task
from .helpers import drive


async def test_audit_log_newest_first_with_limit(store: Store, clock: FakeClock) -> None:
    await store.admin.audit(1, "broadcast", details="hello")
    clock.advance(1)
    await store.admin.audit(2, "set_default", target="all")
    log = await store.admin.audit_log(limit=1)
    assert [(e.actor, e.action, e.target, e.at) for e in log] == [(2, "set_default", "all", clock.t)]
    assert [e.details for e in await store.admin.audit_log()] == ["", "hello"]


async def test_stats_on_an_empty_store(store: Store) -> None:
    stats = await store.admin.stats()
    assert (stats.users_total, stats.success_rate, stats.latency_p50, stats.top_users) == (0, None, None, ())


async def test_stats(store: Store, clock: FakeClock) -> None:
    # Three users: seen now, 2 days ago, 10 days ago.
    for uid, age_days in ((1, 10), (2, 2), (3, 0)):
        clock.t -= age_days * 86400
        await add_user(store, uid, f"user{uid}")
        clock.t += age_days * 86400
    await store.quotas.grant(3, 20, actor=9, reason="")
    # User 3: 10 done tasks taking 1..10 s; one failed, one cancelled; user 2: one done (3 s), one expired.
    for n in range(10):
        task, _ = await store.tasks.create(new_task(3, f"a{n}"))
        task = await drive(store, task, TaskState.DELIVERING)
        clock.advance(n + 1)
        await store.tasks.transition(task.id, TaskState.DONE)
    task, _ = await store.tasks.create(new_task(3, "f"))
    await store.tasks.transition(task.id, TaskState.FAILED, error_code="50411")
    task, _ = await store.tasks.create(new_task(3, "c"))
    await store.tasks.transition(task.id, TaskState.CANCELLED)
    task, _ = await store.tasks.create(new_task(2, "b"))
    task = await drive(store, task, TaskState.DELIVERING)
    clock.advance(3)
    await store.tasks.transition(task.id, TaskState.DONE)
    task, _ = await store.tasks.create(new_task(2, "e"))
    await drive(store, task, TaskState.EXPIRED)
    await store.tasks.create(new_task(2, "q"))  # still queued

    stats = await store.admin.stats()
    assert (stats.users_total, stats.active_today, stats.active_7d) == (3, 1, 2)
    assert dict(stats.tasks_by_state) == {"done": 11, "failed": 1, "cancelled": 1, "expired": 1, "queued": 1}
    assert dict(stats.tasks_by_error) == {"50411": 1}
    assert stats.success_rate == 11 / 13
    # Durations 1..10 and 3: sorted 1,2,3,3,4,...,10 -> p50 is the 6th (5 s), p95 the 11th (10 s).
    assert (stats.latency_p50, stats.latency_p95) == (5.0, 10.0)
    # User 3 spent 2 free units then 8 credits; user 2 one free unit.
    assert (stats.quota_spent, stats.quota_spent_free, stats.quota_spent_credits) == (11, 3, 8)
    assert stats.quota_spent_today == 11
    assert [(u.user_id, u.username, u.done) for u in stats.top_users] == [(3, "user3", 10), (2, "user2", 1)]
    tomorrow = await store.admin.stats(now=clock.t + 86400)
    assert (tomorrow.active_today, tomorrow.quota_spent_today) == (0, 0)
