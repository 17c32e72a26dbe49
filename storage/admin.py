"""Admin views: the audit log of admin actions and the numbers behind /stats."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from .audit import write_audit
from .context import StoreContext
from .db import Session

TOP_USERS = 5


@dataclass(frozen=True)
class AuditEntry:
    id: int
    actor: int
    action: str
    target: str | None
    details: str
    at: float


@dataclass(frozen=True)
class TopUser:
    user_id: int
    username: str | None
    done: int  # tasks delivered (units spent)


@dataclass(frozen=True)
class Stats:
    at: float
    users_total: int
    active_today: int  # seen since the quota time zone's midnight
    active_7d: int  # seen in the last 7 * 24 h
    tasks_by_state: Mapping[str, int]
    tasks_by_error: Mapping[str, int]
    success_rate: float | None  # done / (done + failed + expired); user cancellations are not failures
    latency_p50: float | None  # seconds from created to finished, done tasks, nearest-rank percentile
    latency_p95: float | None
    quota_spent: int  # committed units, all time
    quota_spent_free: int
    quota_spent_credits: int
    quota_spent_today: int  # committed units of tasks finished since local midnight
    top_users: tuple[TopUser, ...]


class AdminRepo:
    def __init__(self, ctx: StoreContext) -> None:
        self._ctx = ctx

    async def audit(self, actor: int, action: str, *, target: str | None = None, details: str = "") -> None:
        async with self._ctx.db.transaction() as tx:
            await write_audit(
                tx, actor=actor, action=action, target=target, details=details, at=self._ctx.now()
            )

    async def audit_log(self, *, limit: int = 20) -> list[AuditEntry]:
        """Newest first."""
        async with self._ctx.db.read() as r:
            rows = await r.all("SELECT * FROM audit_log ORDER BY id DESC LIMIT ?", (limit,))
        return [
            AuditEntry(
                id=r["id"],
                actor=r["actor"],
                action=r["action"],
                target=r["target"],
                details=r["details"],
                at=r["at"],
            )
            for r in rows
        ]

    async def stats(self, *, now: float | None = None) -> Stats:
        at = self._ctx.now() if now is None else now
        day_start = self._ctx.calendar.day_start(at)
        async with self._ctx.db.read(snapshot=True) as r:
            users = await r.one(
                "SELECT COUNT(*) AS total, "
                "COALESCE(SUM(CASE WHEN last_seen >= ? THEN 1 ELSE 0 END), 0) AS today, "
                "COALESCE(SUM(CASE WHEN last_seen >= ? THEN 1 ELSE 0 END), 0) AS week FROM users",
                (day_start, at - 7 * 86400),
            )
            assert users is not None
            by_state = {
                row[0]: row[1] for row in await r.all("SELECT state, COUNT(*) FROM tasks GROUP BY state")
            }
            by_error = {
                row[0]: row[1]
                for row in await r.all(
                    "SELECT error_code, COUNT(*) FROM tasks WHERE error_code IS NOT NULL "
                    "GROUP BY error_code ORDER BY COUNT(*) DESC"
                )
            }
            p50, p95 = await _latency(r, (0.50, 0.95))
            spent = await r.one(
                "SELECT COUNT(*) AS total, "
                "COALESCE(SUM(CASE WHEN quota_unit = 'free' THEN 1 ELSE 0 END), 0) AS free, "
                "COALESCE(SUM(CASE WHEN quota_unit = 'credits' THEN 1 ELSE 0 END), 0) AS credits, "
                "COALESCE(SUM(CASE WHEN finished_at >= ? THEN 1 ELSE 0 END), 0) AS today "
                "FROM tasks WHERE reservation = 'committed'",
                (day_start,),
            )
            assert spent is not None
            top = await r.all(
                "SELECT t.user_id, u.username, COUNT(*) AS done "
                "FROM tasks t LEFT JOIN users u ON u.id = t.user_id "
                "WHERE t.state = 'done' GROUP BY t.user_id, u.username ORDER BY done DESC, t.user_id LIMIT ?",
                (TOP_USERS,),
            )
        done = by_state.get("done", 0)
        judged = done + by_state.get("failed", 0) + by_state.get("expired", 0)
        return Stats(
            at=at,
            users_total=users["total"],
            active_today=users["today"],
            active_7d=users["week"],
            tasks_by_state=by_state,
            tasks_by_error=by_error,
            success_rate=done / judged if judged else None,
            latency_p50=p50,
            latency_p95=p95,
            quota_spent=spent["total"],
            quota_spent_free=spent["free"],
            quota_spent_credits=spent["credits"],
            quota_spent_today=spent["today"],
            top_users=tuple(TopUser(row["user_id"], row["username"], row["done"]) for row in top),
        )


async def _latency(r: Session, quantiles: tuple[float, ...]) -> tuple[float | None, ...]:
    """Nearest-rank percentiles picked in SQL (one row each), so 100k finished tasks never reach Python."""
    count = await r.value("SELECT COUNT(*) FROM tasks WHERE state = 'done'")
    if not count:
        return tuple(None for _ in quantiles)
    result: list[float | None] = []
    for q in quantiles:
        rank = max(1, math.ceil(q * count))
        value = await r.value(
            "SELECT finished_at - created_at AS d FROM tasks WHERE state = 'done' "
            "ORDER BY d LIMIT 1 OFFSET ?",
            (rank - 1,),
        )
        result.append(float(value))
    return tuple(result)
