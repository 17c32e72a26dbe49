"""Credits for Telegram Stars: /buy, the invoice, the pre-checkout answer, crediting, /paysupport.

The flow Telegram defines for digital goods: /buy shows the packs (CREDIT_PACKS) as buttons; a tap sends
an invoice in XTR with an empty provider token and the payload `pack:<credits>:<stars>`; the user's "Pay"
makes Telegram ask a `pre_checkout_query`, which must be answered within 10 seconds; only then is the user
charged, and a `successful_payment` message arrives with a unique `telegram_payment_charge_id`.

Why the two payment updates are handled before every gate (group -4, see bot/app.py):
- the pre-checkout answer must always be given, and fast: a banned user, a stranger in private mode or a
  pack no longer on sale (or sold at another price) gets `ok=False` with a reason in their language, not
  silence from a gate that stopped the update (which would leave Telegram waiting out its 10 seconds);
- a successful payment is money already taken, so it is credited whatever happened since (a ban, a
  changed allow list, a removed pack): the store's row keyed by the charge id makes a redelivery of the
  same update (after a crash, or twice) change nothing, and the user is told either way.
"""

from __future__ import annotations

import logging

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, LabeledPrice, Update
from telegram.ext import ApplicationHandlerStop

from bot.config import Settings
from bot.config_values import CreditPack
from bot.handlers.access import is_allowed
from bot.handlers.context import BotContext
from bot.handlers.reply import say
from bot.replies import pick_language, t
from bot.replies.plural import credits_text

log = logging.getLogger(__name__)

CURRENCY = "XTR"
BUTTON_PREFIX = "buy:"


def quota_exhausted_extras(settings: Settings, lang: str) -> list[str]:
    """Lines to add under the quota-exhausted reply: /buy when packs are on, the support contact if set."""
    extras = []
    if settings.credit_packs:
        extras.append(t("quota.exhausted.buy", lang))
    if settings.support_contact:
        extras.append(t("quota.exhausted.support", lang, contact=settings.support_contact))
    return extras


def _pack(settings: Settings, credits: int, stars: int | None = None) -> CreditPack | None:
    """The pack on sale now with these credits (and this price, when given)."""
    for pack in settings.credit_packs:
        if pack.credits == credits and (stars is None or pack.stars == stars):
            return pack
    return None


async def buy(update: Update, context: BotContext) -> None:
    """The packs as buttons; `/buy 10` sends the invoice for the 10-credit pack straight away."""
    settings, lang = context.services.settings, context.lang
    if not settings.credit_packs:
        await say(update, context, "buy.off")
        return
    chosen = (context.args or [""])[0]
    if chosen.isdigit():
        pack = _pack(settings, int(chosen))
        if pack is None:
            await say(update, context, "buy.unknown_pack")
        else:
            await _send_invoice(update, context, pack)
        return
    rows = [
        [InlineKeyboardButton(
            t("buy.button", lang, credits=credits_text(p.credits, lang), stars=p.stars),
            callback_data=f"{BUTTON_PREFIX}{p.credits}:{p.stars}",
        )]
        for p in settings.credit_packs
    ]  # fmt: skip
    await say(update, context, "buy.menu", reply_markup=InlineKeyboardMarkup(rows))


async def on_buy_button(update: Update, context: BotContext) -> None:
    """A pack button: the invoice for that pack, if it is still on sale at that price."""
    query = update.callback_query
    if query is None or query.data is None:
        return
    credits, _, stars = query.data.removeprefix(BUTTON_PREFIX).partition(":")
    pack = _pack(context.services.settings, int(credits), int(stars)) if (credits + stars).isdigit() else None
    if pack is None:
        await query.answer(t("buy.unknown_pack", context.lang), show_alert=True)
        return
    await query.answer()
    await _send_invoice(update, context, pack)


async def _send_invoice(update: Update, context: BotContext, pack: CreditPack) -> None:
    chat = update.effective_chat
    if chat is None:
        return
    lang = context.lang
    amount = credits_text(pack.credits, lang)
    await context.bot.send_invoice(
        chat.id,
        title=t("buy.invoice.title", lang, credits=amount)[:32],
        description=t("buy.invoice.description", lang, credits=amount)[:255],
        payload=pack.payload,
        currency=CURRENCY,
        prices=[LabeledPrice(amount, pack.stars)],
        provider_token="",
    )


async def pre_checkout(update: Update, context: BotContext) -> None:
    """Answer at once: ok for a pack on sale at that price to an allowed, unbanned user; else why not."""
    query = update.pre_checkout_query
    if query is None:
        return
    services = context.services
    account = await services.store.users.get(query.from_user.id)
    lang = pick_language(account.language if account is not None else query.from_user.language_code)
    pack = CreditPack.from_payload(query.invoice_payload)
    refusal = None
    if not is_allowed(update, services.settings):
        refusal = "pay.refused.private"
    elif account is not None and account.banned:
        refusal = "pay.refused.banned"
    elif (
        query.currency != CURRENCY
        or pack is None
        or _pack(services.settings, pack.credits, pack.stars) is None
        or query.total_amount != pack.stars
    ):
        refusal = "pay.refused.pack"
    if refusal is None:
        await query.answer(ok=True)
    else:
        user_id = query.from_user.id
        log.info("refused a pre-checkout of %s: %s", user_id, refusal, extra={"user_id": user_id})
        await query.answer(ok=False, error_message=t(refusal, lang))
    raise ApplicationHandlerStop


async def successful_payment(update: Update, context: BotContext) -> None:
    """Credit the pack named in the payload, once per charge id, and say so (also on a redelivery)."""
    message, user = update.effective_message, update.effective_user
    payment = message.successful_payment if message is not None else None
    if message is None or user is None or payment is None:
        return
    pack = CreditPack.from_payload(payment.invoice_payload)
    if pack is None or payment.currency != CURRENCY or payment.total_amount != pack.stars:
        # Only our own invoices can be paid to this bot; anything else is a bug worth an operator's look.
        log.error("payment %s with an unknown payload %r", payment.telegram_payment_charge_id,
                  payment.invoice_payload, extra={"user_id": user.id})  # fmt: skip
        raise ApplicationHandlerStop
    store = context.services.store
    account = await store.users.upsert_seen(
        user.id, username=user.username, first_name=user.first_name, language_code=user.language_code
    )
    result = await store.payments.record(
        payment.telegram_payment_charge_id, user_id=user.id, credits=pack.credits, stars=payment.total_amount,
        currency=payment.currency, payload=payment.invoice_payload,
        provider_charge_id=payment.provider_payment_charge_id,
    )  # fmt: skip
    lang = pick_language(account.language)
    outcome = "credited" if result.credited else "seen again"
    log.info("payment %s: %s", outcome, payment.telegram_payment_charge_id,
             extra={"user_id": user.id, "chat_id": message.chat_id})  # fmt: skip
    balance = credits_text(result.credits, lang)
    if result.credited:
        text = t("buy.thanks", lang, credits=credits_text(pack.credits, lang), balance=balance)
    else:
        text = t("buy.already", lang, balance=balance)
    await message.reply_text(text, do_quote=True)
    raise ApplicationHandlerStop


async def paysupport(update: Update, context: BotContext) -> None:
    """What Telegram requires of sellers: how to get help with a payment."""
    contact = context.services.settings.support_contact
    lines = [t("paysupport.text", context.lang)]
    if contact:
        lines.append(t("paysupport.contact", context.lang, contact=contact))
    else:
        lines.append(t("paysupport.no_contact", context.lang))
    message = update.effective_message
    if message is not None:
        await message.reply_text("\n".join(lines), do_quote=True)
