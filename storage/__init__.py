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
from .quotas import Balance, LedgerCheck, LedgerEntry
from .store import Store
from .tasks import ALLOWED, TERMINAL, NewTask, Task, TaskState
from .users import Role, User, UserSettings

__all__ = [
    "ALLOWED",
    "NO_CAP",
    "TERMINAL",
    "AuditEntry",
    "Balance",
    "Chat",
    "ClockLike",
    "GroupCapReached",
    "IllegalTransition",
    "LedgerCheck",
    "LedgerEntry",
    "NewTask",
    "NotFound",
    "QuotaCalendar",
    "QuotaExhausted",
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
