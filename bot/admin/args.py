"""Argument checks shared by the chat commands and `portrait-bot admin`.

Why one module: an operator typing `/grant @ann 1e9` in Telegram and `portrait-bot admin grant 7 1e9` on a
server must meet the same rules and the same explanation. Every refusal is an `AdminError` carrying a
catalogue key, so the chat answers in the admin's language and the CLI prints the English text.
"""

from __future__ import annotations

import re

#: Largest credit grant or daily allowance accepted in one go: a typo guard, not a business rule.
MAX_AMOUNT = 1_000_000
MAX_REASON = 200

_INTEGER = re.compile(r"[+-]?\d{1,12}")


class AdminError(Exception):
    """A refusal the admin should read: `key` names the catalogue text, `values` fill its placeholders."""

    def __init__(self, key: str, **values: object) -> None:
        super().__init__(key)
        self.key = key
        self.values = values


def parse_amount(text: str, *, allow_negative: bool, allow_zero: bool) -> int:
    """An integer within +-MAX_AMOUNT; signs, zero and size refused with a message saying which rule."""
    cleaned = text.strip().replace("_", "")
    if not _INTEGER.fullmatch(cleaned):
        raise AdminError("admin.error.not_a_number", value=text[:20])
    amount = int(cleaned)
    if amount < 0 and not allow_negative:
        raise AdminError("admin.error.negative", value=amount)
    if amount == 0 and not allow_zero:
        raise AdminError("admin.error.zero")
    if abs(amount) > MAX_AMOUNT:
        raise AdminError("admin.error.too_big", value=text[:20], max=MAX_AMOUNT)
    return amount


def clean_reason(words: list[str] | str | None) -> str:
    """Free text kept short and on one line so the audit log stays readable."""
    if words is None:
        return ""
    text = words if isinstance(words, str) else " ".join(words)
    return " ".join(text.split())[:MAX_REASON]
