"""Counts in words: "1 credit", "2 credits" in English, "2 个积分" in Chinese.

Why a helper and not `{n} credits` in every message: English needs a singular, Chinese has no plural form,
and other languages would need more forms. A counted noun has one catalogue key per plural category
(`credits.one`, `credits.other`, CLDR's names) with a `{count}` placeholder; `count_text` picks the
category for the language and fills it in, and messages take the result as an ordinary placeholder.
"""

from __future__ import annotations

from bot.replies.catalog import t


def plural_category(count: int, lang: str) -> str:
    """CLDR plural category of an integer: English has one/other, Chinese only other."""
    if lang == "zh":
        return "other"
    return "one" if count == 1 else "other"


def count_text(noun: str, count: int, lang: str) -> str:
    """`noun` is a catalogue key prefix with `.one` / `.other` forms, e.g. count_text("credits", 1, "en")."""
    return t(f"{noun}.{plural_category(count, lang)}", lang, count=count)


def credits_text(count: int, lang: str) -> str:
    return count_text("credits", count, lang)
