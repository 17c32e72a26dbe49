"""Driving tasks to a given state, shared by the task, crash and concurrency tests."""

from __future__ import annotations

from storage import Store, Task, TaskState

S = TaskState
PATH: dict[TaskState, list[TaskState]] = {
    S.QUEUED: [],
    S.SUBMITTING: [S.SUBMITTING],
    S.SUBMITTED: [S.SUBMITTING, S.SUBMITTED],
    S.POLLING: [S.SUBMITTING, S.SUBMITTED, S.POLLING],
    S.DELIVERING: [S.SUBMITTING, S.SUBMITTED, S.POLLING, S.DELIVERING],
    S.DONE: [S.SUBMITTING, S.SUBMITTED, S.POLLING, S.DELIVERING, S.DONE],
    S.FAILED: [S.FAILED],
    S.CANCELLED: [S.CANCELLED],
    S.EXPIRED: [S.SUBMITTING, S.SUBMITTED, S.EXPIRED],
}


async def drive(store: Store, task: Task, to: TaskState) -> Task:
    for step in PATH[to]:
        upstream = f"up-{task.id}" if step == S.SUBMITTED else None
        task = await store.tasks.transition(task.id, step, upstream_task_id=upstream)
    return task


async def tamper(store: Store, *statements: str | tuple[str, tuple[object, ...]]) -> None:
    """Change the database behind the repositories' back (tests of the ledger check), on either backend:
    plain SQL on the store's own connection, in SQLite's spelling like every statement of the store."""
    async with store._ctx.db.transaction() as tx:
        for statement in statements:
            sql, params = (statement, ()) if isinstance(statement, str) else statement
            await tx.execute(sql, params)


async def raw_rows(store: Store, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    """Rows read straight from the tables, as tuples."""
    async with store._ctx.db.read() as r:
        return [tuple(row) for row in await r.all(sql, params)]
