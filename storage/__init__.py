"""Storage for portrait-bot: users, chats, quotas with an exactly-once ledger, tasks, admin views; on SQLite,
or on PostgreSQL when DATABASE_URL names it.

SQL only: no HTTP, no Telegram. See docs/ARCHITECTURE.md ("storage") for the contract.
"""

from .admin import AuditEntry, Stats, TopUser
from .backup import BackupError, BackupResult, backup_database
from .chats import NO_CAP, Chat
from .clock import ClockLike, QuotaCalendar
from .errors import (
    DATABASE_ERRORS,
    UNAVAILABLE,
    GroupCapReached,
    HasActiveTasks,
    IllegalTransition,
    LeaseLost,
    NotFound,
    QuotaExhausted,
    QuotaTimezoneMismatch,
    ReadOnlyStore,
    SchemaMismatch,
    StorageError,
    TooManyActiveTasks,
)
from .payments import AlreadyRefunded, CreditSources, Payment, PurchaseResult, RefundResult
from .privacy import Forgotten, Purged
from .quotas import Balance, LedgerCheck, LedgerEntry
from .referrals import Claim, ClaimOutcome
from .store import Store
from .task_model import (
    ALLOWED,
    KEEP,
    RESULT_KEPT_SECONDS,
    TERMINAL,
    UNCONFIRMED,
    Delivery,
    Keep,
    NewTask,
    QueueEntry,
    Resend,
    RetryReason,
    Task,
    TaskState,
)
from .updates import CutOff, Received
from .users import Role, User, UserSettings

__all__ = [
    "ALLOWED",
    "DATABASE_ERRORS",
    "KEEP",
    "NO_CAP",
    "RESULT_KEPT_SECONDS",
    "TERMINAL",
    "UNAVAILABLE",
    "UNCONFIRMED",
    "AlreadyRefunded",
    "AuditEntry",
    "BackupError",
    "BackupResult",
    "Balance",
    "Chat",
    "Claim",
    "ClaimOutcome",
    "ClockLike",
    "CreditSources",
    "CutOff",
    "Delivery",
    "Forgotten",
    "GroupCapReached",
    "HasActiveTasks",
    "IllegalTransition",
    "Keep",
    "LeaseLost",
    "LedgerCheck",
    "LedgerEntry",
    "NewTask",
    "NotFound",
    "Payment",
    "PurchaseResult",
    "Purged",
    "QueueEntry",
    "QuotaCalendar",
    "QuotaExhausted",
    "QuotaTimezoneMismatch",
    "ReadOnlyStore",
    "Received",
    "RefundResult",
    "Resend",
    "RetryReason",
    "Role",
    "SchemaMismatch",
    "Stats",
    "StorageError",
    "Store",
    "Task",
    "TaskState",
    "TooManyActiveTasks",
    "TopUser",
    "User",
    "UserSettings",
    "backup_database",
]
