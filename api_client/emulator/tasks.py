"""Submitted tasks and their lifecycle, derived from the submit time and the injected clock.

Nothing runs in the background: a task's status is computed whenever it is asked for, so a test moves a
task from in_queue to done by advancing its fake clock, and the real server needs no scheduler.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from enum import StrEnum

from api_client.emulator.config import EmulatorConfig


class Status(StrEnum):
    IN_QUEUE = "in_queue"
    GENERATING = "generating"
    DONE = "done"
    NOT_FOUND = "not_found"


@dataclass
class Task:
    """One accepted submit. ``images`` are the decoded input images (face, style...) as sent."""

    task_id: str
    submitted_at: float
    images: tuple[bytes, ...]
    face_index: int | None
    style_index: int | None
    prompt: str
    seed: int
    width: int
    height: int
    stuck: bool = False
    pace: float = 1.0  # this task's factor on queue_seconds and generate_seconds (generate_jitter)
    outcome_code: int = 10000  # what GetResult answers once done (a seed trigger sets an error)
    renders: dict[str, bytes] = field(default_factory=dict)  # cache: watermark key -> JPEG


@dataclass
class TaskStore:
    config: EmulatorConfig
    rng: random.Random
    tasks: dict[str, Task] = field(default_factory=dict)
    # Its own RNG, so turning jitter on leaves the task ids of a seed as they were.
    pace_rng: random.Random = field(default_factory=random.Random)

    def draw_pace(self) -> float:
        """A new task's pace: 1 without jitter, else uniform in [1 - jitter, 1 + jitter]."""
        jitter = self.config.generate_jitter
        return 1.0 if jitter <= 0 else self.pace_rng.uniform(1.0 - jitter, 1.0 + jitter)

    def duration(self, task: Task) -> float:
        """Seconds from submit to done, with the timings configured now: changing them moves tasks
        already running too, as a service that slows down does."""
        return (self.config.queue_seconds + self.config.generate_seconds) * task.pace

    def done_at(self, task: Task) -> float:
        """When the task reads done (wall clock), as configured now (see `duration`)."""
        return task.submitted_at + self.duration(task)

    def new_id(self) -> str:
        """A 19-digit id like the service's; drawn from the seeded RNG so runs repeat."""
        while True:
            task_id = str(self.rng.randrange(10**18, 10**19))
            if task_id not in self.tasks:
                return task_id

    def add(self, task: Task) -> Task:
        self.tasks[task.task_id] = task
        return task

    def purge(self, now: float) -> list[str]:
        """Forget every expired task (their images are megabytes); returns their ids."""
        ttl = self.config.task_ttl_seconds
        expired = [t.task_id for t in self.tasks.values() if now - t.submitted_at > ttl]
        for task_id in expired:
            del self.tasks[task_id]
        return expired

    def status(self, task_id: str, now: float) -> tuple[Status, Task | None]:
        """Where the task stands at ``now``; expired tasks are forgotten, as the service forgets them."""
        task = self.tasks.get(task_id)
        if task is None:
            return Status.NOT_FOUND, None
        age = now - task.submitted_at
        if age > self.config.task_ttl_seconds:
            del self.tasks[task_id]
            return Status.NOT_FOUND, None
        if age < self.config.not_found_window:
            return Status.NOT_FOUND, None
        if task.stuck or age < self.config.queue_seconds * task.pace:
            return Status.IN_QUEUE, task
        if age < self.duration(task):
            return Status.GENERATING, task
        return Status.DONE, task
