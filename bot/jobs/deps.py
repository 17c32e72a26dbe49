"""What every part of a job needs: the task table (shielded), the chat seam and the clock.

One small record instead of the same three arguments threaded through the runner, the steps, the
delivery and the outcomes; tests build it with a fake notifier and a fake clock.
"""

from __future__ import annotations

from dataclasses import dataclass

from api_client.clock import Clock
from bot.jobs.notifier import Notifier
from bot.jobs.task_store import ShieldedTasks

__all__ = ["JobDeps"]


@dataclass(frozen=True)
class JobDeps:
    tasks: ShieldedTasks
    notifier: Notifier
    clock: Clock
