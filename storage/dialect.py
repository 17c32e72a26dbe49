"""SQLite's spelling of our SQL, translated for PostgreSQL: the one place that knows how the two differ.

Why translate instead of writing every statement twice: the repositories keep one SQL text each (and stay
easy to review and merge), and the differences that matter to them are few and mechanical:

- placeholders: `?` becomes `$1, $2, ...` in order (string literals and quoted names are left alone);
- a parameter tested only for NULL (`? IS NULL`) has no type PostgreSQL can infer, so it is cast to text:
  our only such parameters are lease owners (text or None);
- `x = ? COLLATE NOCASE` becomes `lower(x) = lower(?)` (the PostgreSQL schema indexes `lower(username)`);
- `INSERT OR IGNORE INTO` becomes `INSERT INTO ... ON CONFLICT DO NOTHING`.

Everything else is written in the common subset on purpose: 0/1 integers instead of booleans (both
schemas store INTEGER flags), `SUM(CASE WHEN ... THEN 1 ELSE 0 END)` instead of SQLite's sum of a
comparison, no column aliases in WHERE, `ON CONFLICT ... DO UPDATE SET x = excluded.x`, RETURNING.
The schema differences (AUTOINCREMENT, REAL, BIGINT ids, rebuilt tables) live in the per-backend migration
files, `migrations/` and `migrations/postgresql/`.

A translation is cached per statement text, so the hot path pays for it once per distinct statement.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Literal

#: Which database a store runs on.
Backend = Literal["sqlite", "postgresql"]

# A string literal, a quoted identifier or a line comment: copied unchanged.
_OPAQUE = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|--[^\n]*")
_NOCASE = re.compile(r"([A-Za-z_][\w.]*)\s*=\s*\?\s+COLLATE\s+NOCASE", re.IGNORECASE)
_NULL_TEST = re.compile(r"\?(\s+IS\s+(?:NOT\s+)?NULL\b)", re.IGNORECASE)
_OR_IGNORE = re.compile(r"^\s*INSERT\s+OR\s+IGNORE\s+INTO\b", re.IGNORECASE)
_RETURNING = re.compile(r"\bRETURNING\b", re.IGNORECASE)


@lru_cache(maxsize=2048)
def to_postgres(sql: str) -> str:
    """The PostgreSQL text of one statement written for SQLite (see the module docstring for the rules)."""
    if _OR_IGNORE.match(sql):
        sql = _OR_IGNORE.sub("INSERT INTO", sql, count=1)
        returning = _RETURNING.search(sql)
        at = returning.start() if returning else len(sql.rstrip().rstrip(";"))
        sql = f"{sql[:at].rstrip()} ON CONFLICT DO NOTHING {sql[at:]}".rstrip()
    parts: list[str] = []
    number = 0
    position = 0

    def code(text: str) -> str:
        nonlocal number
        text = _NOCASE.sub(r"lower(\1) = lower(?)", text)
        text = _NULL_TEST.sub(r"?::text\1", text)
        pieces = text.split("?")
        out = pieces[0]
        for piece in pieces[1:]:
            number += 1
            out += f"${number}{piece}"
        return out

    for match in _OPAQUE.finditer(sql):
        parts.append(code(sql[position : match.start()]))
        parts.append(match.group(0))
        position = match.end()
    parts.append(code(sql[position:]))
    return "".join(parts)


def is_postgres_url(target: object) -> bool:
    """True for `postgresql://...` / `postgres://...` (what DATABASE_URL names for the PostgreSQL backend)."""
    return isinstance(target, str) and target.startswith(("postgresql://", "postgres://"))


def sqlite_path(target: str) -> str:
    """The file of a `sqlite:///path` URL (`sqlite:////abs/path`, `sqlite:///rel/path`); other text as is."""
    return target.removeprefix("sqlite://")[1:] if target.startswith("sqlite:///") else target
