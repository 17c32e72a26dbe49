"""Refunding a Stars payment: Telegram gives the Stars back, the store takes the credits back.

Why Telegram first and the store second: the Stars are the user's money, the credits only our record of
it. If Telegram refuses (unknown charge, network), nothing changes here and the admin is told why. If the
process dies after Telegram refunded but before the store recorded it, the admin simply runs the refund
again: Telegram answers CHARGE_ALREADY_REFUNDED, which counts as done, and the store records it then.
Credits are taken back only as far as the balance goes; what was already spent is the recorded shortfall.

Shared by the chat command (/refund, /payments) and `portrait-bot admin refund|payments`; the caller
passes how to reach Telegram (`Refunder`), so this module imports no telegram.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bot.admin.args import AdminError
from bot.admin.ops import AdminOps
from storage import AlreadyRefunded, NotFound, Payment, RefundResult

#: Calls refundStarPayment(user_id, charge_id); raises RefundRefused with Telegram's reason.
Refunder = Callable[[int, str], Awaitable[object]]
ALREADY_REFUNDED = "CHARGE_ALREADY_REFUNDED"


class RefundRefused(Exception):
    """Telegram did not refund; `reason` is its description (shown to the admin, never to users)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Refunded:
    result: RefundResult
    telegram_had_refunded: bool  # Telegram said it was refunded before (a retried refund)


async def refund(ops: AdminOps, refunder: Refunder, charge_id: str, reason: str = "") -> Refunded:
    """Refund one payment by its telegram_payment_charge_id."""
    charge_id = charge_id.strip()
    payment = await ops.store.payments.get(charge_id)
    if payment is None:
        raise AdminError("admin.refund.unknown", charge=charge_id[:80])
    if payment.state == "refunded":
        raise AdminError("admin.refund.already", charge=charge_id)
    earlier = False
    try:
        await refunder(payment.user_id, charge_id)
    except RefundRefused as exc:
        if ALREADY_REFUNDED.lower() not in exc.reason.lower():
            raise AdminError("admin.refund.failed", error=exc.reason[:200]) from None
        earlier = True
    try:
        result = await ops.store.payments.refund(charge_id, actor=ops.actor, reason=ops.why(reason))
    except AlreadyRefunded:  # another admin was quicker
        raise AdminError("admin.refund.already", charge=charge_id) from None
    except NotFound:  # pragma: no cover - checked above, payments are never deleted
        raise AdminError("admin.refund.unknown", charge=charge_id) from None
    return Refunded(result, earlier)


async def payments_of(ops: AdminOps, user_id: int, limit: int = 20) -> list[Payment]:
    await ops.require_user(user_id)
    return await ops.store.payments.for_user(user_id, limit=limit)
