"""The storage exception tree.

The bot maps each class to one catalogue message, so every refusal a user can hit has its own class and
carries the numbers the message needs (how many are active, when the allowance resets).
"""

from __future__ import annotations

import sqlite3
from typing import Final

import asyncpg


class StorageError(Exception):
    """Root of every error raised on purpose by `storage`."""


class NotFound(StorageError):
    """The user, chat or task named by the caller does not exist."""


class IllegalTransition(StorageError):
    """A task move that ALLOWED forbids, or whose expected current state did not match."""

    def __init__(self, task_id: int, current: str, to: str, expected: str | None = None) -> None:
        self.task_id = task_id
        self.current = current
        self.to = to
        self.expected = expected
        detail = f" (expected {expected})" if expected is not None else ""
        super().__init__(f"task {task_id}: {current} -> {to} is not allowed{detail}")


class LeaseLost(IllegalTransition):
    """A worker's write was refused because it no longer holds the task's lease (it expired, or another
    worker took the task over): the worker must stop working on the task at once."""

    def __init__(self, task_id: int, owner: str, holder: str | None) -> None:
        self.owner = owner
        self.holder = holder
        StorageError.__init__(self, f"task {task_id}: {owner} no longer holds the lease (holder: {holder})")
        self.task_id = task_id
        self.current = "leased elsewhere"
        self.to = "any"
        self.expected = None


class QuotaExhausted(StorageError):
    """No free unit left today and no credits: nothing was reserved."""

    def __init__(self, user_id: int, resets_at: float) -> None:
        self.user_id = user_id
        self.resets_at = resets_at
        super().__init__(f"user {user_id} has no free units or credits left")


class GroupCapReached(StorageError):
    """The group's daily cap is used up for today (on top of the user's own quota)."""

    def __init__(self, chat_id: int, cap: int, resets_at: float) -> None:
        self.chat_id = chat_id
        self.cap = cap
        self.resets_at = resets_at
        super().__init__(f"chat {chat_id} reached its daily cap of {cap}")


class TooManyActiveTasks(StorageError):
    """The user already has as many unfinished tasks as they may have at once."""

    def __init__(self, user_id: int, active: int, limit: int) -> None:
        self.user_id = user_id
        self.active = active
        self.limit = limit
        super().__init__(f"user {user_id} has {active} active tasks (limit {limit})")


class ReadOnlyStore(StorageError):
    """A change was asked of a store opened read-only (health checks, reports)."""


class SchemaMismatch(StorageError):
    """The file's schema is not the one this code expects: behind (not migrated yet) or from a newer version.

    Raised when opening read-only (which never migrates) finds pending migrations, and by any open that
    finds migrations this code does not ship.
    """

    def __init__(self, *, behind: list[int], unknown: list[int], expected: int) -> None:
        self.behind = behind
        self.unknown = unknown
        self.expected = expected
        if unknown:
            detail = f"has migration(s) {unknown} that this code does not know: it is newer than this code"
        else:
            detail = f"lacks migration(s) {behind}: it is behind this code"
        super().__init__(f"database schema {detail} (schema {expected})")


class QuotaTimezoneMismatch(StorageError):
    """The file counts quota days in another time zone than the one asked for: opening it would move
    everyone's quota day, so it is refused until the zones agree or the stored one is changed on purpose."""

    def __init__(self, stored: str, requested: str) -> None:
        self.stored = stored
        self.requested = requested
        super().__init__(f"the database counts quota days in {stored}, not {requested}")


class HasActiveTasks(StorageError):
    """The user has unfinished tasks, so their data cannot be forgotten yet (a runner is working on them)."""

    def __init__(self, user_id: int, active: int) -> None:
        self.user_id = user_id
        self.active = active
        super().__init__(f"user {user_id} has {active} unfinished task(s)")


#: Errors of the database itself rather than of a request (locked past the busy timeout, disk full, I/O
#: error, on PostgreSQL also a lost or refused connection and a server shutting down): the same write may
#: succeed later. Callers that must not lose a fact retry on these.
UNAVAILABLE: Final[tuple[type[Exception], ...]] = (
    sqlite3.OperationalError,
    asyncpg.exceptions.LockNotAvailableError,  # lock_timeout: the PostgreSQL busy timeout
    asyncpg.exceptions.InsufficientResourcesError,  # class 53: disk full, out of memory, too many connections
    asyncpg.exceptions.OperatorInterventionError,  # class 57: admin shutdown, cannot connect now
    asyncpg.exceptions.PostgresConnectionError,  # class 08
    asyncpg.exceptions.ConnectionDoesNotExistError,  # the connection was lost under us
    asyncpg.exceptions.SerializationError,
    asyncpg.exceptions.DeadlockDetectedError,
    OSError,  # refused or reset while the pool reconnects
)

#: What opening or reading a database may raise besides StorageError: SQLite's errors, a PostgreSQL server
#: that refuses (bad password, no such database, a statement it rejects) or cannot be reached.
DATABASE_ERRORS: Final[tuple[type[Exception], ...]] = (
    sqlite3.Error,
    asyncpg.PostgresError,
    asyncpg.exceptions.InterfaceError,
    OSError,
)
