"""A tiny event-loop lag probe for benchmarks: `LAG_PROBE_FILE=path` turns it on.

Why: a bot that keeps 10,000 users waiting must still answer each update promptly, and the first thing to
suffer when some step blocks the loop (a big synchronous loop, CPU work outside a worker thread) is the
delay of everything else. The probe sleeps PROBE_INTERVAL seconds over and over and records how much
later than asked it woke up; every WRITE_EVERY seconds, and at stop, it writes the percentiles as JSON to
the file (atomically), where a benchmark reads them. Off by default: it costs a wake-up every 50 ms.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from pathlib import Path
from typing import Final

__all__ = ["LagProbe"]

PROBE_INTERVAL: Final = 0.05
WRITE_EVERY: Final = 2.0


class LagProbe:
    """Measures the event loop's wake-up lag and writes a summary to `path`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.samples: list[float] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="lag-probe")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self.write()

    async def _run(self) -> None:
        written = time.monotonic()
        while True:
            asked = time.monotonic()
            await asyncio.sleep(PROBE_INTERVAL)
            now = time.monotonic()
            self.samples.append(max(0.0, now - asked - PROBE_INTERVAL))
            if now - written >= WRITE_EVERY:
                self.write()
                written = now

    def summary(self) -> dict[str, float]:
        ordered = sorted(self.samples)
        if not ordered:
            return {"samples": 0}

        def at(share: float) -> float:
            return ordered[min(len(ordered) - 1, int(share * len(ordered)))]

        return {"samples": len(ordered), "p50": at(0.50), "p99": at(0.99), "max": ordered[-1]}

    def write(self) -> None:
        temporary = self.path.with_name(self.path.name + ".tmp")
        temporary.write_text(json.dumps(self.summary()))
        os.replace(temporary, self.path)
