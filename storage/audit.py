"""Writing an audit row inside the caller's transaction, so an admin action and its record commit together."""

from __future__ import annotations

from .db import Session


async def write_audit(
    tx: Session, *, actor: int, action: str, target: str | None, details: str, at: float
) -> None:
    await tx.execute(
        "INSERT INTO audit_log (actor, action, target, details, at) VALUES (?, ?, ?, ?, ?)",
        (actor, action, target, details, at),
    )
