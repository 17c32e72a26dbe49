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
