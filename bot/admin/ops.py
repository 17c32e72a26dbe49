"""Admin operations shared by the chat commands and the operator CLI.

Why a layer between the handlers and the store: both front ends must refuse the same things (unknown user,
a ban on an owner, credits below zero) and leave the same audit trail, and neither should know SQL. Each
method validates, makes the store call, and returns the resulting state so the caller can show it. The store
writes the audit row in the same transaction as the change (grant, set_daily, set_role, ban, unban), with
the actor and the reason given here.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bot.admin.args import AdminError, clean_reason
from storage import AuditEntry, Balance, LedgerEntry, Role, Stats, StorageError, Store, TaskState, User

log = logging.getLogger(__name__)

#: Actor id recorded for actions taken from the command line (no Telegram user has id 0); the OS user
#: running the CLI is appended to the reason as `via cli:<name>`.
CLI_ACTOR = 0

#: Task states a ban can still stop; a task already delivering finishes (its result is paid for).
CANCELLABLE = frozenset({TaskState.QUEUED, TaskState.SUBMITTING, TaskState.SUBMITTED, TaskState.POLLING})

CancelTask = Callable[[int], Awaitable[object]]


@dataclass(frozen=True)
class QuotaView:
    user: User
    balance: Balance
    ledger: list[LedgerEntry]


@dataclass(frozen=True)
class BanResult:
    user: User
    cancelled: list[int]


class AdminOps:
    """One admin's (or the CLI's) view of the store. `cancel` stops a running task and refunds it."""

    def __init__(
        self,
        store: Store,
        *,
        actor: int,
        owners: frozenset[int] = frozenset(),
        cancel: CancelTask | None = None,
        via: str = "",
    ) -> None:
        self.store = store
        self.actor = actor
        self.owners = owners
        self._cancel = cancel
        self._via = via

    def _why(self, reason: str) -> str:
        reason = clean_reason(reason)
        if not self._via:
            return reason
        return f"{reason} (via {self._via})" if reason else f"via {self._via}"

    def why(self, reason: str) -> str:
        """The reason as recorded: cleaned, with the front end (`via cli:<name>`) appended."""
        return self._why(reason)

    async def require_user(self, user_id: int) -> User:
        user = await self.store.users.get(user_id)
        if user is None:
            raise AdminError("admin.error.unknown_user", user=user_id)
        return user

    async def grant(self, user_id: int, amount: int, reason: str = "") -> Balance:
        """Add (or with a negative amount, take back) credits; never leaves a balance below zero."""
        await self.require_user(user_id)
        before = await self.store.quotas.balance(user_id)
        if before.credits + amount < 0:
            raise AdminError("admin.error.below_zero", credits=before.credits, amount=amount)
        return await self.store.quotas.grant(user_id, amount, actor=self.actor, reason=self._why(reason))

    async def set_daily(self, user_id: int | None, allowance: int, reason: str = "") -> Balance | None:
        """Daily free allowance for one user, or the default for everyone when `user_id` is None."""
        if allowance < 0:
            raise AdminError("admin.error.negative", value=allowance)
        if user_id is not None:
            await self.require_user(user_id)
        await self.store.quotas.set_daily(user_id, allowance, actor=self.actor, reason=self._why(reason))
        return None if user_id is None else await self.store.quotas.balance(user_id)

    async def quota(self, user_id: int, *, ledger_limit: int = 10) -> QuotaView:
        user = await self.require_user(user_id)
        balance = await self.store.quotas.balance(user_id)
        ledger = await self.store.quotas.ledger(user_id, limit=ledger_limit)
        return QuotaView(user=user, balance=balance, ledger=list(ledger))

    async def ban(self, user_id: int, reason: str = "") -> BanResult:
        """Ban, then stop and refund every task of theirs that can still be stopped."""
        user = await self.require_user(user_id)
        if user_id in self.owners or user.role == Role.OWNER:
            raise AdminError("admin.error.protected", user=user_id)
        if user_id == self.actor:
            raise AdminError("admin.error.self")
        user = await self.store.users.ban(user_id, actor=self.actor, reason=self._why(reason))
        cancelled: list[int] = []
        for task in await self.store.tasks.active_for_user(user_id):
            if task.state in CANCELLABLE and await self._stop(task.id):
                cancelled.append(task.id)
        return BanResult(user=user, cancelled=cancelled)

    async def _stop(self, task_id: int) -> bool:
        """Through the runner when there is one (it stops the work in flight); the CLI moves the state."""
        try:
            if self._cancel is not None:
                return await self._cancel(task_id) is not False
            await self.store.tasks.transition(
                task_id, TaskState.CANCELLED, error_code="cancelled:ban", spend=True
            )
        except StorageError:  # finished meanwhile: not worth failing the ban over
            log.warning("could not cancel task %s during a ban", task_id, exc_info=True)
            return False
        return True

    async def unban(self, user_id: int, reason: str = "") -> User:
        await self.require_user(user_id)
        return await self.store.users.unban(user_id, actor=self.actor, reason=self._why(reason))

    async def set_admin(self, user_id: int, admin: bool, reason: str = "") -> User:
        """Owners make or unmake admins; owners themselves come from configuration and stay owners."""
        if self.actor != CLI_ACTOR and self.actor not in self.owners:
            raise AdminError("admin.error.owner_only")
        user = await self.require_user(user_id)
        if user_id in self.owners or user.role == Role.OWNER:
            raise AdminError("admin.error.protected", user=user_id)
        role = Role.ADMIN if admin else Role.USER
        return await self.store.users.set_role(user_id, role, actor=self.actor, reason=self._why(reason))

    async def stats(self) -> Stats:
        return await self.store.admin.stats()

    async def audit_log(self, limit: int = 20) -> list[AuditEntry]:
        return list(await self.store.admin.audit_log(limit=limit))
