"""/start (also with an invite deep link), /help, unknown commands and stray text: the bot explains itself."""

from __future__ import annotations

from telegram import Update

from bot.chat.callbacks import stale_answer
from bot.handlers import invite
from bot.handlers.context import BotContext
from bot.handlers.reply import say
from bot.replies.plural import credits_text


async def start(update: Update, context: BotContext) -> None:
    """Welcome, the three steps, and today's quota so nobody is surprised later."""
    user = update.effective_user
    if user is None:
        return
    claim = await invite.claim_from_start(update, context)  # before the welcome, so it shows the bonus
    balance = await context.services.store.quotas.balance(user.id)
    await say(
        update,
        context,
        "start.welcome",
        name=user.first_name,
        free_left=balance.free_left,
        daily=balance.daily_allowance,
        credits=credits_text(balance.credits, context.lang),
    )
    if claim is not None:
        await invite.announce(update, context, claim)


async def help_command(update: Update, context: BotContext) -> None:
    """Every command with an example."""
    await say(update, context, "help.text", max_prompt=context.services.settings.max_prompt_length)


async def unknown_command(update: Update, context: BotContext) -> None:
    """A command we do not have: name it back and point at /help."""
    message = update.effective_message
    if message is None or not message.text:
        return
    command, _, target = message.text.split()[0].partition("@")
    if target and target.lower() != (context.bot.username or "").lower():
        return  # addressed to another bot in the same group
    await say(update, context, "unknown.command", command=command)


async def text_hint(update: Update, context: BotContext) -> None:
    """Plain text in a private chat: say what to send instead of staying silent."""
    await say(update, context, "hint.send_selfie")


async def stale_button(update: Update, context: BotContext) -> None:
    """A button we no longer understand (older version, forged): a polite toast, nothing else."""
    if update.callback_query is not None:
        await update.callback_query.answer(stale_answer(context.lang))
