"""Invite codes and referral bonuses: both sides get the bonus once, for a user new to the bot.

Why the rules live here, in one transaction: "once per invited user" is the `referrals` primary key,
"never yourself" a CHECK and a test here, and both bonus entries carry `ref = 'referral:<invitee>'` under
the ledger's unique index, so a repeated `/start ref_...` (or a redelivered update) cannot pay twice.
"New to the bot" has two halves: the caller says whether this update is the user's first (the gate saw the
user for the first time), and the store refuses anyone who already has a history (ledger entries or tasks),
so a user who somehow got a second "first" update still cannot collect.

Codes are random (not the user id), so a link does not reveal who shared it and cannot be guessed.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from enum import StrEnum

from .context import StoreContext
from .db import Session
from .errors import NotFound
from .quotas import ledger_row, open_account

CODE_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"  # no 0/o, 1/l: codes get read aloud and retyped
CODE_LENGTH = 10


class ClaimOutcome(StrEnum):
    CREDITED = "credited"
    UNKNOWN_CODE = "unknown_code"
    SELF = "self"
    NOT_NEW = "not_new"  # the invitee had used the bot before this link
    ALREADY = "already"  # the invitee was referred before
    INVITER_BANNED = "inviter_banned"


@dataclass(frozen=True)
class Claim:
    outcome: ClaimOutcome
    inviter_id: int | None = None
    bonus: int = 0
    invitee_credits: int = 0  # balances afterwards (0 when nothing was credited)
    inviter_credits: int = 0


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def referral_ref(invitee_id: int) -> str:
    return f"referral:{invitee_id}"


class ReferralsRepo:
    def __init__(self, ctx: StoreContext) -> None:
        self._ctx = ctx

    async def code_for(self, user_id: int) -> str:
        """The user's invite code, made on first use and the same ever after."""
        async with self._ctx.db.read() as r:
            code = await r.value("SELECT code FROM referral_codes WHERE user_id = ?", (user_id,))
        if code is not None:
            return str(code)
        async with self._ctx.db.transaction() as tx:
            if await tx.value("SELECT 1 FROM users WHERE id = ?", (user_id,)) is None:
                raise NotFound(f"user {user_id}")
            while True:  # a clash among 32**10 codes is astronomically rare, but cheap to survive
                row = await tx.one(
                    "INSERT INTO referral_codes (user_id, code, created_at) VALUES (?, ?, ?) "
                    "ON CONFLICT DO NOTHING RETURNING code",
                    (user_id, new_code(), self._ctx.now()),
                )
                if row is not None:
                    return str(row["code"])
                existing = await tx.value("SELECT code FROM referral_codes WHERE user_id = ?", (user_id,))
                if existing is not None:
                    return str(existing)

    async def claim(self, invitee_id: int, code: str, *, bonus: int, first_update: bool) -> Claim:
        """Credit `bonus` to both sides if every rule holds; otherwise say which rule refused it."""
        if bonus <= 0:
            raise ValueError("a referral bonus must be positive (the feature is off at 0)")
        now = self._ctx.now()
        async with self._ctx.db.transaction() as tx:
            inviter = await tx.one(
                "SELECT u.id, u.banned FROM referral_codes c JOIN users u ON u.id = c.user_id "
                "WHERE c.code = ?",
                (code,),
            )
            if inviter is None:
                return Claim(ClaimOutcome.UNKNOWN_CODE)
            inviter_id = int(inviter["id"])
            if inviter_id == invitee_id:
                return Claim(ClaimOutcome.SELF, inviter_id)
            if await tx.value("SELECT 1 FROM referrals WHERE invitee_id = ?", (invitee_id,)) is not None:
                return Claim(ClaimOutcome.ALREADY, inviter_id)
            if not first_update or await _has_history(tx, invitee_id):
                return Claim(ClaimOutcome.NOT_NEW, inviter_id)
            if inviter["banned"]:
                return Claim(ClaimOutcome.INVITER_BANNED, inviter_id)
            await tx.execute(
                "INSERT INTO referrals (invitee_id, inviter_id, bonus, at) VALUES (?, ?, ?, ?)",
                (invitee_id, inviter_id, bonus, now),
            )
            credits: dict[int, int] = {}
            sides = ((invitee_id, f"invited by {inviter_id}"), (inviter_id, f"invited {invitee_id}"))
            for user_id, reason in sides:
                await open_account(tx, self._ctx, user_id, now)
                row = await tx.one(
                    "UPDATE quota_accounts SET credits = credits + ? WHERE user_id = ? RETURNING credits",
                    (bonus, user_id),
                )
                assert row is not None
                credits[user_id] = int(row["credits"])
                await ledger_row(
                    tx, user_id=user_id, kind="referral", at=now, credits=bonus, reason=reason,
                    ref=referral_ref(invitee_id),
                )  # fmt: skip
        return Claim(ClaimOutcome.CREDITED, inviter_id, bonus, credits[invitee_id], credits[inviter_id])

    async def invited_count(self, inviter_id: int) -> int:
        async with self._ctx.db.read() as r:
            return int(await r.value("SELECT COUNT(*) FROM referrals WHERE inviter_id = ?", (inviter_id,)))


async def _has_history(tx: Session, user_id: int) -> bool:
    """Anything the user did or got before: ledger entries or tasks."""
    if await tx.value("SELECT 1 FROM ledger WHERE user_id = ? LIMIT 1", (user_id,)) is not None:
        return True
    return await tx.value("SELECT 1 FROM tasks WHERE user_id = ? LIMIT 1", (user_id,)) is not None
