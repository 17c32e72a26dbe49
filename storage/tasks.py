"""Tasks: one row per generation, a checked state machine, and the quota effect of each move.

Every move is one transaction: `UPDATE tasks ... WHERE id = ? AND state IN (states that may precede the
target)` (no row changed means someone else moved it first -> IllegalTransition) with its quota effect:
reaching `done` commits the reserved unit, reaching `failed` / `cancelled` / `expired` refunds it. The
effect is guarded by `reservation = 'held'` and a unique ledger index, so it happens exactly once however
often it is asked for.

Why a `submitting` task is never resubmitted. `submitting` is written *before* the submit request is sent and
`submitted` (with the upstream task id) after the answer arrives. A task found in `submitting` after a crash
may or may not have reached the service; we cannot ask the service about a task whose id we never learned,
and sending it again could bill the upstream account twice and produce a result nobody can fetch. So the
runner resolves it with `transition(id, FAILED, expect=SUBMITTING, error_code="submit_unknown")`, which
refunds the user's unit in the same transaction, and tells the user to try again.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from .context import StoreContext
from .db import Row, Session
from .errors import GroupCapReached, IllegalTransition, LeaseLost, NotFound, TooManyActiveTasks
from .quotas import ledger_row, reserve, reserve_deltas, settle
from .task_model import (
    ALLOWED,
    KEEP,
    REFUNDING,
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
    holds_lease,
    task_from_row,
    time_of,
)

_UNFINISHED_SQL = "('queued', 'submitting', 'submitted', 'polling', 'delivering')"


async def _row(s: Session, task_id: int) -> Row:
    row = await s.one("SELECT * FROM tasks WHERE id = ?", (task_id,))
    if row is None:
        raise NotFound(f"task {task_id}")
    return row


async def _refused(
    s: Session, task_id: int, to: TaskState, expect: TaskState | None, owner: str | None, sources: list[str],
    now: float,
) -> Task:
    """Why a guarded move matched no row: the task as it is when the move was already made and may be
    repeated (no `expect`, no `owner`), else the error that says why not."""
    current = await _row(s, task_id)
    state = TaskState(current["state"])
    if state == to and expect is None and owner is None:
        return task_from_row(current)
    if state.value in sources and owner is not None and not holds_lease(current, owner, now):
        raise LeaseLost(task_id, owner, current["lease_owner"])
    if state.value in sources:
        raise ValueError("a task enters 'submitted' only with its upstream task id")
    raise IllegalTransition(task_id, state, to, expect)


class TasksRepo:
    def __init__(self, ctx: StoreContext) -> None:
        self._ctx = ctx

    async def create(self, new: NewTask) -> tuple[Task, bool]:
        """Create a queued task and reserve its unit, all in one transaction; (task, created).

        Order of refusals: a duplicate origin_key returns the existing task (created=False, nothing reserved);
        then TooManyActiveTasks, GroupCapReached, QuotaExhausted. A refusal writes nothing.
        """
        now = self._ctx.now()
        async with self._ctx.db.transaction() as tx:
            head = await tx.one(
                "SELECT (SELECT id FROM tasks WHERE origin_key = ?) AS existing, "
                f"(SELECT COUNT(*) FROM tasks WHERE user_id = ? AND state IN {_UNFINISHED_SQL}) AS active",
                (new.origin_key, new.user_id),
            )
            assert head is not None
            if head["existing"] is not None:
                return task_from_row(await _row(tx, head["existing"])), False
            if head["active"] >= new.max_active_per_user:
                raise TooManyActiveTasks(new.user_id, head["active"], new.max_active_per_user)
            if new.charge_chat_id is not None:
                await self._check_group_cap(tx, new.charge_chat_id, now)
            unit = await reserve(tx, self._ctx, new.user_id, now)
            row = await tx.one(
                "INSERT INTO tasks (user_id, chat_id, charge_chat_id, origin_key, request_message_id, "
                "face_file_id, style_file_id, params, state, quota_day, quota_unit, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?) RETURNING *",
                (
                    new.user_id, new.chat_id, new.charge_chat_id, new.origin_key, new.request_message_id,
                    new.face_file_id, new.style_file_id, json.dumps(new.params, sort_keys=True),
                    unit.day, unit.unit, now, now,
                ),
            )  # fmt: skip
            assert row is not None
            free, credits = reserve_deltas(unit.unit)
            await ledger_row(
                tx, user_id=new.user_id, task_id=row["id"], kind="reserve", at=now, free=free,
                credits=credits, day=unit.day, reason=f"task {row['id']} ({unit.unit})",
            )  # fmt: skip
            return task_from_row(row), True

    async def _check_group_cap(self, tx: Session, chat_id: int, now: float) -> None:
        cap = await tx.value("SELECT daily_cap FROM chats WHERE id = ?", (chat_id,))
        if cap is None:
            return
        used = await tx.value(
            "SELECT COUNT(*) FROM tasks WHERE charge_chat_id = ? AND created_at >= ? "
            "AND reservation != 'refunded'",
            (chat_id, self._ctx.calendar.day_start(now)),
        )
        if used >= cap:
            raise GroupCapReached(chat_id, cap, self._ctx.calendar.next_reset(now))

    async def transition(
        self,
        task_id: int,
        to: TaskState,
        *,
        expect: TaskState | None = None,
        upstream_task_id: str | None = None,
        error_code: str | None = None,
        result_file_id: str | None = None,
        owner: str | None = None,
        spend: bool = False,
        lease_seconds: float | None = None,
        poll_started_at: float | None = None,
        delivery: Delivery | None = None,
        durable: bool = True,
    ) -> Task:
        """Move a task along ALLOWED, with its quota effect, in one transaction.

        Fencing, so that two workers can never both act on one task (a worker frozen past its lease wakes
        up to find its writes refused, not to submit or send a second time):
        - `expect` is strict: a task not in `expect` raises IllegalTransition, even when it already is in
          `to` (a stale worker must not take "already there" for "go on").
        - `owner` (a worker's writes): the move happens only while `owner` holds an unexpired lease, checked
          in the same statement; otherwise LeaseLost. Moves by people (/cancel, an admin's ban) pass none.
        Without `expect` and `owner`, a move to the state the task is already in returns the stored task
        (an admin repeating a command is not charged or refunded twice).

        Quota: reaching `done` commits the reserved unit; reaching failed/cancelled/expired refunds it,
        unless `spend` says the unit is spent anyway (the service had accepted the task and bills it: a
        user's cancel or block after the submit). Entering `submitted` requires the upstream task id.

        Fewer commits per generation (each is an fsync): `lease_seconds` (with `owner`) takes the lease in
        the same statement, when it is free, expired or already ours (LeaseLost when another worker holds
        a live one), so a queued task needs no separate claim; `poll_started_at` and `delivery` are stored
        with the move (submitted + when polling began; delivering + the `sending` mark); `durable=False`
        skips the fsync (see storage.db).
        """
        to = TaskState(to)
        claiming = owner is not None and lease_seconds is not None
        sources = [s.value for s, targets in ALLOWED.items() if to in targets and (expect in (None, s))]
        terminal = to in TERMINAL
        now = self._ctx.now()
        # The guarded UPDATE is the transition: it only matches while the task is in a state `to` may
        # follow (and, for a worker, while its lease holds), so a concurrent or stale mover changes
        # nothing and is told so below.
        move = (
            "UPDATE tasks SET state = ?, updated_at = ?, "
            "upstream_task_id = COALESCE(?, upstream_task_id), error_code = COALESCE(?, error_code), "
            "result_file_id = COALESCE(?, result_file_id), finished_at = ?, "
            "poll_started_at = COALESCE(?, poll_started_at), delivery = COALESCE(?, delivery), "
            "lease_owner = CASE WHEN ? THEN NULL WHEN ? THEN ? ELSE lease_owner END, "
            "lease_until = CASE WHEN ? THEN NULL WHEN ? THEN ? ELSE lease_until END "
            f"WHERE id = ? AND state IN ({', '.join('?' * len(sources))}) "
            "AND (? IS NULL OR (lease_owner = ? AND lease_until > ?) "
            "OR (? AND (lease_owner IS NULL OR lease_until <= ?))) "
            "AND (? != 'submitted' OR COALESCE(?, upstream_task_id) IS NOT NULL) RETURNING *"
        )
        params = (
            to.value, now, upstream_task_id, error_code, result_file_id,
            now if terminal else None, poll_started_at,
            None if delivery is None else Delivery(delivery).value,
            terminal, claiming, owner, terminal, claiming,
            None if lease_seconds is None else now + lease_seconds,
            task_id, *sources, owner, owner, now, claiming, now, to.value, upstream_task_id,
        )  # fmt: skip
        if sources and not terminal:  # no quota effect: the move is the one statement (one hop on SQLite)
            rows = await self._ctx.db.write_one(move, params, durable=durable)
            if rows:
                return task_from_row(rows[0])
            async with self._ctx.db.read() as r:  # nothing was written: only the reason is left to find
                return await _refused(r, task_id, to, expect, owner, sources, now)
        async with self._ctx.db.transaction(durable=durable) as tx:
            row = await tx.one(move, params) if sources else None
            if row is None:
                return await _refused(tx, task_id, to, expect, owner, sources, now)
            reservation = row["reservation"]
            spent = to == TaskState.DONE or (spend and row["upstream_task_id"] is not None)
            if to in TERMINAL and spent:
                if await settle(tx, row, "commit", now, f"task {task_id} {to.value}"):
                    reservation = "committed"
            elif to in REFUNDING and await settle(
                tx, row, "refund", now, f"task {task_id} {to.value} {error_code or ''}".strip()
            ):
                reservation = "refunded"
            return replace(task_from_row(row), reservation=reservation)

    async def update(
        self,
        task_id: int,
        *,
        status_message_id: int | None = None,
        next_poll_at: float | None = None,
        attempts_inc: bool = False,
        last_status: str | None = None,
        delivery: Delivery | None = None,
        sent_file_id: str | None = None,
        retry_reason: RetryReason | Keep | None = KEEP,
        poll_started_at: float | None = None,
        owner: str | None = None,
        durable: bool = True,
    ) -> Task:
        """Bookkeeping that is not a state change (None leaves a field as it is, except `retry_reason`,
        which None clears: a resubmit must forget "the last submit was refused" before it goes out).

        `owner` fences a worker's write like `transition` does: LeaseLost unless it holds the lease.
        `durable=False` for display-only fields (the status message id): no fsync (see storage.db)."""
        keep_reason = retry_reason is KEEP
        now = self._ctx.now()
        reason = None if retry_reason is KEEP or retry_reason is None else RetryReason(retry_reason).value
        rows = await self._ctx.db.write_one(
            "UPDATE tasks SET status_message_id = COALESCE(?, status_message_id), "
            "next_poll_at = COALESCE(?, next_poll_at), attempts = attempts + ?, "
            "last_status = COALESCE(?, last_status), delivery = COALESCE(?, delivery), "
            "sent_file_id = COALESCE(?, sent_file_id), "
            "retry_reason = CASE WHEN ? THEN retry_reason ELSE ? END, "
            "poll_started_at = COALESCE(?, poll_started_at), updated_at = ? WHERE id = ? "
            "AND (? IS NULL OR (lease_owner = ? AND lease_until > ?)) RETURNING *",
            (
                status_message_id, next_poll_at, int(attempts_inc), last_status,
                None if delivery is None else Delivery(delivery).value, sent_file_id,
                keep_reason, reason, poll_started_at, now, task_id, owner, owner, now,
            ),
            durable=durable,
        )  # fmt: skip
        if rows:
            return task_from_row(rows[0])
        async with self._ctx.db.read() as r:  # nothing was written: say why
            current = await _row(r, task_id)  # NotFound for an unknown id
        raise LeaseLost(task_id, owner or "", current["lease_owner"])

    async def get(self, task_id: int) -> Task | None:
        rows = await self._select("SELECT * FROM tasks WHERE id = ?", (task_id,))
        return rows[0] if rows else None

    async def active_for_user(self, user_id: int) -> list[Task]:
        return await self._select(
            f"SELECT * FROM tasks WHERE user_id = ? AND state IN {_UNFINISHED_SQL} ORDER BY created_at, id",
            (user_id,),
        )

    async def recent_for_user(self, user_id: int, limit: int = 10) -> list[Task]:
        """Newest first."""
        return await self._select(
            "SELECT * FROM tasks WHERE user_id = ? ORDER BY created_at DESC, id DESC LIMIT ?",
            (user_id, limit),
        )

    async def unfinished(self) -> list[Task]:
        """Every non-terminal task, oldest first: what a restarted runner must resume."""
        return await self._select(
            f"SELECT * FROM tasks WHERE state IN {_UNFINISHED_SQL} ORDER BY created_at, id", ()
        )

    async def queue_entries(self) -> list[QueueEntry]:
        """Every unfinished task in its light form, oldest first: what a dispatcher orders and counts.

        One pass over the `tasks_unfinished` partial index (finished history is never read) returning a
        handful of small columns, not `params`: the runner loads it at start and re-syncs with it on a slow
        timer (a minute), so 10,000 waiting tasks cost one small query a minute, not a full read every few
        seconds."""
        return await self._entries(f"state IN {_UNFINISHED_SQL}", (), None)

    async def next_runnable(self, limit: int, *, owner: str) -> list[QueueEntry]:
        """The oldest `limit` unfinished tasks that `owner` may start now: not backing off, not leased by
        another worker. Walks the same index in creation order and stops after `limit` matches."""
        now = self._ctx.now()
        where = (
            f"state IN {_UNFINISHED_SQL} AND (next_poll_at IS NULL OR next_poll_at <= ?) "
            "AND (lease_owner IS NULL OR lease_owner = ? OR lease_until <= ?)"
        )
        return await self._entries(where, (now, owner, now), limit)

    async def _entries(self, where: str, params: tuple[Any, ...], limit: int | None) -> list[QueueEntry]:
        sql = (
            "SELECT id, user_id, chat_id, state, created_at, status_message_id, next_poll_at, lease_owner, "
            f"lease_until FROM tasks WHERE {where} ORDER BY created_at, id"
        )
        if limit is not None:
            sql, params = f"{sql} LIMIT ?", (*params, limit)
        async with self._ctx.db.read() as r:
            rows = await r.all(sql, params)
        return [
            QueueEntry(
                id=row["id"], user_id=row["user_id"], chat_id=row["chat_id"], state=TaskState(row["state"]),
                created_at=float(row["created_at"]), status_message_id=row["status_message_id"],
                next_poll_at=time_of(row["next_poll_at"]), lease_owner=row["lease_owner"],
                lease_until=time_of(row["lease_until"]),
            )
            for row in rows
        ]  # fmt: skip

    async def claim(self, task_id: int, owner: str, lease_seconds: float) -> bool:
        """Take (or extend) the lease on an unfinished task; False if another owner holds a live lease.

        Not fsynced: leases only matter among live workers, and a power loss stops every worker of the
        file; a renewal lost with it is simply taken again on restart."""
        now = self._ctx.now()
        async with self._ctx.db.transaction(durable=False) as tx:
            changed = await tx.execute(
                "UPDATE tasks SET lease_owner = ?, lease_until = ? "
                f"WHERE id = ? AND state IN {_UNFINISHED_SQL} "
                "AND (lease_owner IS NULL OR lease_owner = ? OR lease_until <= ?)",
                (owner, now + lease_seconds, task_id, owner, now),
            )
            if not changed:
                await _row(tx, task_id)  # NotFound for an unknown id rather than a silent False
        return bool(changed)

    async def release(self, task_id: int, owner: str) -> None:
        """Give the lease up; a no-op if `owner` does not hold it (it may have expired and moved on).
        Not fsynced, like `claim`."""
        async with self._ctx.db.transaction(durable=False) as tx:
            await tx.execute(
                "UPDATE tasks SET lease_owner = NULL, lease_until = NULL WHERE id = ? AND lease_owner = ?",
                (task_id, owner),
            )

    async def claim_resend(self, task_id: int, owner: str, hold_seconds: float) -> tuple[Resend, Task | None]:
        """Claim "Send it again" for a task that ended with its delivery unconfirmed (UNCONFIRMED), in one
        conditional update, so two presses (or two processes) never both send: the winner holds the task's
        lease columns for `hold_seconds` (a DONE task's lease means nothing else); a process killed while
        sending leaves a claim that runs out, and the button works again. CLAIMED comes with the task."""
        now = self._ctx.now()
        unconfirmed = "state = 'done' AND error_code = ? AND result_file_id IS NULL"
        async with self._ctx.db.transaction(durable=False) as tx:
            row = await tx.one(
                f"UPDATE tasks SET lease_owner = ?, lease_until = ? WHERE id = ? AND {unconfirmed} "
                "AND COALESCE(poll_started_at, created_at) > ? AND (lease_owner IS NULL OR lease_until <= ?) "
                "RETURNING *",
                (owner, now + hold_seconds, task_id, UNCONFIRMED, now - RESULT_KEPT_SECONDS, now),
            )
            if row is not None:
                return Resend.CLAIMED, task_from_row(row)
            row = await tx.one("SELECT * FROM tasks WHERE id = ?", (task_id,))
        task = None if row is None else task_from_row(row)
        if task is None or task.state is not TaskState.DONE or task.error_code != UNCONFIRMED:
            return Resend.NOT_OFFERED, task
        if task.result_file_id is not None:
            return Resend.SENT, task
        if (task.poll_started_at or task.created_at) <= now - RESULT_KEPT_SECONDS:
            return Resend.TOO_LATE, task
        return Resend.BUSY, task

    async def record_resend(self, task_id: int, file_id: str) -> bool:
        """The photo sent again was accepted: store its file id (the task now reads as delivered, in
        /history too) and drop the claim. False when the task is gone (/forgetme) or already recorded."""
        async with self._ctx.db.transaction() as tx:
            changed = await tx.execute(
                "UPDATE tasks SET result_file_id = ?, sent_file_id = ?, delivery = ?, lease_owner = NULL, "
                "lease_until = NULL, updated_at = ? "
                "WHERE id = ? AND state = 'done' AND result_file_id IS NULL",
                (file_id, file_id, Delivery.SENT.value, self._ctx.now(), task_id),
            )
        return bool(changed)

    async def _select(self, sql: str, params: tuple[Any, ...]) -> list[Task]:
        async with self._ctx.db.read() as r:
            rows = await r.all(sql, params)
        return [task_from_row(row) for row in rows]
