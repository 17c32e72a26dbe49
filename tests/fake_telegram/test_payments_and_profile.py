"""Stars invoices, pre-checkout queries, successful payments and refunds; menus per scope; descriptions.

Checked with PTB's own Bot over HTTP, so the shapes are the ones PTB parses (Message.invoice,
PreCheckoutQuery, SuccessfulPayment), and Telegram's refusals come back as PTB's BadRequest.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from telegram import (
    BotCommand,
    BotCommandScopeAllGroupChats,
    BotCommandScopeChat,
    LabeledPrice,
    Update,
)
from telegram.error import BadRequest

from fake_telegram import FakeTelegram, make_bot, serve
from fake_telegram.model import FakeMessage


@pytest.fixture
async def bot(fake: FakeTelegram) -> AsyncIterator[object]:
    async with serve(fake) as url, make_bot(fake.token, url) as bot:
        yield bot


async def _updates(bot: object, offset: int = 0) -> list[Update]:
    return list(await bot.get_updates(offset=offset, timeout=0))  # type: ignore[attr-defined]


async def _invoice(fake: FakeTelegram, bot: object, stars: int = 50) -> FakeMessage:
    alice = fake.add_user(1001, "Alice", "alice")
    fake.private_chat(alice)
    sent = await bot.send_invoice(  # type: ignore[attr-defined]
        1001, "10 credits", "Ten portraits", "pack:10:50", "XTR", [LabeledPrice("10 credits", stars)]
    )
    assert sent.invoice is not None and (sent.invoice.currency, sent.invoice.total_amount) == ("XTR", stars)
    return fake.messages[(1001, sent.message_id)]


async def test_paying_asks_the_bot_and_only_an_ok_answer_charges(fake: FakeTelegram, bot: object) -> None:
    invoice = await _invoice(fake, bot)
    query_id = fake.pay(1001, invoice)
    (update,) = await _updates(bot)
    query = update.pre_checkout_query
    assert query is not None and (query.id, query.invoice_payload, query.total_amount) == (
        query_id, "pack:10:50", 50,
    )  # fmt: skip
    assert await query.answer(ok=True)  # type: ignore[misc]
    charge = fake.charge_for(query_id)
    assert charge is not None
    (paid,) = await _updates(bot, update.update_id + 1)
    assert paid.message is not None and paid.message.successful_payment is not None
    payment = paid.message.successful_payment
    assert (payment.telegram_payment_charge_id, payment.invoice_payload) == (charge.charge_id, "pack:10:50")
    with pytest.raises(BadRequest, match=r"(?i)QUERY_ID_INVALID"):
        await query.answer(ok=True)  # type: ignore[misc]
    # A refund works once and shows in the chat.
    assert await bot.refund_star_payment(1001, charge.charge_id)  # type: ignore[attr-defined]
    with pytest.raises(BadRequest, match=r"(?i)CHARGE_ALREADY_REFUNDED"):
        await bot.refund_star_payment(1001, charge.charge_id)  # type: ignore[attr-defined]
    with pytest.raises(BadRequest, match=r"(?i)CHARGE_NOT_FOUND"):
        await bot.refund_star_payment(1002, charge.charge_id)  # type: ignore[attr-defined]
    (refunded,) = await _updates(bot, paid.update_id + 1)
    assert refunded.message is not None and refunded.message.refunded_payment is not None
    assert "was refunded 50 XTR" in fake.transcript()


async def test_a_refused_or_late_answer_charges_nothing(fake: FakeTelegram, bot: object) -> None:
    invoice = await _invoice(fake, bot)
    first = fake.pay(1001, invoice)
    await bot.answer_pre_checkout_query(first, ok=False, error_message="Sold out")  # type: ignore[attr-defined]
    answered = fake.pre_checkout(first)
    assert answered is not None and (answered.ok, answered.error_message) == (False, "Sold out")
    assert fake.charge_for(first) is None
    with pytest.raises(BadRequest, match=r"(?i)error_message"):
        await bot.answer_pre_checkout_query(fake.pay(1001, invoice), ok=False)  # type: ignore[attr-defined]
    late = fake.pay(1001, invoice)
    fake.payments.queries[late].asked_at -= 11
    with pytest.raises(BadRequest, match=r"(?i)too old"):
        await bot.answer_pre_checkout_query(late, ok=True)  # type: ignore[attr-defined]
    assert not fake.payments.charges


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"currency": "USD"}, "CURRENCY_INVALID"),
        ({"provider_token": "284685063:TEST:abc"}, "provider_token"),
        ({"prices": [LabeledPrice("a", 1), LabeledPrice("b", 2)]}, "exactly one price"),
        ({"prices": [LabeledPrice("a", 0)]}, "CURRENCY_TOTAL_AMOUNT_INVALID"),
        ({"title": "x" * 33}, "INVOICE_TITLE_INVALID"),
    ],
)
async def test_bad_invoices_are_refused(
    fake: FakeTelegram, bot: object, kwargs: dict[str, object], error: str
) -> None:
    fake.private_chat(fake.add_user(1001, "Alice"))
    args: dict[str, object] = {
        "chat_id": 1001, "title": "10 credits", "description": "Ten", "payload": "p", "currency": "XTR",
        "prices": [LabeledPrice("10 credits", 50)],
    }  # fmt: skip
    with pytest.raises(BadRequest, match=f"(?i){error}"):
        await bot.send_invoice(**(args | kwargs))  # type: ignore[attr-defined]


async def test_redelivery_replays_the_same_message(fake: FakeTelegram, bot: object) -> None:
    alice = fake.add_user(1001, "Alice")
    message = fake.send_text(alice, fake.private_chat(alice), "hello")
    fake.redeliver(message)
    first, second = await _updates(bot)
    assert first.update_id != second.update_id
    assert first.message is not None and second.message is not None
    assert first.message.message_id == second.message.message_id


async def test_menus_per_scope_and_descriptions_per_language(fake: FakeTelegram, bot: object) -> None:
    fake.private_chat(fake.add_user(1001, "Owner"))
    b = bot
    await b.set_my_commands([BotCommand("anime", "Make one")])  # type: ignore[attr-defined]
    await b.set_my_commands(  # type: ignore[attr-defined]
        [BotCommand("anime", "做一个")], scope=BotCommandScopeAllGroupChats(), language_code="zh"
    )
    await b.set_my_commands([BotCommand("stats", "Stats")], scope=BotCommandScopeChat(1001))  # type: ignore[attr-defined]
    assert fake.commands_for() == ["anime"]
    assert fake.commands_for("all_group_chats", language_code="zh") == ["anime"]
    assert fake.commands_for("chat", chat_id=1001) == ["stats"]
    with pytest.raises(BadRequest, match=r"(?i)chat not found"):
        await b.set_my_commands([BotCommand("stats", "S")], scope=BotCommandScopeChat(4242))  # type: ignore[attr-defined]
    await b.set_my_description("Anime portraits", language_code="en")  # type: ignore[attr-defined]
    await b.set_my_short_description("动漫头像", language_code="zh")  # type: ignore[attr-defined]
    assert fake.description(language_code="en") == "Anime portraits"
    assert fake.description(short=True, language_code="zh") == "动漫头像"
    assert (await b.get_my_description(language_code="en")).description == "Anime portraits"  # type: ignore[attr-defined]
    with pytest.raises(BadRequest, match=r"(?i)SHORT_DESCRIPTION_INVALID"):
        await b.set_my_short_description("x" * 121)  # type: ignore[attr-defined]
