"""Chat text for admin answers, built from catalogue keys in the admin's language.

Why separate from the handlers: each admin command answers with the resulting state (a balance, a ledger
tail, a ban), and the same pieces recur (who a user is, a balance line); building them here keeps handlers
to parse -> one call -> reply.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bot.admin.tables import as_row, show
from bot.i18n import catalogue, t


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
        credits=bal.credits, resets=when(bal.resets_at),
    )


def ledger(lang: str, entries: list[Any]) -> str:
    if not entries:
        return t("admin.ledger.empty", lang)
    lines = [
        t(
            "admin.ledger.line", lang, id=e.id, at=when(e.at), kind=e.kind, free=f"{e.free:+d}",
            credits=f"{e.credits:+d}", actor=e.actor if e.actor is not None else "-", reason=e.reason or "-",
        )
        for e in entries
    ]
    return "\n".join([t("admin.ledger.title", lang), *lines])


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
    lines = [t("admin.stats.title", lang)]
    for name, value in row.items():
        label = known.get(f"admin.stats.{name}", name.replace("_", " "))
        shown = f"{value:.1%}" if name == "success_rate" and isinstance(value, float) else show(name, value)
        lines.append(f"{label}: {shown}")
    return "\n".join(lines)


def audit(lang: str, entries: list[Any]) -> str:
    if not entries:
        return t("admin.audit.empty", lang)
    lines = [
        t(
            "admin.audit.line", lang, at=when(e.at), actor=e.actor, action=e.action, target=e.target or "-",
            details=e.details or "-",
        )
        for e in entries
    ]
    return "\n".join([t("admin.audit.title", lang), *lines])
