"""Turn `<user>` in an admin command into a stored user.

Accepted, in this order:
- a reply to that user's message: in a private chat with the bot that is a *forwarded* message of theirs
  (the admin forwards it, then replies to it with `/grant 5`); in a group, a reply to their message. When the
  reply names someone, every argument is left for the command (`/grant 5 thanks` as a reply);
- a numeric Telegram id (`123456`);
- an @username the bot has seen (`@ann`, looked up case-insensitively with store.users.find).

Why only users the bot has seen: a grant to an id nobody uses is almost always a typo, and the store keeps
quota accounts only for known users. A user who never talked to the bot is reported as unknown.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from telegram import Message, MessageOriginUser

from bot.admin.args import AdminError
from storage import Store, User

_NUMERIC = re.compile(r"-?\d{1,15}")
_USERNAME = re.compile(r"@?[A-Za-z][A-Za-z0-9_]{2,31}")


@dataclass(frozen=True)
class Target:
    """The user a command is about and the arguments left after naming them."""

    user: User
    rest: list[str]


def replied_user_id(message: Message) -> int | None:
    """The user a reply points at: the original sender of a forwarded message, else the replied sender.

    Replies to the bot's own messages or to the admin's own messages name nobody (they are just replies).
    """
    replied = message.reply_to_message
    if replied is None:
        return None
    origin = replied.forward_origin
    if isinstance(origin, MessageOriginUser):
        return origin.sender_user.id
    sender = replied.from_user
    if sender is None or sender.is_bot:
        return None
    if message.from_user is not None and sender.id == message.from_user.id:
        return None
    return sender.id


def looks_like_user(text: str) -> bool:
    return bool(_NUMERIC.fullmatch(text) or (text.startswith("@") and _USERNAME.fullmatch(text)))


async def resolve_target(store: Store, message: Message, args: list[str], *, usage: str) -> Target:
    """The target of `/cmd <user> ...` or of a reply; AdminError(usage) when none is named."""
    replied = replied_user_id(message)
    if replied is not None:
        return Target(await _known(store, replied), list(args))
    if not args:
        raise AdminError(usage)
    ref = args[0]
    if _NUMERIC.fullmatch(ref):
        return Target(await _known(store, int(ref)), args[1:])
    if not _USERNAME.fullmatch(ref):
        raise AdminError(usage)
    user = await store.users.find(ref if ref.startswith("@") else "@" + ref)
    if user is None:
        raise AdminError("admin.error.unknown_user", user=ref)
    return Target(user, args[1:])


async def _known(store: Store, user_id: int) -> User:
    user = await store.users.get(user_id)
    if user is None:
        raise AdminError("admin.error.unknown_user", user=user_id)
    return user
