"""Quotas: a daily free allowance plus credits that never expire, and the ledger behind both.

Model. `quota_accounts` holds the balances the hot path reads (credits, and free units used on `free_day`);
`ledger` holds one row per change, as deltas: `free` is the change to the day's used free units (+1 reserve,
-1 refund), `credits` the change to the credit balance (+n grant, -1 reserve, +1 refund). So for every user
`credits == SUM(ledger.credits)` and `free_used == SUM(ledger.free WHERE day = free_day)`;
`check()` proves it.

The day rolls over lazily: an account whose `free_day` is not today counts as 0 used, and the next write that
touches it starts the new day (with a 'reset' ledger row if units had been used). A refund returns a free unit
to the day it was taken from, so a refund after midnight cannot hand out an extra unit today.

Reserve/commit/refund are not public methods: they run inside tasks.create / tasks.transition, bound to the
task id, guarded by `tasks.reservation = 'held'` and by a unique (task_id, kind) index on the ledger.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .audit import write_audit
from .config_keys import DEFAULT_ALLOWANCE_KEY
from .context import StoreContext
from .db import Row, Session
from .errors import NotFound, QuotaExhausted
from .ledger_check import find_problems

Unit = Literal["free", "credits"]


@dataclass(frozen=True)
class Balance:
    daily_allowance: int
    free_used_today: int
    free_left: int
    credits: int
    resets_at: float  # epoch seconds of the next local midnight


@dataclass(frozen=True)
class LedgerEntry:
    id: int
    user_id: int | None  # None: a change to the default allowance for everyone
    task_id: int | None
    #: grant | adjust | reserve | commit | refund | daily | reset | purchase | purchase_refund | referral
    kind: str
    free: int  # change to the day's used free units
    credits: int  # change to the credit balance
    actor: int | None
    reason: str
    at: float
    day: str | None = None  # the quota day a free-unit change belongs to
    allowance: int | None = None  # the new allowance of a 'daily' entry
    ref: str | None = None  # the outside key of a purchase, its refund or a referral bonus


@dataclass(frozen=True)
class LedgerCheck:
    ok: bool
    problems: list[str]


@dataclass(frozen=True)
class Reservation:
    unit: Unit
    day: str


async def default_allowance(s: Session, ctx: StoreContext) -> int:
    value = await s.value("SELECT value FROM config WHERE key = ?", (DEFAULT_ALLOWANCE_KEY,))
    return ctx.default_daily_quota if value is None else int(value)


async def ledger_row(
    tx: Session,
    *,
    user_id: int | None,
    kind: str,
    at: float,
    task_id: int | None = None,
    free: int = 0,
    credits: int = 0,
    day: str | None = None,
    allowance: int | None = None,
    actor: int | None = None,
    reason: str = "",
    ref: str | None = None,
) -> None:
    await tx.execute(
        "INSERT INTO ledger (user_id, task_id, kind, free, credits, day, allowance, actor, reason, at, ref) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (user_id, task_id, kind, free, credits, day, allowance, actor, reason, at, ref),
    )


async def open_account(tx: Session, ctx: StoreContext, user_id: int, now: float) -> Row:
    """The user's account, created if missing and rolled over to today's quota day."""
    today = ctx.calendar.day(now)
    row = await tx.one("SELECT * FROM quota_accounts WHERE user_id = ?", (user_id,))
    if row is None:
        row = await tx.one(
            "INSERT INTO quota_accounts (user_id, free_day) SELECT id, ? FROM users WHERE id = ? RETURNING *",
            (today, user_id),
        )
        if row is None:
            raise NotFound(f"user {user_id}")
    if row["free_day"] != today:
        if row["free_used"]:
            await ledger_row(
                tx, user_id=user_id, kind="reset", at=now, day=today,
                reason=f"new day; {row['free_day']} ended with {row['free_used']} free used",
            )  # fmt: skip
        row = await tx.one(
            "UPDATE quota_accounts SET free_day = ?, free_used = 0 WHERE user_id = ? RETURNING *",
            (today, user_id),
        )
        assert row is not None
    return row


async def reserve(tx: Session, ctx: StoreContext, user_id: int, now: float) -> Reservation:
    """Take one unit, free first, then credits; the caller writes the task and the 'reserve' ledger row."""
    account = await open_account(tx, ctx, user_id, now)
    allowance = account["daily_allowance"]
    if allowance is None:
        allowance = await default_allowance(tx, ctx)
    day = account["free_day"]
    if account["free_used"] < allowance:
        await tx.execute("UPDATE quota_accounts SET free_used = free_used + 1 WHERE user_id = ?", (user_id,))
        return Reservation("free", day)
    if account["credits"] >= 1:
        await tx.execute("UPDATE quota_accounts SET credits = credits - 1 WHERE user_id = ?", (user_id,))
        return Reservation("credits", day)
    raise QuotaExhausted(user_id, ctx.calendar.next_reset(now))


def reserve_deltas(unit: str) -> tuple[int, int]:
    """(free, credits) ledger deltas of reserving one unit; a refund is the exact opposite."""
    return (1, 0) if unit == "free" else (0, -1)


async def settle(
    tx: Session, task: Row, outcome: Literal["commit", "refund"], now: float, reason: str
) -> bool:
    """Commit or refund a task's held unit exactly once; False if it was already settled."""
    new_state = "committed" if outcome == "commit" else "refunded"
    changed = await tx.execute(
        "UPDATE tasks SET reservation = ? WHERE id = ? AND reservation = 'held'", (new_state, task["id"])
    )
    if not changed:
        return False
    free, credits = (0, 0)
    if outcome == "refund":
        free, credits = (-d for d in reserve_deltas(task["quota_unit"]))
        if task["quota_unit"] == "free":
            # Only the day it came from gets it back; if that day is over, the refund is history only.
            await tx.execute(
                "UPDATE quota_accounts SET free_used = free_used - 1 WHERE user_id = ? AND free_day = ?",
                (task["user_id"], task["quota_day"]),
            )
        else:
            await tx.execute(
                "UPDATE quota_accounts SET credits = credits + 1 WHERE user_id = ?", (task["user_id"],)
            )
    await ledger_row(
        tx,
        user_id=task["user_id"],
        task_id=task["id"],
        kind=outcome,
        at=now,
        free=free,
        credits=credits,
        day=task["quota_day"],
        reason=f"{reason} ({task['quota_unit']})",
    )
    return True


