"""The few numbers an operator's dashboard reads from the database: cheap enough to ask on every scrape.

Why only unfinished tasks: they are few and the partial index `tasks_unfinished` (migration 0002) holds
exactly them, so the count does not grow with the history; finished tasks are counted as they finish, in
the process (bot/ops/metrics.py). Plain SQL, portable to another backend as it is.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .context import StoreContext
from .task_model import TERMINAL, TaskState

_LIVE = tuple(state.value for state in TaskState if state not in TERMINAL)


@dataclass(frozen=True)
class TaskGauges:
    """Unfinished tasks by state (every unfinished state present, zero included) and the queue's head."""

    by_state: dict[str, int] = field(default_factory=dict)
    queued: int = 0
    #: Seconds the oldest task still waiting to be submitted has waited (0 when none waits).
    oldest_queued_age: float = 0.0


class GaugesRepo:
    def __init__(self, ctx: StoreContext) -> None:
        self._ctx = ctx

    async def ping(self) -> None:
        """One trivial read: raises when the database cannot be read at all (health checks)."""
        async with self._ctx.db.read() as r:
            await r.value("SELECT 1")

    async def tasks(self) -> TaskGauges:
        marks = ", ".join("?" * len(_LIVE))
        async with self._ctx.db.read() as r:
            rows = await r.all(
                f"SELECT state, COUNT(*) AS n, MIN(created_at) AS oldest FROM tasks "
                f"WHERE state IN ({marks}) GROUP BY state",
                _LIVE,
            )
        by_state = dict.fromkeys(_LIVE, 0)
        oldest: float | None = None
        for row in rows:
            by_state[row["state"]] = int(row["n"])
            if row["state"] == TaskState.QUEUED.value:
                oldest = float(row["oldest"])
        age = max(0.0, self._ctx.now() - oldest) if oldest is not None else 0.0
        return TaskGauges(by_state, by_state[TaskState.QUEUED.value], age)
