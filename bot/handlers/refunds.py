"""Admin commands for Stars payments: /refund <charge id> [reason] and /payments <user>.

Same gate and error handling as the other admin commands (bot/handlers/admin.py's `admin_command`: a
non-admin gets the unknown-command reply); the rules are in bot/admin/refunds.py, shared with the CLI.
"""

from __future__ import annotations

from telegram import Message
from telegram.error import BadRequest

from bot.admin import render
from bot.admin.args import AdminError, clean_reason
from bot.admin.ops import AdminOps
from bot.admin.refunds import RefundRefused, payments_of, refund
from bot.handlers.admin import admin_command
from bot.handlers.context import BotContext
from bot.handlers.user_ref import resolve_target
from bot.replies import t
from bot.replies.plural import credits_text
from storage import Payment, User


def payment_lines(lang: str, user: User, payments: list[Payment]) -> str:
    if not payments:
        return t("admin.payments.empty", lang, user=render.who(user))
    lines = [
        t(
            "admin.payments.line", lang, at=render.when(p.paid_at), charge=p.charge_id, credits=p.credits,
            stars=p.stars,
            state=t(f"admin.payments.{p.state}", lang, reversed=p.reversed, shortfall=p.shortfall),
        )
        for p in payments
    ]  # fmt: skip
    return render.fit(lang, [t("admin.payments.title", lang, user=render.who(user))], lines)


async def _refund(message: Message, context: BotContext, ops: AdminOps, args: list[str]) -> str:
    """/refund <charge id> [reason]: give the Stars back and take the credits back."""
    if not args:
        raise AdminError("admin.usage.refund")
    bot = context.bot

    async def refunder(user_id: int, charge_id: str) -> None:
        try:
            await bot.refund_star_payment(user_id, charge_id)
        except BadRequest as exc:
            raise RefundRefused(exc.message) from None

    done = await refund(ops, refunder, args[0], clean_reason(args[1:]))
    payment, lang = done.result.payment, context.lang
    user = await ops.require_user(payment.user_id)
    return t(
        "admin.refund.done", lang, stars=payment.stars, user=render.who(user), charge=payment.charge_id,
        reversed=credits_text(payment.reversed, lang), shortfall=credits_text(payment.shortfall, lang),
        credits=credits_text(done.result.credits, lang),
    )  # fmt: skip


async def _payments(message: Message, context: BotContext, ops: AdminOps, args: list[str]) -> str:
    """/payments <user>: their Stars payments, newest first, with the charge ids /refund takes."""
    target = await resolve_target(ops.store, message, args, usage="admin.usage.payments")
    return payment_lines(context.lang, target.user, await payments_of(ops, target.user.id))


refund_command = admin_command(_refund)
payments_command = admin_command(_payments)
COMMANDS = {"refund": refund_command, "payments": payments_command}
