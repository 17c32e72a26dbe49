"""/prompt: the user's own words, joined to the style preset's prompt at generation time."""

from __future__ import annotations

import unicodedata

from telegram import Update

from bot.handlers.context import BotContext
from bot.handlers.reply import say
from bot.jobs.params import DEFAULT_PRESET, PRESET_PROMPTS, prompt_limit

CLEAR_WORDS = frozenset({"clear", "reset", "none", "清除"})


async def prompt(update: Update, context: BotContext) -> None:
    """`/prompt` shows it, `/prompt clear` removes it, `/prompt <text>` sets it (within the length limit)."""
    user = update.effective_user
    if user is None:
        return
    users = context.services.store.users
    text = visible_words(" ".join(context.args or ()))
    if not text:
        current = (await users.get_settings(user.id)).prompt
        await say(update, context, "prompt.current" if current else "prompt.none", prompt=current)
    elif text.lower() in CLEAR_WORDS:
        await users.update_settings(user.id, prompt="")
        await say(update, context, "prompt.cleared")
    else:
        preset = (await users.get_settings(user.id)).preset
        preset_prompt = PRESET_PROMPTS.get(preset, PRESET_PROMPTS[DEFAULT_PRESET])
        limit = prompt_limit(preset_prompt, context.services.settings.max_prompt_length)
        if len(text) > limit:
            await say(update, context, "error.prompt_too_long", length=len(text), limit=limit)
            return
        await users.update_settings(user.id, prompt=text)
        await say(update, context, "prompt.saved", prompt=text)


def visible_words(text: str) -> str:
    """The text without control characters, or "" when nothing visible is left (only zero-width spaces,
    joiners or direction marks, which `split()` keeps as words): such words are no words."""
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Cc").strip()
    return text if any(unicodedata.category(ch)[0] not in "ZC" for ch in text) else ""
