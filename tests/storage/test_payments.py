"""Stars purchases: credited exactly once per charge id, refunds reverse them (never below zero)."""

from __future__ import annotations

import asyncio

import pytest

from storage import AlreadyRefunded, NotFound, PurchaseResult, Store, TaskState

from .conftest import add_user, new_task
from .helpers import drive, tamper


async def _buy(store: Store, charge: str = "ch-1", credits: int = 10, user_id: int = 1) -> PurchaseResult:
    return await store.payments.record(
        charge, user_id=user_id, credits=credits, stars=50, currency="XTR", payload=f"pack:{credits}:50"
    )


async def test_a_payment_credits_once_and_the_same_charge_again_changes_nothing(store: Store) -> None:
    await add_user(store)
    first = await _buy(store)
    again = await _buy(store)
    assert (first.credited, first.credits) == (True, 10)
    assert (again.credited, again.credits) == (False, 10)
    assert (await store.quotas.balance(1)).credits == 10
    entries = await store.quotas.ledger(1)
    assert [(e.kind, e.credits, e.ref) for e in entries] == [("purchase", 10, "ch-1")]
    assert (await store.quotas.check()).ok


async def test_concurrent_deliveries_of_one_payment_credit_once(store: Store) -> None:
    await add_user(store)
    results = await asyncio.gather(*(_buy(store) for _ in range(5)))
    assert sorted(r.credited for r in results) == [False] * 4 + [True]
    assert (await store.quotas.balance(1)).credits == 10
    assert (await store.quotas.check()).ok


async def test_a_failed_transaction_leaves_nothing_and_the_retry_credits(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The process dying between the payment row and the ledger row is the same as this rollback."""
    from storage import payments

    await add_user(store)
    real = payments.ledger_row

    async def crash(*args: object, **kwargs: object) -> None:
        raise RuntimeError("killed")

    monkeypatch.setattr(payments, "ledger_row", crash)
    with pytest.raises(RuntimeError):
        await _buy(store)
    assert await store.payments.get("ch-1") is None
    assert (await store.quotas.balance(1)).credits == 0
    monkeypatch.setattr(payments, "ledger_row", real)
    assert (await _buy(store)).credited
    assert (await store.quotas.balance(1)).credits == 10
    assert (await store.quotas.check()).ok


async def test_refund_takes_the_credits_back_and_records_the_shortfall(store: Store) -> None:
    await add_user(store)
    await _buy(store, credits=3)
    await store.quotas.set_daily(1, 0, actor=9, reason="no free units, so tasks use credits")
    for key in ("a", "b"):
        task, _ = await store.tasks.create(new_task(key=key))
        await drive(store, task, TaskState.DONE)
    assert (await store.quotas.balance(1)).credits == 1
    result = await store.payments.refund("ch-1", actor=9, reason="asked nicely")
    assert (result.payment.state, result.payment.reversed, result.payment.shortfall) == ("refunded", 1, 2)
    assert result.credits == 0
    entry = (await store.quotas.ledger(1))[0]
    assert (entry.kind, entry.credits, entry.actor, entry.ref) == ("purchase_refund", -1, 9, "ch-1")
    assert "2 credits already spent" in entry.reason and "asked nicely" in entry.reason
    assert (await store.admin.audit_log())[0].action == "refund"
    with pytest.raises(AlreadyRefunded):
        await store.payments.refund("ch-1", actor=9)
    with pytest.raises(NotFound):
        await store.payments.refund("nope", actor=9)
    assert (await store.quotas.balance(1)).credits == 0
    assert (await store.quotas.check()).ok


async def test_sources_and_listing(store: Store) -> None:
    await add_user(store)
    await _buy(store, "ch-1", 10)
    await _buy(store, "ch-2", 50)
    await store.payments.refund("ch-1", actor=9)
    sources = await store.payments.sources(1)
    assert (sources.purchased, sources.purchases, sources.referral) == (50, 1, 0)
    assert [p.charge_id for p in await store.payments.for_user(1)] == ["ch-2", "ch-1"]


async def test_bad_payments_are_refused(store: Store) -> None:
    await add_user(store)
    with pytest.raises(ValueError):
        await _buy(store, charge="")
    with pytest.raises(ValueError):
        await _buy(store, credits=0)
    with pytest.raises(NotFound):
        await _buy(store, user_id=404)


async def test_check_finds_purchases_changed_outside_the_store(store: Store) -> None:
    await add_user(store)
    await _buy(store, "ch-1", 10)
    await _buy(store, "ch-2", 5)
    await tamper(
        store,
        "UPDATE payments SET credits = 20 WHERE charge_id = 'ch-1'",
        "UPDATE payments SET state = 'refunded' WHERE charge_id = 'ch-2'",
        "INSERT INTO ledger (user_id, kind, credits, at, ref) VALUES (1, 'purchase', 7, 0, 'ghost')",
        "INSERT INTO ledger (user_id, kind, credits, at) VALUES (1, 'purchase', 7, 0)",
    )
    text = "\n".join((await store.quotas.check()).problems)
    for needle in ("payment ch-1: paid (20 credits", "payment ch-2: refunded", "payment ghost", "misplaced"):
        assert needle in text
