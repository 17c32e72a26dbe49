"""The bot's profile as Telegram keeps it: command menus per scope and language, and its descriptions.

Telegram picks the menu a user sees by the most specific scope that has commands (a chat, then all private
chats or all groups, then default) and by the user's language; a `chat` scope must name a chat the bot can
reach ("chat not found" otherwise, e.g. an admin who never opened the bot). Descriptions are per language
too: the description shows in an empty chat before Start, the short one on the bot's profile.
"""

from __future__ import annotations

import json
from typing import Any

from fake_telegram.core import FakeCore
from fake_telegram.errors import bad_request
from fake_telegram.params import Params

SCOPES = {
    "default", "all_private_chats", "all_group_chats", "all_chat_administrators", "chat",
    "chat_administrators", "chat_member",
}  # fmt: skip
DESCRIPTION_LIMITS = {"description": 512, "short_description": 120}


def scope_key(scope: dict[str, Any] | None, language_code: str | None) -> str:
    """The key `fake.commands` is stored under: the scope JSON (sorted) and the language."""
    return f"{json.dumps(scope or {'type': 'default'}, sort_keys=True)}|{language_code or ''}"


def checked_scope(fake: FakeCore, p: Params) -> str:
    scope = p.obj("scope") or {"type": "default"}
    if not isinstance(scope, dict) or scope.get("type") not in SCOPES:
        raise bad_request("BOT_COMMAND_SCOPE_INVALID")
    if scope["type"].startswith("chat"):
        chat_id = scope.get("chat_id")
        if chat_id is None:
            raise bad_request("chat_id is empty")
        fake.find_chat(chat_id if isinstance(chat_id, str) else int(chat_id))
    language = p.string("language_code") or ""
    if language and not (len(language) == 2 and language.isalpha() and language.islower()):
        raise bad_request("LANG_CODE_INVALID")
    return scope_key(scope, language)


def _set(kind: str) -> Any:
    async def method(fake: FakeCore, p: Params) -> Any:
        text = p.string(kind) or ""
        if len(text) > DESCRIPTION_LIMITS[kind]:
            raise bad_request(f"{kind.upper()}_INVALID")
        key = (kind, p.string("language_code") or "")
        if text:
            fake.descriptions[key] = text
        else:
            fake.descriptions.pop(key, None)
        return True

    return method


def _get(kind: str) -> Any:
    async def method(fake: FakeCore, p: Params) -> Any:
        language = p.string("language_code") or ""
        text = fake.descriptions.get((kind, language), fake.descriptions.get((kind, ""), ""))
        return {kind: text}

    return method


METHODS = {
    "setmydescription": _set("description"),
    "getmydescription": _get("description"),
    "setmyshortdescription": _set("short_description"),
    "getmyshortdescription": _get("short_description"),
}
