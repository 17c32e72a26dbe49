"""/quota, /history and /lang: what the user has, what they did, and which language they read."""

from __future__ import annotations

from telegram import Update

from bot.handlers.context import BotContext
from bot.handlers.reply import say
from bot.replies import LANGUAGES, t
from bot.replies.plural import credits_text
from bot.replies.timefmt import clock_time, reset_time
from storage import UNCONFIRMED, Task, TaskState

HISTORY_LIMIT = 10


async def quota(update: Update, context: BotContext) -> None:
    """Free portraits left today, credits (and where they came from), when the allowance comes back."""
    message = update.effective_message
    if update.effective_user is None or message is None:
        return
    services, lang = context.services, context.lang
    balance = await services.store.quotas.balance(update.effective_user.id)
    resets = reset_time(balance.resets_at, services.settings.quota_timezone, lang)
    lines = [
        t(
            "quota.text", lang, free_left=balance.free_left, daily=balance.daily_allowance,
            credits=balance.credits, resets=resets,
        )
    ]  # fmt: skip
    lines.extend(await credit_sources(context, update.effective_user.id))
    await message.reply_text("\n".join(lines), do_quote=True)


async def credit_sources(context: BotContext, user_id: int) -> list[str]:
    """Purchases and invite bonuses (net of refunds), and how to get more when either feature is on."""
    services, lang = context.services, context.lang
    sources = await services.store.payments.sources(user_id)
    lines = []
    if sources.purchased:
        lines.append(t("quota.purchased", lang, credits=credits_text(sources.purchased, lang)))
    if sources.referral:
        lines.append(t("quota.referral", lang, credits=credits_text(sources.referral, lang)))
    if services.settings.credit_packs:
        lines.append(t("quota.buy_hint", lang))
    if services.settings.referral_bonus:
        lines.append(t("quota.invite_hint", lang))
    return lines


async def history(update: Update, context: BotContext) -> None:
    """The last generations, newest first, with their state."""
    if update.effective_user is None:
        return
    services = context.services
    tasks = await services.store.tasks.recent_for_user(update.effective_user.id, limit=HISTORY_LIMIT)
    if not tasks:
        await say(update, context, "history.empty")
        return
    lines = [
        t(
            "history.line",
            context.lang,
            id=task.id,
            when=clock_time(task.created_at, services.settings.quota_timezone),
            state=t(f"state.{_state(task)}", context.lang),
        )
        for task in tasks
    ]
    await say(update, context, "history.text", lines="\n".join(lines))


def _state(task: Task) -> str:
    """A done task whose photo Telegram never confirmed reads as such until "Send it again" delivered it."""
    if task.state is TaskState.DONE and task.error_code == UNCONFIRMED and task.result_file_id is None:
        return "unconfirmed"
    return task.state.value


async def lang(update: Update, context: BotContext) -> None:
    """`/lang en` or `/lang zh`; alone it shows the choices."""
    user = update.effective_user
    choice = (context.args or [""])[0].lower()
    if user is None:
        return
    if choice not in LANGUAGES:
        await say(update, context, "lang.usage", current=t(f"language.{context.lang}", context.lang))
        return
    await context.services.store.users.set_language(user.id, choice)
    context.lang = choice
    await say(update, context, "lang.set", language=t(f"language.{choice}", choice))
