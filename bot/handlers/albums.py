"""Albums (media groups): two photos sent together are the selfie and the style image.

Telegram delivers each album part as its own update sharing `media_group_id`, and never says the album is
complete. So parts are collected per album, and a short timer restarted by every part fires once the album
has been quiet for `window` seconds; then the parts are handled in message order. The timer runs through
`Application.create_task(..., update=...)` so an exception reaches the error handler like any other.
Albums live in memory only: an album cut short by a restart is simply sent again by the user.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from telegram import Update

from bot.handlers.caption import caption_command
from bot.handlers.context import BotContext
from bot.handlers.images import GENERATE_COMMANDS, generate_now, save_image
from bot.handlers.reply import say, say_error
from bot.handlers.uploads import UploadRejected, accept_image

DEFAULT_WINDOW = 1.0


@dataclass
class _Album:
    parts: list[Update] = field(default_factory=list)


class AlbumCollector:
    """Groups album parts and handles each album once, `window` seconds after its last part."""

    def __init__(self, window: float = DEFAULT_WINDOW) -> None:
        self.window = window
        self._albums: dict[tuple[int, str], _Album] = {}

    async def add(self, update: Update, context: BotContext) -> None:
        message = update.effective_message
        if message is None or message.media_group_id is None:
            return
        key = (message.chat_id, message.media_group_id)
        album = self._albums.setdefault(key, _Album())
        album.parts.append(update)
        context.application.create_task(self._later(key, len(album.parts), context), update=update)

    async def _later(self, key: tuple[int, str], count: int, context: BotContext) -> None:
        """Every part starts a timer; only the timer of the album's last part (nothing newer) handles it."""
        await asyncio.sleep(self.window)
        album = self._albums.get(key)
        if album is None or len(album.parts) != count:
            return  # a newer part arrived and has its own timer
        del self._albums[key]
        await handle_album(sorted(album.parts, key=_message_id), context)


def _message_id(update: Update) -> int:
    return update.effective_message.message_id if update.effective_message else 0


async def handle_album(parts: list[Update], context: BotContext) -> None:
    """First image = selfie, second = style; a generate command in any caption then starts a task."""
    first, user = parts[0], parts[0].effective_user
    if user is None:
        return
    context.services.awaiting.pop(user.id, None)  # the album said which is which
    for slot, part in zip(("face", "style"), parts, strict=False):
        try:
            ref = await accept_image(part.effective_message, context)  # type: ignore[arg-type]
        except UploadRejected as rejected:
            await say_error(part, context, rejected.reply)
            return
        await save_image(context, user.id, slot, ref)
    messages = [p.effective_message for p in parts if p.effective_message is not None]
    commands = [caption_command(m, context.bot.username) for m in messages]
    command = next((c for c in commands if c is not None), None)
    if command is not None and command.name in GENERATE_COMMANDS:
        await generate_now(first, context, command.args)
    else:
        await say(first, context, "album.saved" if len(parts) > 1 else "face.saved")