class QuotasRepo:
    def __init__(self, ctx: StoreContext) -> None:
        self._ctx = ctx

    async def balance(self, user_id: int) -> Balance:
        """Today's view; an unknown user sees the default allowance and no credits."""
        async with self._ctx.db.read(snapshot=True) as r:
            return await self._balance(r, user_id, self._ctx.now())

    async def grant(self, user_id: int, amount: int, *, actor: int, reason: str) -> Balance:
        """Add credits, or take them away with a negative amount (an 'adjust'); never below zero."""
        now = self._ctx.now()
        async with self._ctx.db.transaction() as tx:
            account = await open_account(tx, self._ctx, user_id, now)
            delta = max(amount, -account["credits"])
            await tx.execute(
                "UPDATE quota_accounts SET credits = credits + ? WHERE user_id = ?", (delta, user_id)
            )
            kind = "grant" if amount >= 0 else "adjust"
            await ledger_row(
                tx, user_id=user_id, kind=kind, at=now, credits=delta, actor=actor, reason=reason
            )
            details = (
                f"{delta:+d} credits" + (f" (asked {amount:+d})" if delta != amount else "") + f": {reason}"
            )
            await write_audit(tx, actor=actor, action=kind, target=str(user_id), details=details, at=now)
            return await self._balance(tx, user_id, now)

    async def set_daily(self, user_id: int | None, allowance: int | None, *, actor: int, reason: str) -> None:
        """Set one user's daily allowance (None clears the override) or, with user_id=None, the default."""
        if allowance is not None and allowance < 0:
            raise ValueError("a daily allowance cannot be negative")
        if user_id is None and allowance is None:
            raise ValueError("the default daily allowance needs a value")
        now = self._ctx.now()
        async with self._ctx.db.transaction() as tx:
            if user_id is None:
                await tx.execute(
                    "INSERT INTO config (key, value) VALUES (?, ?) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (DEFAULT_ALLOWANCE_KEY, str(allowance)),
                )
            else:
                await open_account(tx, self._ctx, user_id, now)
                await tx.execute(
                    "UPDATE quota_accounts SET daily_allowance = ? WHERE user_id = ?", (allowance, user_id)
                )
            await ledger_row(
                tx, user_id=user_id, kind="daily", at=now, allowance=allowance, actor=actor, reason=reason
            )
            target = "default" if user_id is None else str(user_id)
            await write_audit(
                tx, actor=actor, action="set_daily", target=target, details=f"{allowance}: {reason}", at=now
            )

    async def ledger(self, user_id: int, *, limit: int = 20) -> list[LedgerEntry]:
        """Newest first."""
        async with self._ctx.db.read() as r:
            rows = await r.all(
                "SELECT * FROM ledger WHERE user_id = ? ORDER BY id DESC LIMIT ?", (user_id, limit)
            )
        return [
            LedgerEntry(
                id=row["id"],
                user_id=row["user_id"],
                task_id=row["task_id"],
                kind=row["kind"],
                free=row["free"],
                credits=row["credits"],
                actor=row["actor"],
                reason=row["reason"],
                at=row["at"],
                day=row["day"],
                allowance=row["allowance"],
                ref=row["ref"],
            )
            for row in rows
        ]

    async def check(self) -> LedgerCheck:
        async with self._ctx.db.read(snapshot=True) as r:
            problems = await find_problems(r)
        return LedgerCheck(ok=not problems, problems=problems)

    async def _balance(self, s: Session, user_id: int, now: float) -> Balance:
        account = await s.one("SELECT * FROM quota_accounts WHERE user_id = ?", (user_id,))
        allowance = None if account is None else account["daily_allowance"]
        if allowance is None:
            allowance = await default_allowance(s, self._ctx)
        used = 0
        if account is not None and account["free_day"] == self._ctx.calendar.day(now):
            used = account["free_used"]
        return Balance(
            daily_allowance=allowance,
            free_used_today=used,
            free_left=max(0, allowance - used),
            credits=0 if account is None else account["credits"],
            resets_at=self._ctx.calendar.next_reset(now),
        )
