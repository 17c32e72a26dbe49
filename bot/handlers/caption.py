"""Commands in photo captions, which PTB's CommandHandler never sees.

`/anime cute, smiling` as a photo caption means "use this photo as the selfie, then generate with that
prompt". Telegram marks the command with a `bot_command` caption entity at offset 0; in groups it may be
`/anime@OurBot`, and `/anime@OtherBot` is not for us.
"""

from __future__ import annotations

from dataclasses import dataclass

from telegram import Message, MessageEntity


@dataclass(frozen=True)
class CaptionCommand:
    name: str  # lower-case, without "/" and "@bot"
    args: str  # the rest of the caption, stripped


def caption_command(message: Message, bot_username: str) -> CaptionCommand | None:
    """The command a caption starts with, if it is addressed to us (or to nobody in particular)."""
    caption = message.caption or ""
    for entity in message.caption_entities or ():
        if entity.type == MessageEntity.BOT_COMMAND and entity.offset == 0:
            # Offsets are UTF-16 code units; parse_caption_entity does the conversion.
            word = message.parse_caption_entity(entity)
            name, _, target = word[1:].partition("@")
            if target and target.lower() != bot_username.lower():
                return None
            return CaptionCommand(name.lower(), caption[len(word) :].strip())
    return None
