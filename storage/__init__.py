"""SQLite storage for portrait-bot: users, chats, quotas with an exactly-once ledger, tasks, admin views.

SQL only: no HTTP, no Telegram. See docs/ARCHITECTURE.md ("storage") for the contract.
"""

from .admin import AuditEntry, Stats, TopUser
from .backup import BackupError, BackupResult, backup_database
from .chats import NO_CAP, Chat
from .clock import ClockLike, QuotaCalendar
from .errors import (
    GroupCapReached,
    HasActiveTasks,
    IllegalTransition,
    NotFound,
    QuotaExhausted,
    QuotaTimezoneMismatch,
    ReadOnlyStore,
    SchemaMismatch,
    StorageError,
    TooManyActiveTasks,
)
from .privacy import Forgotten, Purged
from .quotas import Balance, LedgerCheck, LedgerEntry
from .store import Store
from .tasks import ALLOWED, TERMINAL, NewTask, Task, TaskState
from .users import Role, User, UserSettings

__all__ = [
    "ALLOWED",
    "NO_CAP",
    "TERMINAL",
    "AuditEntry",
    "BackupError",
    "BackupResult",
    "Balance",
    "Chat",
    "ClockLike",
    "Forgotten",
    "GroupCapReached",
    "HasActiveTasks",
    "IllegalTransition",
    "LedgerCheck",
    "LedgerEntry",
    "NewTask",
    "NotFound",
    "Purged",
    "QuotaCalendar",
    "QuotaExhausted",
    "QuotaTimezoneMismatch",
    "ReadOnlyStore",
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
