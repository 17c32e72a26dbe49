"""Stars purchases end to end: buy, the same payment twice, a failed credit then a restart, refunds."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from bot.admin.cli import EXIT_OK, run_admin
from bot.config_values import CreditPack
from bot.handlers.payments import quota_exhausted_extras
from bot.replies import t
from storage import payments as payments_module
from tests.e2e.conftest import Harness, HarnessFactory, Person, is_photo, says
from tests.e2e.images import draw_selfie
from tests.e2e.payments_flow import buy, open_invoice, pay_latest

PACKS = (CreditPack(10, 50), CreditPack(50, 200))
OWNER = 4242


async def _shop(make_harness: HarnessFactory, **settings: object) -> Harness:
    return await make_harness(credit_packs=PACKS, admin_ids=frozenset({OWNER}), **settings)


async def _credits(h: Harness, person: Person) -> int:
    return (await h.services.store.quotas.balance(person.user.id)).credits


async def test_a_purchase_credits_the_pack_and_shows_in_quota(make_harness: HarnessFactory) -> None:
    h = await _shop(make_harness)
    alice = h.person()
    charge, thanks = await buy(alice, 10, 50)
    assert thanks.body == t("buy.thanks", "en", credits="10 credits", balance="10 credits")
    invoice = h.fake.calls_to("sendInvoice")[-1].params
    assert (invoice["currency"], invoice["payload"], invoice["prices"]) == (
        "XTR", "pack:10:50", [{"label": "10 credits", "amount": 50}],
    )  # fmt: skip
    assert invoice.get("provider_token", "") == ""
    assert charge.invoice.total_amount == 50
    quota = await alice.say("/quota")
    assert t("quota.purchased", "en", credits="10 credits") in quota.body.splitlines()
    entries = await h.services.store.quotas.ledger(alice.user.id)
    assert [(e.kind, e.credits, e.ref) for e in entries] == [("purchase", 10, charge.charge_id)]


async def test_the_same_payment_delivered_twice_credits_once(make_harness: HarnessFactory) -> None:
    h = await _shop(make_harness)
    alice = h.person()
    charge, _ = await buy(alice)
    h.fake.redeliver(charge.message)
    await alice.reply_after(charge.message, says("buy.already", balance="10 credits"))
    assert await _credits(h, alice) == 10
    assert (await h.services.store.quotas.check()).ok


async def test_a_credit_lost_with_the_process_is_made_by_the_redelivery_after_restart(
    make_harness: HarnessFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store's transaction fails between the payment row and its ledger entry (as if the process died
    there): nothing is kept; Telegram delivers the update again after the restart and it is credited once."""
    h = await _shop(make_harness)
    alice = h.person()
    real = payments_module.ledger_row

    async def dies(*args: object, **kwargs: object) -> None:
        raise RuntimeError("process killed here")

    monkeypatch.setattr(payments_module, "ledger_row", dies)
    await open_invoice(alice, 10, 50)
    answer = await pay_latest(alice)
    charge = h.fake.charge_for(answer.id)
    assert charge is not None
    await alice.reply_after(charge.message, says("error.unexpected"))
    assert await _credits(h, alice) == 0 and await h.services.store.payments.get(charge.charge_id) is None
    await h.stop()
    monkeypatch.setattr(payments_module, "ledger_row", real)
    await h.start()
    h.fake.redeliver(charge.message)
    h.fake.redeliver(charge.message)
    await alice.reply_after(charge.message, says("buy.thanks", credits="10 credits", balance="10 credits"))
    await alice.reply_after(charge.message, says("buy.already", balance="10 credits"))
    assert await _credits(h, alice) == 10
    assert (await h.services.store.quotas.check()).ok


async def test_pre_checkout_refuses_banned_users_and_packs_no_longer_on_sale(
    make_harness: HarnessFactory,
) -> None:
    h = await _shop(make_harness)
    alice = h.person()
    await open_invoice(alice, 50, 200)
    # The operator changes the price list after the invoice went out.
    h.services.settings = replace(h.services.settings, credit_packs=(CreditPack(10, 50), CreditPack(50, 250)))
    answer = await pay_latest(alice)
    assert (answer.ok, answer.error_message) == (False, t("pay.refused.pack", "en"))
    await open_invoice(alice, 10, 50)
    await h.services.store.users.ban(alice.user.id, actor=OWNER, reason="abuse")
    answer = await pay_latest(alice)
    assert (answer.ok, answer.error_message) == (False, t("pay.refused.banned", "en"))
    assert not h.fake.payments.charges and await _credits(h, alice) == 0


