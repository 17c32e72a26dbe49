"""The message catalogue: every text a user sees comes from `en.json` / `zh.json` through `t()`.

Why a catalogue: user-facing text scattered through handlers drifts between languages and invites
`str(exc)` replies. Keys are named after the situation (`error.risk.input_image`), placeholders are
`{named}`, and every language has the same keys and placeholders (a test checks).
"""

from __future__ import annotations

import json
import logging
from functools import cache
from importlib import resources

DEFAULT_LANGUAGE = "en"
LANGUAGES = ("en", "zh")
log = logging.getLogger(__name__)


@cache
def catalogue(lang: str) -> dict[str, str]:
    text = resources.files("bot.replies").joinpath(f"{lang}.json").read_text(encoding="utf-8")
    data: dict[str, str] = json.loads(text)
    return data


def pick_language(language_code: str | None) -> str:
    """Map Telegram's `language_code` (`zh-hans`, `en-US`, absent) to a catalogue we have."""
    if language_code:
        base = language_code.lower().split("-")[0].split("_")[0]
        if base in LANGUAGES:
            return base
    return DEFAULT_LANGUAGE


def t(key: str, lang: str | None = None, /, **values: object) -> str:
    """Text for `key` in `lang`, falling back to English; a missing key is logged, never shown raw."""
    lang = lang if lang in LANGUAGES else DEFAULT_LANGUAGE
    template = catalogue(lang).get(key) or catalogue(DEFAULT_LANGUAGE).get(key)
    if template is None:
        log.error("missing catalogue key %r", key)
        template = catalogue(lang).get("error.unexpected") or "Sorry, something went wrong."
    try:
        return template.format(**values)
    except (KeyError, IndexError, ValueError):
        log.exception("bad placeholders for catalogue key %r", key)
        return template
