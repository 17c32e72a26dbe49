"""Records to plain rows, and rows to an aligned text table or JSON, for `portrait-bot admin`.

Why generic: the store's records are frozen dataclasses; turning them into dicts once lets the same row feed
the table a person reads, the JSON a script parses and the CSV an export writes, with no field listed twice.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from enum import Enum
from typing import Any

TIME_FIELDS = frozenset(
    {"first_seen", "last_seen", "at", "created_at", "updated_at", "finished_at", "resets_at", "lease_until",
     "next_poll_at"}
)


def as_row(record: Any) -> dict[str, Any]:
    """A dataclass (or mapping) as a JSON-safe dict: enums become their values, nested records dicts."""
    if dataclasses.is_dataclass(record) and not isinstance(record, type):
        data = {f.name: getattr(record, f.name) for f in dataclasses.fields(record)}
    elif isinstance(record, Mapping):
        data = dict(record)
    else:
        raise TypeError(f"cannot turn {type(record).__name__} into a row")
    return {str(k): _plain(v) for k, v in data.items()}


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return as_row(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    return value


def show(name: str, value: Any) -> str:
    """One cell for people: epoch seconds as UTC time, None as '-', containers compact."""
    if value is None:
        return "-"
    if name in TIME_FIELDS and isinstance(value, int | float) and value > 0:
        return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={show(str(k), v)}" for k, v in value.items()) or "-"
    if isinstance(value, list):
        return "; ".join(show(name, v) for v in value) or "-"
    return str(value).replace("\n", " ")


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    """An aligned plain-text table; an empty result says so instead of printing a bare header."""
    if not rows:
        return "(none)"
    cols = list(columns or rows[0].keys())
    cells = [[show(c, row.get(c)) for c in cols] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(cols)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines)


def fields_block(row: Mapping[str, Any]) -> str:
    """One record as `name: value` lines, for `user <id>` and `stats`."""
    width = max((len(k) for k in row), default=0)
    return "\n".join(f"{k.ljust(width)}  {show(k, v)}" for k, v in row.items())


def to_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2, sort_keys=False, default=str)


def rows_of(records: Iterable[Any]) -> list[dict[str, Any]]:
    return [as_row(r) for r in records]
