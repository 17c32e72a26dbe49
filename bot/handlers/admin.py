"""Bot-admin commands in a private chat: /admin /grant /setdaily /quota <user> /ban /unban /stats /audit.

Why they look the way they do:
- A stranger learns nothing: a non-admin gets exactly the unknown-command reply (the same function answers),
  and the attempt is logged with the user id.
- Each command answers with the resulting state (balance, role, ban), so the admin sees what happened
  without a second command. Refusals name the rule (unknown user, negative, too big, usage).
- The rules themselves live in bot/admin/ops.py, shared with `portrait-bot admin`; the store writes the
  audit row in the same transaction as the change.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from telegram import Message, Update
from telegram.ext import BaseHandler, CommandHandler, filters

from bot.admin import render
from bot.admin.args import AdminError, clean_reason, parse_amount
from bot.admin.ops import AdminOps
from bot.handlers import account
from bot.handlers.context import BotContext
from bot.handlers.permissions import is_bot_admin
from bot.handlers.start import unknown_command
from bot.handlers.user_ref import resolve_target
from bot.jobs.outcomes import BAN_REASON
from bot.jobs.runner import CancelOutcome
from bot.replies import t

log = logging.getLogger(__name__)

Body = Callable[[Message, BotContext, AdminOps, list[str]], Awaitable[str]]
Handler = Callable[[Update, BotContext], Coroutine[Any, Any, None]]


def _ops(context: BotContext, actor: int) -> AdminOps:
    services = context.services
    runner = services.runner

    async def cancel(task_id: int) -> bool:
        return await runner.cancel(task_id, reason=BAN_REASON) is CancelOutcome.CANCELLED

    return AdminOps(services.store, actor=actor, owners=services.settings.admin_ids, cancel=cancel)


def admin_command(body: Body) -> Handler:
    """Admin gate + error-to-reply wrapper around one command body that returns the reply text."""

    async def handler(update: Update, context: BotContext) -> None:
        message, user = update.effective_message, update.effective_user
        if message is None or user is None:
            return
        if not is_bot_admin(context, user.id):
            log.warning("refused admin command %r from user %s", (message.text or "")[:40], user.id)
            await unknown_command(update, context)
            return
        try:
            text = await body(message, context, _ops(context, user.id), list(context.args or []))
        except AdminError as exc:
            text = render_error(exc, context.lang)
        await message.reply_text(render.shorten_message(text), do_quote=True)

    handler.__doc__ = body.__doc__
    return handler


def render_error(exc: AdminError, lang: str) -> str:
    return t(exc.key, lang, **exc.values)


async def _admin(message: Message, context: BotContext, ops: AdminOps, args: list[str]) -> str:
    """/admin add|remove <user> [reason]: owners promote or demote bot admins."""
    if not args or args[0].lower() not in ("add", "remove"):
        raise AdminError("admin.usage.admin")
    target = await resolve_target(ops.store, message, args[1:], usage="admin.usage.admin")
    user = await ops.set_admin(target.user.id, args[0].lower() == "add", clean_reason(target.rest))
    return render.user_state(context.lang, user)


async def _grant(message: Message, context: BotContext, ops: AdminOps, args: list[str]) -> str:
    """/grant <user> <n> [reason]: add credits (a negative n takes some back)."""
    target = await resolve_target(ops.store, message, args, usage="admin.usage.grant")
    if not target.rest:
        raise AdminError("admin.usage.grant")
    amount = parse_amount(target.rest[0], allow_negative=True, allow_zero=False)
    balance = await ops.grant(target.user.id, amount, clean_reason(target.rest[1:]))
    return render.balance(context.lang, target.user, balance)


async def _setdaily(message: Message, context: BotContext, ops: AdminOps, args: list[str]) -> str:
    """/setdaily <user|default> <n> [reason]: the daily free allowance of one user or of everyone."""
    if args and args[0].lower() == "default":
        if len(args) < 2:
            raise AdminError("admin.usage.setdaily")
        allowance = parse_amount(args[1], allow_negative=False, allow_zero=True)
        await ops.set_daily(None, allowance, clean_reason(args[2:]))
        return t("admin.default_daily", context.lang, daily=allowance)
    target = await resolve_target(ops.store, message, args, usage="admin.usage.setdaily")
    if not target.rest:
        raise AdminError("admin.usage.setdaily")
    allowance = parse_amount(target.rest[0], allow_negative=False, allow_zero=True)
    balance = await ops.set_daily(target.user.id, allowance, clean_reason(target.rest[1:]))
    return render.balance(context.lang, target.user, balance)


async def _quota(message: Message, context: BotContext, ops: AdminOps, args: list[str]) -> str:
    """/quota <user>: an admin's view of someone's balance and ledger tail."""
    target = await resolve_target(ops.store, message, args, usage="admin.usage.quota")
    view = await ops.quota(target.user.id)
    state = render.user_state(context.lang, view.user)
    head = "\n".join([state, render.balance(context.lang, view.user, view.balance)])
    budget = render.MAX_MESSAGE - len(head) - 1
    return "\n".join([head, render.ledger(context.lang, view.ledger, budget)])


async def _ban(message: Message, context: BotContext, ops: AdminOps, args: list[str]) -> str:
    """/ban <user> [reason]: ban, and cancel + refund their running tasks."""
    target = await resolve_target(ops.store, message, args, usage="admin.usage.ban")
    result = await ops.ban(target.user.id, clean_reason(target.rest))
    return render.banned(context.lang, result.user, result.cancelled)


async def _unban(message: Message, context: BotContext, ops: AdminOps, args: list[str]) -> str:
    """/unban <user> [reason]."""
    target = await resolve_target(ops.store, message, args, usage="admin.usage.unban")
    return render.user_state(context.lang, await ops.unban(target.user.id, clean_reason(target.rest)))


async def _stats(message: Message, context: BotContext, ops: AdminOps, args: list[str]) -> str:
    """/stats: users, tasks, success rate, errors, latency, quota used (today and 7 days)."""
    return render.stats(context.lang, await ops.stats())


async def _audit(message: Message, context: BotContext, ops: AdminOps, args: list[str]) -> str:
    """/audit [n]: the latest admin actions, newest first."""
    limit = parse_amount(args[0], allow_negative=False, allow_zero=False) if args else 10
    return render.audit(context.lang, await ops.audit_log(limit=min(limit, 50)))


admin = admin_command(_admin)
grant = admin_command(_grant)
setdaily = admin_command(_setdaily)
admin_quota_view = admin_command(_quota)
ban = admin_command(_ban)
unban = admin_command(_unban)
stats = admin_command(_stats)
audit = admin_command(_audit)


async def admin_quota(update: Update, context: BotContext) -> bool:
    """`/quota <user>` for admins; False when it does not apply (no argument, or not an admin), so the
    user's own /quota handler answers instead and a stranger learns nothing."""
    user = update.effective_user
    if not context.args or user is None or not is_bot_admin(context, user.id):
        return False
    await admin_quota_view(update, context)
    return True


async def quota_with_args(update: Update, context: BotContext) -> None:
    """`/quota <something>`: the admin view for admins; anyone else simply gets their own quota."""
    if not await admin_quota(update, context):
        await account.quota(update, context)


COMMANDS: dict[str, Handler] = {
    "admin": admin, "grant": grant, "setdaily": setdaily, "ban": ban, "unban": unban, "stats": stats,
    "audit": audit,
}


def admin_handlers() -> list[BaseHandler[Update, BotContext, None]]:
    """Register above the user's `CommandHandler("quota", ...)`: `/quota <user>` (with an argument) is
    taken here and handed back to account.quota for non-admins. Private chats only: in a group these
    commands fall through to the unknown-command reply."""
    private = filters.ChatType.PRIVATE
    handlers: list[BaseHandler[Update, BotContext, None]] = [
        CommandHandler(name, callback, filters=private) for name, callback in COMMANDS.items()
    ]
    handlers.append(CommandHandler("quota", quota_with_args, filters=private, has_args=True))
    return handlers
