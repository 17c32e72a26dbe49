"""Chat text for admin answers, built from catalogue keys in the admin's language.

Why separate from the handlers: each admin command answers with the resulting state (a balance, a ledger
tail, a ban), and the same pieces recur (who a user is, a balance line); building them here keeps handlers
to parse -> one call -> reply.

Why the clipping: Telegram refuses a text over 4096 characters, and the lists here grow with the data
(50 audit entries with long reasons are ~12k characters), so free-text fields are shortened per line and a
list keeps its newest lines that fit, saying how many were left out, instead of failing as a whole.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bot.admin.tables import as_row, show
from bot.replies import catalogue, t
from bot.replies.plural import credits_text

#: Telegram's limit for one text message.
MAX_MESSAGE = 4096
#: Free text (reasons, audit details) per line; the full text stays in the store (`portrait-bot admin`).
MAX_FIELD = 120
#: Any one line (a stats line listing every error code) at most this long.
MAX_LINE = 600


def shorten(text: str, limit: int = MAX_FIELD) -> str:
    """One line, at most `limit` characters, with an ellipsis when cut."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def shorten_message(text: str) -> str:
    """The last guard before sending: a text Telegram would refuse is cut (the renderers stay under)."""
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"


def fit(lang: str, head: list[str], lines: list[str], budget: int = MAX_MESSAGE) -> str:
    """`head` then as many of `lines` (newest first) as fit in `budget` characters, and a note of the rest."""
    kept = [shorten(line, MAX_LINE) for line in head]
    used = sum(len(line) + 1 for line in kept)
    for index, line in enumerate(lines):
        line = shorten(line, MAX_LINE)
        note = t("admin.more", lang, count=len(lines) - index)
        last = index == len(lines) - 1
        if used + len(line) + (0 if last else len(note) + 1) > budget:
            return "\n".join([*kept, note])
        kept.append(line)
        used += len(line) + 1
    return "\n".join(kept)


def when(ts: float | None) -> str:
    if not ts:
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


def who(user: Any) -> str:
    """`@ann (123)` or `Ann (123)`: enough to be sure which account was changed."""
    name = f"@{user.username}" if user.username else (user.first_name or "?")
    return f"{name} ({user.id})"


def balance(lang: str, user: Any, bal: Any) -> str:
    return t(
        "admin.balance", lang, user=who(user), free_left=bal.free_left, daily=bal.daily_allowance,
        credits=credits_text(bal.credits, lang), resets=when(bal.resets_at),
    )


def ledger(lang: str, entries: list[Any], budget: int = MAX_MESSAGE) -> str:
    if not entries:
        return t("admin.ledger.empty", lang)
    lines = [
        t(
            "admin.ledger.line", lang, id=e.id, at=when(e.at), kind=e.kind, free=f"{e.free:+d}",
            credits=f"{e.credits:+d}", actor=e.actor if e.actor is not None else "-",
            reason=shorten(e.reason or "-"),
        )
        for e in entries
    ]
    return fit(lang, [t("admin.ledger.title", lang)], lines, budget)


def user_state(lang: str, user: Any) -> str:
    key = "admin.state.banned" if user.banned else "admin.state.active"
    return t(key, lang, user=who(user), role=str(user.role), reason=user.ban_reason or "-")


def banned(lang: str, user: Any, cancelled: list[int]) -> str:
    tasks = ", ".join(f"#{task_id}" for task_id in cancelled) or "-"
    return "\n".join([user_state(lang, user), t("admin.cancelled_tasks", lang, tasks=tasks)])


def stats(lang: str, record: Any) -> str:
    """Every field of the store's Stats, labelled from the catalogue where a label exists."""
    row = as_row(record)
    known = catalogue(lang)
    lines = []
    for name, value in row.items():
        label = known.get(f"admin.stats.{name}", name.replace("_", " "))
        shown = f"{value:.1%}" if name == "success_rate" and isinstance(value, float) else show(name, value)
        lines.append(f"{label}: {shown}")
    return fit(lang, [t("admin.stats.title", lang)], lines)


def audit(lang: str, entries: list[Any]) -> str:
    if not entries:
        return t("admin.audit.empty", lang)
    lines = [
        t(
            "admin.audit.line", lang, at=when(e.at), actor=e.actor, action=shorten(e.action, 40),
            target=shorten(e.target or "-", 40), details=shorten(e.details or "-"),
        )
        for e in entries
    ]
    return fit(lang, [t("admin.audit.title", lang)], lines)
