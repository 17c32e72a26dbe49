"""/anime (alias /generate), /cancel, the "Again" / "New seed" buttons under a result, and "Send it again"
under the note about a result whose delivery Telegram did not confirm."""

from __future__ import annotations

import random

from telegram import Message, Update

from bot.chat.callbacks import Repeat, SendAgain, parse, stale_answer
from bot.handlers.context import BotContext
from bot.handlers.reply import say, say_error
from bot.handlers.submit import Request, request_from_settings, submit
from bot.handlers.uploads import UploadRejected, accept_image, has_image
from bot.jobs.resend import Resent
from bot.jobs.runner import CancelOutcome
from bot.replies import t

_SEED_RANGE = 2**31 - 1


async def anime(update: Update, context: BotContext) -> None:
    """Start a generation from the stored selfie, style and settings; text after the command is the prompt.

    As a reply to a photo (handy in groups), that photo is the selfie for this portrait.
    """
    message, chat = update.effective_message, update.effective_chat
    if message is None or chat is None:
        return
    prompt = " ".join(context.args) if context.args else None
    try:
        face = await _replied_face(message, context)
    except UploadRejected as rejected:
        await say_error(update, context, rejected.reply)
        return
    request = await request_from_settings(update, context, prompt_override=prompt, face=face)
    if request is not None:
        await submit(update, context, request, origin_key=f"msg:{chat.id}:{message.message_id}")


async def _replied_face(message: Message, context: BotContext) -> str | None:
    """The image `/anime` replies to, checked like an upload; our own portraits do not count as selfies."""
    replied = message.reply_to_message
    if replied is None or not has_image(replied):
        return None
    if replied.from_user is not None and replied.from_user.id == context.bot.id:
        return None
    return (await accept_image(replied, context)).file_id


async def cancel(update: Update, context: BotContext) -> None:
    """Cancel the user's running task(s); the runner refunds them and tells the user in the task's chat.

    A portrait the service has already accepted cannot be stopped upstream and is billed: it is not
    cancelled (that would give free, billed work to a loop of /anime + /cancel); the user is told it counts
    and that it will still arrive (and stay in /history)."""
    user = update.effective_user
    if user is None:
        return
    services = context.services
    active = await services.store.tasks.active_for_user(user.id)
    if not active:
        await say(update, context, "cancel.nothing")
        return
    outcomes = [await services.runner.cancel(task.id) for task in active]
    if CancelOutcome.CANCELLED in outcomes:
        return  # the runner told the user in the task's chat
    if CancelOutcome.STARTED in outcomes:
        await say(update, context, "cancel.started")
    else:
        await say(update, context, "cancel.too_late")


async def repeat(update: Update, context: BotContext) -> None:
    """"Again" repeats a task's exact params; "New seed" changes only the seed."""
    query, user = update.callback_query, update.effective_user
    if query is None or user is None:
        return
    action = parse(query.data)
    task = await context.services.store.tasks.get(action.task_id) if isinstance(action, Repeat) else None
    if not isinstance(action, Repeat) or task is None:
        await query.answer(stale_answer(context.lang))
        return
    if task.user_id != user.id:  # a group member pressing someone else's portrait
        await query.answer(t("callback.not_yours", context.lang), show_alert=True)
        return
    message = update.effective_message
    if message is None or not message.is_accessible:
        # The portrait's message is too old or deleted (Telegram sends it with date 0, which PTB still
        # parses as a Message) or absent: there is nowhere to reply with the status message, so say so now
        # rather than "started" and then nothing.
        await query.answer(stale_answer(context.lang))
        return
    await query.answer(t("repeat.started", context.lang))
    params = dict(task.params)
    if action.new_seed:
        params["seed"] = random.randint(0, _SEED_RANGE)
    request = Request(task.face_file_id, task.style_file_id, params)
    await submit(update, context, request, origin_key=f"cb:{query.id}")


#: Press answers shown as an alert (they end the matter) rather than a passing toast.
_ALERTS = frozenset({Resent.TOO_LATE, Resent.NOT_YOURS, Resent.ALREADY})


async def send_again(update: Update, context: BotContext) -> None:
    """The "Send it again" button: answered at once, the photo follows; a press that could not send says
    why under the note (rules in bot.jobs.resend)."""
    query, user = update.callback_query, update.effective_user
    if query is None or user is None:
        return
    action = parse(query.data)
    if not isinstance(action, SendAgain):
        await query.answer(stale_answer(context.lang))
        return
    resender = context.services.resender
    pressed = await resender.press(action.task_id, user.id, query.id)
    if pressed.outcome is not Resent.SENDING:
        await query.answer(_press_text(pressed.outcome, context.lang), show_alert=pressed.outcome in _ALERTS)
        return
    await query.answer(t("resend.sending", context.lang))
    outcome = await resender.send(pressed, lang=context.lang)
    if outcome is not Resent.SENT:
        await say(update, context, f"resend.{outcome}")


def _press_text(outcome: Resent, lang: str) -> str:
    if outcome is Resent.NOT_YOURS:
        return t("callback.not_yours", lang)
    if outcome is Resent.STALE:
        return stale_answer(lang)
    return t(f"resend.{outcome}", lang)