async def test_refund_from_chat_takes_back_what_is_left_and_records_the_shortfall(
    make_harness: HarnessFactory,
) -> None:
    h = await _shop(make_harness, daily_free_quota=0)
    alice = h.person()
    owner = h.person(OWNER, "Olga")
    charge, _ = await buy(alice, 10, 50)
    await alice.photo(draw_selfie(), expect=says("face.saved"))
    await alice.say("/anime", is_photo)
    await h.settle()
    assert await _credits(h, alice) == 9
    listing = await owner.say("/payments @alice")
    assert charge.charge_id in listing.body and t("admin.payments.paid", "en") in listing.body
    done = await owner.say(f"/refund {charge.charge_id} asked nicely")
    assert done.body == t(
        "admin.refund.done", "en", stars=50, user=f"@alice ({alice.user.id})", charge=charge.charge_id,
        reversed="9 credits", shortfall="1 credit", credits="0 credits",
    )  # fmt: skip
    assert h.fake.payments.charges[charge.charge_id].refunded
    assert await _credits(h, alice) == 0
    again = await owner.say(f"/refund {charge.charge_id}")
    assert again.body == t("admin.refund.already", "en", charge=charge.charge_id)
    unknown = await owner.say("/refund nope")
    assert unknown.body == t("admin.refund.unknown", "en", charge="nope")
    stranger = await alice.say(f"/refund {charge.charge_id}")
    assert stranger.body == t("unknown.command", "en", command="/refund")
    assert (await h.services.store.quotas.check()).ok


async def test_refund_from_the_cli_and_a_retry_after_telegram_already_refunded(
    make_harness: HarnessFactory,
) -> None:
    h = await _shop(make_harness)
    alice = h.person()
    first, _ = await buy(alice, 10, 50)
    second, _ = await buy(alice, 50, 200)
    env = {"TELEGRAM_BOT_TOKEN": h.fake.token, "TELEGRAM_API_URL": f"{h.url}/bot"}
    argv = ["--db", str(h.tmp_path / "bot.db"), "refund", first.charge_id, "--reason", "duplicate"]
    assert await asyncio.to_thread(run_admin, argv, env=env) == EXIT_OK
    assert h.fake.payments.charges[first.charge_id].refunded
    assert await _credits(h, alice) == 50
    # Telegram refunded the second one, but the bot died before recording it: the retry records it.
    h.fake.payments.charges[second.charge_id].refunded = True
    argv[3] = second.charge_id
    assert await asyncio.to_thread(run_admin, argv, env=env) == EXIT_OK
    assert await _credits(h, alice) == 0
    assert await asyncio.to_thread(run_admin, argv, env=env) != EXIT_OK  # now refused: already refunded
    assert await asyncio.to_thread(run_admin, [*argv[:2], "refund", "x"], env={}) != EXIT_OK  # no token
    assert (await h.services.store.quotas.check()).ok


async def test_buy_is_off_without_packs_and_paysupport_answers(harness: Harness, alice: Person) -> None:
    await alice.say("/buy", says("buy.off"))
    reply = await alice.say("/paysupport")
    assert reply.body == "\n".join([t("paysupport.text", "en"), t("paysupport.no_contact", "en")])
    assert quota_exhausted_extras(harness.services.settings, "en") == []


async def test_quota_exhausted_extras_offer_buy_and_support(make_harness: HarnessFactory) -> None:
    h = await _shop(make_harness, support_contact="@help_desk")
    assert quota_exhausted_extras(h.services.settings, "zh") == [
        t("quota.exhausted.buy", "zh"), t("quota.exhausted.support", "zh", contact="@help_desk"),
    ]  # fmt: skip
    alice = h.person()
    reply = await alice.say("/paysupport")
    assert reply.body.endswith(t("paysupport.contact", "en", contact="@help_desk"))
    await alice.say("/buy 7", says("buy.unknown_pack"))
    sent = await alice.say("/buy 50")
    assert sent.service.get("invoice", {}).get("total_amount") == 200


async def test_the_quota_exhausted_reply_offers_buy_and_support(make_harness: HarnessFactory) -> None:
    h = await _shop(make_harness, support_contact="@help_desk")
    alice = h.person()
    await alice.photo(draw_selfie(), expect=says("face.saved"))
    await h.services.store.quotas.set_daily(alice.user.id, 0, actor=0, reason="test")
    reply = await alice.say("/anime")
    paragraphs = reply.body.split("\n\n")
    assert paragraphs[-2:] == [
        t("quota.exhausted.buy", "en"), t("quota.exhausted.support", "en", contact="@help_desk"),
    ]  # fmt: skip
    assert paragraphs[0].startswith(alice.text("quota.exhausted", resets="").split("resets")[0][:20])
