"""Quotas: allowance and credits, the daily reset at local midnight, the ledger and its check."""

from __future__ import annotations

import pytest

from storage import NotFound, QuotaExhausted, Store, TaskState

from .conftest import FakeClock, add_user, new_task
from .helpers import drive, tamper


async def test_balance_of_new_and_unknown_users_uses_the_default(store: Store, clock: FakeClock) -> None:
    await add_user(store)
    for uid in (1, 404):
        b = await store.quotas.balance(uid)
        assert (b.daily_allowance, b.free_used_today, b.free_left, b.credits) == (2, 0, 2, 0)
    # 10:00 in Shanghai -> the next reset is 14 h away.
    assert (await store.quotas.balance(1)).resets_at == clock.t + 14 * 3600


async def test_grant_and_adjust_never_below_zero(store: Store) -> None:
    await add_user(store)
    assert (await store.quotas.grant(1, 5, actor=9, reason="bought")).credits == 5
    assert (await store.quotas.grant(1, -2, actor=9, reason="typo")).credits == 3
    assert (await store.quotas.grant(1, -10, actor=9, reason="abuse")).credits == 0
    entries = await store.quotas.ledger(1)
    assert [(e.kind, e.credits, e.actor, e.reason) for e in entries] == [
        ("adjust", -3, 9, "abuse"),
        ("adjust", -2, 9, "typo"),
        ("grant", 5, 9, "bought"),
    ]
    log = await store.admin.audit_log()
    assert log[0].action == "adjust" and "asked -10" in log[0].details and log[0].target == "1"
    assert (await store.quotas.check()).ok


async def test_grant_to_unknown_user_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        await store.quotas.grant(404, 1, actor=9, reason="")


async def test_per_user_override_and_default_allowance(store: Store) -> None:
    await add_user(store, 1)
    await add_user(store, 2, "bob")
    await store.quotas.set_daily(1, 5, actor=9, reason="vip")
    await store.quotas.set_daily(None, 1, actor=9, reason="busy week")
    assert (await store.quotas.balance(1)).daily_allowance == 5
    assert (await store.quotas.balance(2)).daily_allowance == 1
    await store.quotas.set_daily(1, None, actor=9, reason="back to normal")
    assert (await store.quotas.balance(1)).daily_allowance == 1
    assert [(e.kind, e.allowance) for e in await store.quotas.ledger(1)] == [("daily", None), ("daily", 5)]
    assert (await store.quotas.check()).ok
    with pytest.raises(ValueError):
        await store.quotas.set_daily(1, -1, actor=9, reason="")
    with pytest.raises(ValueError):
        await store.quotas.set_daily(None, None, actor=9, reason="")


async def test_default_set_by_admin_outlives_the_open_parameter(empty_db: str, clock: FakeClock) -> None:
    async with await Store.open(empty_db, clock=clock, daily_free_quota=3) as s:
        await s.quotas.set_daily(None, 7, actor=9, reason="launch")
    async with await Store.open(empty_db, clock=clock, daily_free_quota=3) as s:
        assert (await s.quotas.balance(1)).daily_allowance == 7


async def test_daily_allowance_resets_at_the_configured_zones_midnight(
    store: Store, clock: FakeClock
) -> None:
    await add_user(store)
    for i in range(2):
        await drive(store, (await store.tasks.create(new_task(key=f"a{i}")))[0], TaskState.DONE)
    with pytest.raises(QuotaExhausted):
        await store.tasks.create(new_task(key="a9"))
    clock.advance(14 * 3600 - 1)  # 23:59:59 in Shanghai (15:59:59 UTC, long before UTC midnight)
    with pytest.raises(QuotaExhausted):
        await store.tasks.create(new_task(key="a9"))
    clock.advance(1)  # 00:00:00 in Shanghai
    b = await store.quotas.balance(1)
    assert (b.free_used_today, b.free_left, b.resets_at) == (0, 2, clock.t + 86400)
    task, _ = await store.tasks.create(new_task(key="b0"))
    assert task.quota_unit == "free"
    kinds = [e.kind for e in await store.quotas.ledger(1, limit=2)]
    assert kinds == ["reserve", "reset"]
    assert (await store.quotas.check()).ok


async def test_utc_store_resets_at_utc_midnight(empty_db: str, clock: FakeClock) -> None:
    async with await Store.open(empty_db, clock=clock, daily_free_quota=1) as s:
        await add_user(s)
        await s.tasks.create(new_task())
        assert (await s.quotas.balance(1)).resets_at % 86400 == 0


async def test_check_finds_tampered_balances_and_reservations(store: Store) -> None:
    await add_user(store)
    await store.quotas.grant(1, 3, actor=9, reason="r")
    task = await drive(store, (await store.tasks.create(new_task()))[0], TaskState.DONE)
    assert await store.quotas.check() == type(await store.quotas.check())(ok=True, problems=[])
    await tamper(
        store,
        "UPDATE quota_accounts SET credits = 10, free_used = 0, daily_allowance = 4",
        ("UPDATE tasks SET reservation = 'refunded' WHERE id = ?", (task.id,)),
        "INSERT INTO ledger (user_id, task_id, kind, at) VALUES (1, NULL, 'refund', 0)",
    )
    result = await store.quotas.check()
    assert not result.ok
    text = "\n".join(result.problems)
    for needle in (
        "credits 10 but ledger says 3",
        "0 free used",
        "daily allowance 4",
        f"task {task.id}:",
        "misplaced",
    ):
        assert needle in text


async def test_check_finds_a_default_changed_outside_the_ledger(store: Store) -> None:
    await store.quotas.set_daily(None, 4, actor=9, reason="r")
    assert (await store.quotas.check()).ok
    await tamper(store, "UPDATE config SET value = '9' WHERE key = 'daily_free_quota'")
    assert (await store.quotas.check()).problems == ["default daily allowance 9 but ledger says 4"]
