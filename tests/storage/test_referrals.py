"""Referrals: both sides get the bonus once, never for oneself, only for a user new to the bot."""

from __future__ import annotations

from pathlib import Path

import pytest

from storage import ClaimOutcome, NotFound, Store

from .conftest import add_user, new_task
from .helpers import tamper


async def test_codes_are_stable_per_user_and_unknown_users_have_none(store: Store) -> None:
    await add_user(store, 1)
    code = await store.referrals.code_for(1)
    assert code == await store.referrals.code_for(1) and len(code) == 10 and code.isalnum()
    with pytest.raises(NotFound):
        await store.referrals.code_for(404)


async def test_both_sides_get_the_bonus_once(store: Store) -> None:
    await add_user(store, 1)
    await add_user(store, 2, "bob")
    code = await store.referrals.code_for(1)
    claim = await store.referrals.claim(2, code, bonus=3, first_update=True)
    assert (claim.outcome, claim.inviter_id, claim.invitee_credits, claim.inviter_credits) == (
        ClaimOutcome.CREDITED, 1, 3, 3,
    )  # fmt: skip
    again = await store.referrals.claim(2, code, bonus=3, first_update=True)
    assert again.outcome == ClaimOutcome.ALREADY
    assert [(b.credits) for b in (await store.quotas.balance(1), await store.quotas.balance(2))] == [3, 3]
    for user_id in (1, 2):
        entries = await store.quotas.ledger(user_id)
        assert [(e.kind, e.credits, e.ref) for e in entries] == [("referral", 3, "referral:2")]
    assert await store.referrals.invited_count(1) == 1
    assert (await store.payments.sources(2)).referral == 3
    assert (await store.quotas.check()).ok


async def test_refusals(store: Store, db_path: Path) -> None:
    await add_user(store, 1)
    await add_user(store, 2, "bob")
    await add_user(store, 3, "carol")
    code = await store.referrals.code_for(1)
    assert (await store.referrals.claim(1, code, bonus=3, first_update=True)).outcome == ClaimOutcome.SELF
    assert (await store.referrals.claim(2, "nope", bonus=3, first_update=True)).outcome == (
        ClaimOutcome.UNKNOWN_CODE
    )
    assert (await store.referrals.claim(2, code, bonus=3, first_update=False)).outcome == ClaimOutcome.NOT_NEW
    await store.tasks.create(new_task(user_id=3))
    assert (await store.referrals.claim(3, code, bonus=3, first_update=True)).outcome == ClaimOutcome.NOT_NEW
    await store.users.ban(1, actor=9, reason="spam")
    assert (await store.referrals.claim(2, code, bonus=3, first_update=True)).outcome == (
        ClaimOutcome.INVITER_BANNED
    )
    with pytest.raises(ValueError):
        await store.referrals.claim(2, code, bonus=0, first_update=True)
    assert (await store.quotas.balance(1)).credits == 0
    assert (await store.quotas.check()).ok
    await tamper(
        store,
        "INSERT INTO ledger (user_id, kind, credits, at, ref) VALUES (2, 'referral', 3, 0, 'referral:2')",
    )
    assert any("without a referral" in p for p in (await store.quotas.check()).problems)
