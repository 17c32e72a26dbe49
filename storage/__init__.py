"""SQLite storage for portrait-bot: users, chats, quotas with an exactly-once ledger, tasks, admin views.

SQL only: no HTTP, no Telegram. See docs/ARCHITECTURE.md ("storage") for the contract.
"""

from .admin import AuditEntry, Stats, TopUser
from .chats import NO_CAP, Chat
from .clock import ClockLike, QuotaCalendar
from .errors import (
    GroupCapReached,
    IllegalTransition,
    NotFound,
    QuotaExhausted,
    StorageError,
    TooManyActiveTasks,
)
from .payments import AlreadyRefunded, CreditSources, Payment, PurchaseResult, RefundResult
from .quotas import Balance, LedgerCheck, LedgerEntry
from .referrals import Claim, ClaimOutcome
from .store import Store
from .tasks import ALLOWED, KEEP, TERMINAL, Delivery, Keep, NewTask, RetryReason, Task, TaskState
from .users import Role, User, UserSettings

__all__ = [
    "ALLOWED",
    "KEEP",
    "NO_CAP",
    "TERMINAL",
    "AlreadyRefunded",
    "AuditEntry",
    "Balance",
    "Chat",
    "Claim",
    "ClaimOutcome",
    "ClockLike",
    "CreditSources",
    "Delivery",
    "GroupCapReached",
    "IllegalTransition",
    "Keep",
    "LedgerCheck",
    "LedgerEntry",
    "NewTask",
    "NotFound",
    "Payment",
    "PurchaseResult",
    "QuotaCalendar",
    "QuotaExhausted",
    "RefundResult",
    "RetryReason",
    "Role",
    "Stats",
    "StorageError",
    "Store",
    "Task",
    "TaskState",
    "TooManyActiveTasks",
    "TopUser",
    "User",
    "UserSettings",
]
