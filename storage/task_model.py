"""The task record and its state machine: the states, the moves ALLOWED between them, the typed recovery
state (migration 0003), and reading a row into a `Task`.

Apart from the repository (storage/tasks.py) because every layer reads these names, while only the
repository writes tasks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from .db import Row

__all__ = [
    "ALLOWED", "KEEP", "REFUNDING", "RESULT_KEPT_SECONDS", "TERMINAL", "UNCONFIRMED", "Delivery", "Keep",
    "NewTask", "QueueEntry", "Resend", "RetryReason", "Task", "TaskState", "holds_lease", "task_from_row",
    "time_of",
]  # fmt: skip


class TaskState(StrEnum):
    QUEUED = "queued"
    SUBMITTING = "submitting"
    SUBMITTED = "submitted"
    POLLING = "polling"
    DELIVERING = "delivering"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


TERMINAL: frozenset[TaskState] = frozenset(
    {TaskState.DONE, TaskState.FAILED, TaskState.CANCELLED, TaskState.EXPIRED}
)
REFUNDING: frozenset[TaskState] = frozenset({TaskState.FAILED, TaskState.CANCELLED, TaskState.EXPIRED})

_S = TaskState
ALLOWED: dict[TaskState, frozenset[TaskState]] = {
    _S.QUEUED: frozenset({_S.SUBMITTING, _S.FAILED, _S.CANCELLED}),
    _S.SUBMITTING: frozenset({_S.SUBMITTED, _S.FAILED, _S.CANCELLED}),
    _S.SUBMITTED: frozenset({_S.POLLING, _S.DELIVERING, _S.FAILED, _S.CANCELLED, _S.EXPIRED}),
    _S.POLLING: frozenset({_S.DELIVERING, _S.FAILED, _S.CANCELLED, _S.EXPIRED}),
    _S.DELIVERING: frozenset({_S.DONE, _S.FAILED}),
    _S.DONE: frozenset(),
    _S.FAILED: frozenset(),
    _S.CANCELLED: frozenset(),
    _S.EXPIRED: frozenset(),
}


class Delivery(StrEnum):
    """Where sending a delivering task's result stands (recovery reads it; see migration 0003)."""

    NONE = "none"  # not tried yet
    DEFERRED = "deferred"  # Telegram said "later" before anything went out: fetch and send again
    SENDING = "sending"  # the photo request may be out: never resent
    SENT = "sent"  # the photo went out (sent_file_id); DONE not recorded yet: finish without resending


#: The error code of a task that ended DONE (its unit spent) although Telegram never confirmed its photo:
#: it keeps `delivery = sending` and no `result_file_id` until "Send it again" delivers it (bot.jobs.resend).
UNCONFIRMED: Final = "delivery_uncertain"
#: How long the service keeps a finished result after the submit: past this, "Send it again" is too late.
RESULT_KEPT_SECONDS: Final = 12 * 3600.0


class Resend(StrEnum):
    """What a press of "Send it again" found (storage.tasks.TasksRepo.claim_resend)."""

    CLAIMED = "claimed"  # this press sends it
    SENT = "sent"  # sent again already: its file id is recorded
    BUSY = "busy"  # another press (or process) is sending it right now
    TOO_LATE = "too_late"  # past RESULT_KEPT_SECONDS: the service no longer has it
    NOT_OFFERED = "not_offered"  # no such task, or its delivery was never in doubt


class RetryReason(StrEnum):
    """Why a task waits for `next_poll_at` before its next step."""

    RATE_LIMITED = "rate_limited"  # the service definitely refused the submit: sending it again is safe
    UPSTREAM_BUSY = "upstream_busy"  # polling failed for now (rate limit, 5xx, transport)
    TELEGRAM_BUSY = "telegram_busy"  # a download or a send failed for now, nothing happened


class Keep(Enum):
    """The type of KEEP: "leave this field as stored", where None already means "clear it"."""

    KEEP = 0


#: `update(retry_reason=KEEP)` leaves the reason as it is; None clears it.
KEEP: Final = Keep.KEEP


@dataclass(frozen=True)
class NewTask:
    user_id: int
    chat_id: int
    origin_key: str  # unique per user request (e.g. "chat:message"); a repeat returns the existing task
    request_message_id: int | None
    face_file_id: str
    style_file_id: str | None
    params: dict[str, object] = field(default_factory=dict)
    charge_chat_id: int | None = None  # the group whose daily cap applies
    max_active_per_user: int = 1


@dataclass(frozen=True)
class Task:
    id: int
    user_id: int
    chat_id: int
    origin_key: str
    request_message_id: int | None
    status_message_id: int | None
    face_file_id: str
    style_file_id: str | None
    params: dict[str, object]
    state: TaskState
    upstream_task_id: str | None
    error_code: str | None
    attempts: int
    result_file_id: str | None
    lease_owner: str | None
    lease_until: float | None
    next_poll_at: float | None
    created_at: float
    updated_at: float
    finished_at: float | None
    # Beyond the ARCHITECTURE.md field list (appended, so positional use keeps working):
    last_status: str | None = None
    charge_chat_id: int | None = None
    quota_unit: str = "free"  # which kind of unit was reserved: "free" | "credits"
    reservation: str = "held"  # held | committed | refunded
    # Recovery state (migration 0003); `last_status` is display only.
    delivery: Delivery = Delivery.NONE
    sent_file_id: str | None = None
    retry_reason: RetryReason | None = None
    poll_started_at: float | None = None


@dataclass(frozen=True)
class QueueEntry:
    """An unfinished task as a dispatcher sees it: no params or file ids, so thousands take little memory."""

    id: int
    user_id: int
    chat_id: int
    state: TaskState
    created_at: float
    status_message_id: int | None
    next_poll_at: float | None
    lease_owner: str | None
    lease_until: float | None


def holds_lease(row: Row, owner: str, now: float) -> bool:
    return bool(row["lease_owner"] == owner and row["lease_until"] is not None and row["lease_until"] > now)


def time_of(value: float | int | None) -> float | None:
    """RETURNING hands back a REAL column's value before affinity, so 1700000000.0 may arrive as an int."""
    return None if value is None else float(value)


def task_from_row(row: Row) -> Task:
    return Task(
        id=row["id"],
        user_id=row["user_id"],
        chat_id=row["chat_id"],
        origin_key=row["origin_key"],
        request_message_id=row["request_message_id"],
        status_message_id=row["status_message_id"],
        face_file_id=row["face_file_id"],
        style_file_id=row["style_file_id"],
        params=json.loads(row["params"]),
        state=TaskState(row["state"]),
        upstream_task_id=row["upstream_task_id"],
        error_code=row["error_code"],
        attempts=row["attempts"],
        result_file_id=row["result_file_id"],
        lease_owner=row["lease_owner"],
        lease_until=time_of(row["lease_until"]),
        next_poll_at=time_of(row["next_poll_at"]),
        created_at=float(row["created_at"]),
        updated_at=float(row["updated_at"]),
        finished_at=time_of(row["finished_at"]),
        last_status=row["last_status"],
        charge_chat_id=row["charge_chat_id"],
        quota_unit=row["quota_unit"],
        reservation=row["reservation"],
        delivery=Delivery(row["delivery"]),
        sent_file_id=row["sent_file_id"],
        retry_reason=RetryReason(row["retry_reason"]) if row["retry_reason"] else None,
        poll_started_at=time_of(row["poll_started_at"]),
    )
