"""Buying through the fake Telegram as a user does: /buy, tap a pack, pay the invoice."""

from __future__ import annotations

from fake_telegram.model import Charge, FakeMessage, PreCheckout
from tests.e2e.conftest import WAIT, Person, says


async def open_invoice(person: Person, credits: int, stars: int) -> int:
    """/buy, then tap the pack; returns how many invoices the chat has (the newest is this one)."""
    fake = person.fake
    before = len(fake.invoices(person.chat.id))
    menu = await person.say("/buy", says("buy.menu"))
    await person.click(menu, f"buy:{credits}:{stars}")
    await fake.wait_for(lambda: len(fake.invoices(person.chat.id)) > before or None, WAIT)
    return len(fake.invoices(person.chat.id))


async def pay_latest(person: Person) -> PreCheckout:
    """Press Pay on the newest invoice; returns the bot's answer to the pre-checkout query."""
    fake = person.fake
    query_id = fake.pay(person.user, fake.invoices(person.chat.id)[-1])
    return await fake.wait_for(lambda: fake.pre_checkout(query_id), WAIT)


async def buy(person: Person, credits: int = 10, stars: int = 50) -> tuple[Charge, FakeMessage]:
    """The whole purchase; returns the charge and the bot's answer to the successful payment."""
    await open_invoice(person, credits, stars)
    answer = await pay_latest(person)
    assert answer.ok, answer.error_message
    charge = person.fake.charge_for(answer.id)
    assert charge is not None
    return charge, await person.reply_after(charge.message)
