"""A real process SIGKILLed right after Telegram handed it a successful payment: after a restart and
Telegram's redelivery of the update, the pack is credited exactly once, whenever the kill landed (before
the store's commit: the redelivery credits; after it: the redelivery finds the charge and only says so).
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from api_client.emulator import EmulatorConfig, serve_in_thread
from bot.replies import t
from fake_telegram import FakeTelegram, serve
from storage import Store
from tests.e2e.test_process import TOKEN, _bot_env, _start_bot

WAIT = 30.0


def _handed_over(fake: FakeTelegram, update_id: int) -> bool:
    """The payment update left the fake in a getUpdates answer: the bot has it (or is reading it)."""
    return any(
        isinstance(call.result, list) and any(u.get("update_id") == update_id for u in call.result)
        for call in fake.calls_to("getUpdates")
    )


@pytest.mark.slow
async def test_sigkill_after_the_payment_arrives_then_redelivery_credits_once(tmp_path: Path) -> None:
    fake = FakeTelegram(token=TOKEN)
    alice = fake.add_user(1001, "Alice", "alice")
    chat = fake.private_chat(alice)
    config = EmulatorConfig(access_key="AKP", secret_key="SKP")
    with serve_in_thread(config) as emulator:
        async with serve(fake) as url:
            env = _bot_env(url, emulator.base_url, tmp_path / "bot.db") | {"CREDIT_PACKS": "10:50"}
            first = await _start_bot(env, tmp_path)
            try:
                sent = fake.send_text(alice, chat, "/buy")
                menu = await fake.wait_for_message(
                    chat, lambda m: m.buttons, after=sent.message_id, timeout=WAIT
                )
                fake.click(alice, menu, "buy:10:50")
                invoice = await fake.wait_for(lambda: next(iter(fake.invoices(chat.id)), None), WAIT)
                query_id = fake.pay(alice, invoice)
                charge = await fake.wait_for(lambda: fake.charge_for(query_id), WAIT)
                update_id = fake.updates[-1]["update_id"]
                await fake.wait_for(lambda: _handed_over(fake, update_id) or None, WAIT)
                first.send_signal(signal.SIGKILL)
                await first.wait()
            finally:
                if first.returncode is None:
                    first.kill()
            second = await _start_bot(env, tmp_path)
            try:
                fake.redeliver(charge.message)
                thanks = t("buy.thanks", "en", credits="10 credits", balance="10 credits")
                already = t("buy.already", "en", balance="10 credits")
                reply = await fake.wait_for_message(
                    chat, lambda m: m.body in (thanks, already), after=charge.message.message_id, timeout=WAIT
                )
                fake.redeliver(charge.message)
                await fake.wait_for_message(chat, already, after=reply.message_id, timeout=WAIT)
            finally:
                second.send_signal(signal.SIGTERM)
                await second.wait()
    store = await Store.open(tmp_path / "bot.db")
    try:
        assert (await store.quotas.balance(1001)).credits == 10
        entries = await store.quotas.ledger(1001)
        assert [(e.kind, e.credits, e.ref) for e in entries] == [("purchase", 10, charge.charge_id)]
        assert (await store.quotas.check()).ok
    finally:
        await store.close()
