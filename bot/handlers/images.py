"""Photos and image files: the selfie, the style image, and commands written in their captions.

A photo on its own is the selfie, unless the user just sent /style (then it is the style image) or /face;
`/style` or `/face` as a reply to a photo stores that photo at once (the way to do it in groups).
A caption starting with a command works like that command: `/style` stores the style image, `/face` the
selfie, `/anime cute, smiling` stores the selfie and generates with that prompt. Album parts are handed to
the album collector, which waits for the whole album. In groups, a photo without a command for us is
ordinary chatter and is ignored. `/style clear` drops the stored style image (the same fields the
/settings button writes: `bot.preferences.table.STYLE_IMAGE`), since a style image can be what the
content check or the copyright check refuses, and nothing else would ever remove it.
"""

from __future__ import annotations

from telegram import Message, Update

from bot.handlers.caption import CaptionCommand, caption_command
from bot.handlers.context import BotContext
from bot.handlers.prompt import CLEAR_WORDS
from bot.handlers.reply import say, say_error
from bot.handlers.submit import request_from_settings, submit
from bot.handlers.uploads import ImageRef, UploadRejected, accept_image, has_image
from bot.preferences.table import STYLE_IMAGE

GENERATE_COMMANDS = frozenset({"anime", "generate"})
SLOTS = ("face", "style")


async def face(update: Update, context: BotContext) -> None:
    """/face: the next photo is the selfie; as a reply to a photo, that photo is."""
    await _expect(update, context, "face")


async def style(update: Update, context: BotContext) -> None:
    """/style: the next photo is the style image; as a reply to a photo, that photo is. `/style clear`
    drops the stored one."""
    if " ".join(context.args or ()).lower() in CLEAR_WORDS:
        await clear_style(update, context)
    else:
        await _expect(update, context, "style")


async def clear_style(update: Update, context: BotContext) -> None:
    """`/style clear`: forget the style image (and a pending /style); say so, or that there was none."""
    user = update.effective_user
    if user is None:
        return
    if context.services.awaiting.get(user.id) == "style":
        context.services.awaiting.pop(user.id, None)
    users = context.services.store.users
    if (await users.get_settings(user.id)).style_file_id is None:
        await say(update, context, "style.none")
        return
    await users.update_settings(user.id, **STYLE_IMAGE.changes(STYLE_IMAGE.default))
    await say(update, context, "style.cleared")


async def _expect(update: Update, context: BotContext, slot: str) -> None:
    """Wait for the next photo, or take the replied one at once. The reply form is what works in groups:
    with privacy mode on the bot never sees the next plain photo there, nor the uncaptioned parts of an
    album, so "album = selfie + style" becomes `/style` replying to the style image, then `/anime` replying
    to the selfie."""
    message, user = update.effective_message, update.effective_user
    if message is None or user is None:
        return
    replied = message.reply_to_message
    own = replied is not None and replied.from_user is not None and replied.from_user.id == context.bot.id
    if replied is not None and has_image(replied) and not (slot == "face" and own):
        ref = await _accept(update, context, replied)
        if ref is not None:
            context.services.awaiting.pop(user.id, None)
            await save_image(context, user.id, slot, ref)
            await say(update, context, f"{slot}.saved")
        return
    context.services.awaiting[user.id] = slot
    await say(update, context, await _waiting_key(context, user.id, slot))


async def _waiting_key(context: BotContext, user_id: int, slot: str) -> str:
    """The "send it now" reply; for a style image already stored it also says how to remove it."""
    if slot == "style" and (await context.services.store.users.get_settings(user_id)).style_file_id:
        return "style.waiting_replace"
    return f"{slot}.waiting"


async def on_image(update: Update, context: BotContext) -> None:
    """Store the photo in the right slot; a generate command in the caption then starts a task."""
    message, user = update.effective_message, update.effective_user
    if message is None or user is None:
        return
    if message.media_group_id:
        await context.services.albums.add(update, context)
        return
    command = caption_command(message, context.bot.username)
    if command is None and message.chat.type != "private":
        return
    ref = await _accept(update, context, message)
    if ref is None:
        return
    slot = slot_for(command, context.services.awaiting.pop(user.id, None))
    await save_image(context, user.id, slot, ref)
    if command is not None and command.name in GENERATE_COMMANDS:
        await generate_now(update, context, command.args)
    else:
        await say(update, context, f"{slot}.saved")


def slot_for(command: CaptionCommand | None, awaiting: str | None) -> str:
    """Caption command first, then what /face or /style asked for, else the selfie."""
    if command is not None and command.name in SLOTS:
        return command.name
    if command is not None and command.name in GENERATE_COMMANDS:
        return "face"
    return awaiting if awaiting in SLOTS else "face"


async def _accept(update: Update, context: BotContext, message: Message) -> ImageRef | None:
    try:
        return await accept_image(message, context)
    except UploadRejected as rejected:
        await say_error(update, context, rejected.reply)
        return None


async def save_image(context: BotContext, user_id: int, slot: str, ref: ImageRef) -> None:
    """Remember the image as the user's pending selfie or style image (file ids only)."""
    users = context.services.store.users
    if slot == "style":
        await users.update_settings(user_id, style_file_id=ref.file_id, style_unique_id=ref.unique_id)
    else:
        await users.update_settings(user_id, selfie_file_id=ref.file_id, selfie_unique_id=ref.unique_id)


async def generate_now(update: Update, context: BotContext, prompt: str) -> None:
    """The `/anime text` caption: generate with this message as the origin (re-delivery safe)."""
    message, chat = update.effective_message, update.effective_chat
    request = await request_from_settings(update, context, prompt_override=prompt or None)
    if request is not None and message is not None and chat is not None:
        await submit(update, context, request, origin_key=f"msg:{chat.id}:{message.message_id}")
