"""Telegram Stars purchases: crediting a payment exactly once, and reversing it on a refund.

Why the payment row and the ledger row commit together: Telegram delivers `successful_payment` again when
the bot dies before confirming the update, and a bot may also see it twice for other reasons. The payment
row is keyed by `telegram_payment_charge_id` (its primary key), and the ledger's `purchase` entry carries
the same id in `ref` under a unique index; `record()` inserts the payment with ON CONFLICT DO NOTHING and
adds the credits only when that insert happened, all in one transaction. A crash before the commit leaves
nothing (the redelivery credits), a crash after it leaves everything (the redelivery finds the row).

A refund takes the pack's credits back, but never below zero: credits already spent are the `shortfall`,
recorded on the payment and in the ledger entry's reason, so the operator sees what the refund cost.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .audit import write_audit
from .context import StoreContext
from .db import Row
from .errors import NotFound, StorageError
from .quotas import ledger_row, open_account

PaymentState = Literal["paid", "refunded"]


class AlreadyRefunded(StorageError):
    """The payment was refunded before: nothing changed."""

    def __init__(self, charge_id: str) -> None:
        self.charge_id = charge_id
        super().__init__(f"payment {charge_id} is already refunded")


@dataclass(frozen=True)
class Payment:
    charge_id: str
    user_id: int
    credits: int
    stars: int
    currency: str
    payload: str
    state: PaymentState
    reversed: int  # credits taken back by the refund
    shortfall: int  # credits the refund could not take back (already spent)
    paid_at: float
    refunded_at: float | None
    refunded_by: int | None


@dataclass(frozen=True)
class PurchaseResult:
    payment: Payment
    credited: bool  # False: this charge was recorded before (a redelivered update)
    credits: int  # the balance afterwards


@dataclass(frozen=True)
class RefundResult:
    payment: Payment
    credits: int  # the balance afterwards


@dataclass(frozen=True)
class CreditSources:
    """Where a user's credits came from, for /quota (all time, net of refunds)."""

    purchased: int
    referral: int
    purchases: int  # payments not refunded


def payment_from_row(row: Row) -> Payment:
    return Payment(
        charge_id=row["charge_id"],
        user_id=row["user_id"],
        credits=row["credits"],
        stars=row["stars"],
        currency=row["currency"],
        payload=row["payload"],
        state=row["state"],
        reversed=row["reversed"],
        shortfall=row["shortfall"],
        paid_at=row["paid_at"],
        refunded_at=row["refunded_at"],
        refunded_by=row["refunded_by"],
    )


class PaymentsRepo:
    def __init__(self, ctx: StoreContext) -> None:
        self._ctx = ctx

    async def record(
        self,
        charge_id: str,
        *,
        user_id: int,
        credits: int,
        stars: int,
        currency: str,
        payload: str,
        provider_charge_id: str = "",
    ) -> PurchaseResult:
        """Credit a successful payment once; the same charge id again changes nothing (credited=False)."""
        if not charge_id:
            raise ValueError("a payment needs its telegram_payment_charge_id")
        if credits <= 0 or stars <= 0:
            raise ValueError("a payment buys a positive number of credits for a positive number of stars")
        now = self._ctx.now()
        async with self._ctx.db.transaction() as tx:
            await open_account(tx, self._ctx, user_id, now)
            inserted = await tx.one(
                "INSERT INTO payments (charge_id, user_id, provider_charge_id, credits, stars, currency, "
                "payload, paid_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (charge_id) DO NOTHING "
                "RETURNING *",
                (charge_id, user_id, provider_charge_id, credits, stars, currency, payload, now),
            )
            row: Row | None = inserted
            if inserted is not None:
                await tx.execute(
                    "UPDATE quota_accounts SET credits = credits + ? WHERE user_id = ?", (credits, user_id)
                )
                await ledger_row(
                    tx, user_id=user_id, kind="purchase", at=now, credits=credits, ref=charge_id,
                    reason=f"{stars} {currency}",
                )  # fmt: skip
            else:
                row = await tx.one("SELECT * FROM payments WHERE charge_id = ?", (charge_id,))
            assert row is not None
            balance = await tx.value(
                "SELECT credits FROM quota_accounts WHERE user_id = ?", (row["user_id"],)
            )
        return PurchaseResult(payment_from_row(row), credited=inserted is not None, credits=int(balance))

    async def get(self, charge_id: str) -> Payment | None:
        async with self._ctx.db.read() as r:
            row = await r.one("SELECT * FROM payments WHERE charge_id = ?", (charge_id,))
        return None if row is None else payment_from_row(row)

    async def for_user(self, user_id: int, *, limit: int = 20) -> list[Payment]:
        """Newest first."""
        async with self._ctx.db.read() as r:
            rows = await r.all(
                "SELECT * FROM payments WHERE user_id = ? ORDER BY paid_at DESC, rowid DESC LIMIT ?",
                (user_id, limit),
            )
        return [payment_from_row(row) for row in rows]

    async def refund(self, charge_id: str, *, actor: int, reason: str = "") -> RefundResult:
        """Mark refunded and take the credits back, as far as the balance allows (the rest: shortfall)."""
        now = self._ctx.now()
        async with self._ctx.db.transaction() as tx:
            row = await tx.one("SELECT * FROM payments WHERE charge_id = ?", (charge_id,))
            if row is None:
                raise NotFound(f"payment {charge_id}")
            if row["state"] == "refunded":
                raise AlreadyRefunded(charge_id)
            user_id = row["user_id"]
            account = await open_account(tx, self._ctx, user_id, now)
            reversed_ = min(row["credits"], account["credits"])
            shortfall = row["credits"] - reversed_
            await tx.execute(
                "UPDATE quota_accounts SET credits = credits - ? WHERE user_id = ?", (reversed_, user_id)
            )
            row = await tx.one(
                "UPDATE payments SET state = 'refunded', reversed = ?, shortfall = ?, refunded_at = ?, "
                "refunded_by = ? WHERE charge_id = ? RETURNING *",
                (reversed_, shortfall, now, actor, charge_id),
            )
            assert row is not None
            note = f"refund of {row['stars']} {row['currency']}" + (
                f"; {shortfall} credits already spent" if shortfall else ""
            )
            if reason:
                note += f": {reason}"
            await ledger_row(
                tx, user_id=user_id, kind="purchase_refund", at=now, credits=-reversed_, actor=actor,
                reason=note, ref=charge_id,
            )  # fmt: skip
            await write_audit(tx, actor=actor, action="refund", target=str(user_id), details=note, at=now)
            balance = await tx.value("SELECT credits FROM quota_accounts WHERE user_id = ?", (user_id,))
        return RefundResult(payment_from_row(row), credits=int(balance))

    async def sources(self, user_id: int) -> CreditSources:
        async with self._ctx.db.read(snapshot=True) as r:
            row = await r.one(
                "SELECT COALESCE(SUM(CASE WHEN kind IN ('purchase', 'purchase_refund') THEN credits END), 0) "
                "AS purchased, COALESCE(SUM(CASE WHEN kind = 'referral' THEN credits END), 0) AS referral "
                "FROM ledger WHERE user_id = ?",
                (user_id,),
            )
            count = await r.value(
                "SELECT COUNT(*) FROM payments WHERE user_id = ? AND state = 'paid'", (user_id,)
            )
        assert row is not None
        return CreditSources(purchased=row["purchased"], referral=row["referral"], purchases=int(count))
