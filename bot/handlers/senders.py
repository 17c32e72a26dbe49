"""Who is really speaking: forwarded words and posts made on behalf of a chat never act as the sender's own.

Forwarded messages: the text (and its command entity) is someone else's, but `from` is the forwarder. PTB's
CommandHandler does not look at `forward_origin`, so a forwarded `/grant @ann 5` ran as the forwarder's
command, and admins forward users' messages routinely (docs/ADMIN.md: forward, then reply with a command).
So a forwarded message that starts with a command is stopped before any handler; in a private chat the
sender hears why (admins also hear how to act on the forwarded message's author: reply to it). Forwarded
messages without a command go on as usual: a forwarded photo is still a selfie, and a reply to a forwarded
message still names its original sender (bot/handlers/user_ref.py).

Posts on behalf of a chat (`sender_chat` set): an anonymous group admin posts as the group itself (`from`
is GroupAnonymousBot), a member may post as one of their channels (`from` is Channel_Bot). Neither is a
person with a quota, so they must never reach task creation (before this, each such message ended in an
apology and an admin alert, which let anyone flood the admin chat). They hear "post as yourself"; the one
exception is `/group`, which the group's anonymous admins may use (docs/GROUPS.md). A linked channel's
posts copied into its discussion group (`is_automatic_forward`) are the channel's, not a request: ignored.
"""

from __future__ import annotations

import logging

from telegram import Message, MessageEntity, Update
from telegram.constants import ChatID, ChatType
from telegram.ext import ApplicationHandlerStop

from bot.handlers.context import BotContext
from bot.handlers.permissions import is_bot_admin
from bot.handlers.reply import say

log = logging.getLogger(__name__)

#: Telegram's stand-in accounts for posts made on behalf of a chat.
STAND_IN_IDS = frozenset({ChatID.ANONYMOUS_ADMIN, ChatID.FAKE_CHANNEL, ChatID.SERVICE_CHAT})
#: What an anonymous admin may still do: the group's own settings (they are its admins).
GROUP_SETTINGS_COMMANDS = frozenset({"group", "groupsettings"})


def starts_with_command(message: Message) -> bool:
    """Text or caption starting with a bot command (Telegram marks it with an entity at offset 0)."""
    for entity in (*message.entities, *message.caption_entities):
        if entity.type == MessageEntity.BOT_COMMAND and entity.offset == 0:
            return True
    return (message.text or message.caption or "").startswith("/")


def leading_command(message: Message) -> str | None:
    """The command word a text or caption starts with, lower-case, without `/` and `@bot`."""
    text = message.text or message.caption or ""
    if not text.startswith("/"):
        return None
    return text.split(maxsplit=1)[0][1:].partition("@")[0].lower()


def posted_on_behalf_of_chat(message: Message) -> bool:
    """Sent as the group (anonymous admin), as a channel, or by one of Telegram's stand-in accounts."""
    sender = message.from_user
    return message.sender_chat is not None or (sender is not None and sender.id in STAND_IN_IDS)


async def refuse_chat_senders(update: Update, context: BotContext) -> None:
    """Stop posts made on behalf of a chat, politely, except an anonymous admin's `/group`."""
    message = update.message
    if message is None or not posted_on_behalf_of_chat(message):
        return
    if message.is_automatic_forward:
        raise ApplicationHandlerStop  # the linked channel's own post: nothing was asked of us
    as_group = message.sender_chat is not None and message.sender_chat.id == message.chat.id
    if as_group and leading_command(message) in GROUP_SETTINGS_COMMANDS:
        return
    log.info("chat %s: a post on behalf of chat %s refused", message.chat.id, _sender_chat_id(message))
    await say(update, context, "sender.anonymous_admin" if as_group else "sender.channel")
    raise ApplicationHandlerStop


async def refuse_forwarded_command(update: Update, context: BotContext) -> None:
    """Stop a forwarded message that starts with a command; explain in private chats, stay quiet in groups."""
    message, user = update.message, update.effective_user
    if message is None or user is None or message.forward_origin is None:
        return
    if not starts_with_command(message):
        return
    log.info("user %s forwarded a command; not run", user.id)
    if message.chat.type == ChatType.PRIVATE:
        admin = is_bot_admin(context, user.id)
        await say(update, context, "forwarded.command_admin" if admin else "forwarded.command")
    raise ApplicationHandlerStop


def _sender_chat_id(message: Message) -> int | None:
    return message.sender_chat.id if message.sender_chat is not None else None
