"""Payments in Telegram Stars, bot side: sendInvoice, answerPreCheckoutQuery, refundStarPayment.

What Telegram does and the fake copies: an invoice in `XTR` has an empty provider token and exactly one
price in whole Stars; paying asks the bot a `pre_checkout_query` that must be answered within 10 seconds;
only an `ok` answer charges the user, who then sends a message carrying `successful_payment` with a unique
`telegram_payment_charge_id`; a refund of a charge works once (`CHARGE_ALREADY_REFUNDED` afterwards) and
shows in the chat as a `refunded_payment` message. The users' side (paying, redelivery) is in
`fake_telegram/paying.py`.
"""

from __future__ import annotations

from typing import Any

from fake_telegram.core import FakeCore
from fake_telegram.errors import bad_request
from fake_telegram.model import JSON, Charge, Invoice, PreCheckout
from fake_telegram.params import Params
from fake_telegram.send import _finish, _reply_target, inline_markup

#: Seconds Telegram waits for answerPreCheckoutQuery before it fails the payment.
PRE_CHECKOUT_TIMEOUT = 10.0
MAX_TITLE, MAX_DESCRIPTION, MAX_PAYLOAD = 32, 255, 128


def _prices(p: Params, currency: str) -> int:
    prices = p.obj("prices")
    if not isinstance(prices, list) or not prices:
        raise bad_request("prices must be a non-empty array of LabeledPrice")
    amounts = []
    for price in prices:
        amount = price.get("amount") if isinstance(price, dict) else None
        if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0 or not price.get("label"):
            raise bad_request("CURRENCY_TOTAL_AMOUNT_INVALID")
        amounts.append(amount)
    if currency == "XTR" and len(amounts) != 1:
        raise bad_request("exactly one price must be specified for payments in Telegram Stars")
    return sum(amounts)


async def send_invoice(fake: FakeCore, p: Params) -> Any:
    chat = fake.chat_for_send(p.chat_id())
    title, description, payload = p.string("title") or "", p.string("description") or "", p.string("payload")
    currency = p.string("currency") or ""
    if not 1 <= len(title) <= MAX_TITLE:
        raise bad_request("INVOICE_TITLE_INVALID" if title else "title is empty")
    if not 1 <= len(description) <= MAX_DESCRIPTION:
        raise bad_request("INVOICE_DESCRIPTION_INVALID" if description else "description is empty")
    if not payload or len(payload.encode()) > MAX_PAYLOAD:
        raise bad_request("INVOICE_PAYLOAD_INVALID" if payload else "payload is empty")
    if currency != "XTR":
        raise bad_request("CURRENCY_INVALID: this fake sells digital goods in Telegram Stars (XTR) only")
    if p.string("provider_token"):
        raise bad_request("provider_token must be empty for payments in Telegram Stars")
    total = _prices(p, currency)
    invoice_json: JSON = {
        "title": title, "description": description, "start_parameter": p.string("start_parameter") or "",
        "currency": currency, "total_amount": total,
    }  # fmt: skip
    message = fake.new_message(
        chat, fake.bot_user, reply_to=_reply_target(fake, chat, p), reply_markup=inline_markup(p),
        service={"invoice": invoice_json},
    )  # fmt: skip
    fake.payments.invoices[(chat.id, message.message_id)] = Invoice(message, title, payload, currency, total)
    return _finish(fake, message)


async def answer_pre_checkout_query(fake: FakeCore, p: Params) -> Any:
    query = fake.payments.queries.get(p.string("pre_checkout_query_id") or "")
    if query is None or query.answered:
        raise bad_request("QUERY_ID_INVALID")
    if fake.clock() - query.asked_at > PRE_CHECKOUT_TIMEOUT:
        raise bad_request("query is too old and response timeout expired or query ID is invalid")
    ok = p.flag("ok")
    if not ok and not p.string("error_message"):
        raise bad_request("error_message is required when ok is false")
    query.answered, query.ok, query.error_message = True, ok, p.string("error_message")
    chat = query.invoice.message.chat
    if not ok:
        fake.note(chat, f"bot refused {query.user.first_name}'s payment: {query.error_message}")
        return True
    _charge(fake, query)
    return True


def _charge(fake: FakeCore, query: PreCheckout) -> Charge:
    """The user is charged: their client sends the successful_payment message the bot receives."""
    invoice, state = query.invoice, fake.payments
    charge_id = f"stxFAKE{state.number():08d}{query.user.id}"
    paid = {
        "currency": invoice.currency, "total_amount": invoice.total_amount,
        "invoice_payload": invoice.payload, "telegram_payment_charge_id": charge_id,
        "provider_payment_charge_id": "",
    }  # fmt: skip
    chat = invoice.message.chat
    message = fake.new_message(chat, query.user, service={"successful_payment": paid})
    charge = Charge(charge_id, query.user, chat, invoice, message, query_id=query.id)
    state.charges[charge_id] = charge
    fake.note(chat, f"#{message.message_id} {query.user.first_name} paid {invoice.total_amount} "
                    f"{invoice.currency} ({charge_id})")  # fmt: skip
    fake.push_update("message", message.to_json())
    return charge


async def refund_star_payment(fake: FakeCore, p: Params) -> Any:
    charge = fake.payments.charges.get(p.string("telegram_payment_charge_id") or "")
    if charge is None or charge.user.id != p.integer("user_id"):
        raise bad_request("CHARGE_NOT_FOUND")
    if charge.refunded:
        raise bad_request("CHARGE_ALREADY_REFUNDED")
    charge.refunded = True
    invoice = charge.invoice
    refunded = {
        "currency": invoice.currency, "total_amount": invoice.total_amount,
        "invoice_payload": invoice.payload, "telegram_payment_charge_id": charge.charge_id,
    }  # fmt: skip
    message = fake.new_message(charge.chat, charge.user, service={"refunded_payment": refunded})
    fake.note(charge.chat, f"#{message.message_id} {charge.user.first_name} was refunded "
                           f"{invoice.total_amount} {invoice.currency} ({charge.charge_id})")  # fmt: skip
    fake.push_update("message", message.to_json())
    return True


METHODS = {
    "sendinvoice": send_invoice,
    "answerprecheckoutquery": answer_pre_checkout_query,
    "refundstarpayment": refund_star_payment,
}
