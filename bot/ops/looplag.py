"""How late the event loop wakes a sleeper: a loop busy with CPU work or a blocking call answers late.

One sampler (`LoopLag`) serves two readers: /healthz and /metrics read its latest figure every
LAG_INTERVAL_SECONDS; benchmarks turn on `LagProbe` (`LAG_PROBE_FILE=path`), which samples every 50 ms and
writes the percentiles as JSON to the file (atomically, every WRITE_EVERY seconds and at stop). A bot that
keeps 10,000 users waiting must still answer each update promptly, and lag is the first thing to suffer
when some step blocks the loop. The probe is off by default: it costs a wake-up every 50 ms.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Final

__all__ = ["LAG_INTERVAL_SECONDS", "LagProbe", "LoopLag"]

LAG_INTERVAL_SECONDS: Final = 0.5
PROBE_INTERVAL: Final = 0.05
WRITE_EVERY: Final = 2.0


class LoopLag:
    """Sleeps `interval` over and over; `seconds` is how much later than asked it last woke up, and
    `on_sample` (if any) sees every figure."""

    def __init__(
        self, interval: float = LAG_INTERVAL_SECONDS, on_sample: Callable[[float], None] | None = None
    ) -> None:
        self.interval = interval
        self.seconds = 0.0
        self._on_sample = on_sample
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="loop-lag-probe")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(self.interval)
            self.seconds = max(0.0, loop.time() - before - self.interval)
            if self._on_sample is not None:
                self._on_sample(self.seconds)


class LagProbe:
    """Benchmarks: every lag sample kept, the percentiles written to `path`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.samples: list[float] = []
        self._lag = LoopLag(PROBE_INTERVAL, on_sample=self._record)
        self._since_write = 0.0

    def start(self) -> None:
        self._lag.start()

    async def stop(self) -> None:
        await self._lag.stop()
        self.write()

    def _record(self, seconds: float) -> None:
        self.samples.append(seconds)
        self._since_write += PROBE_INTERVAL + seconds
        if self._since_write >= WRITE_EVERY:
            self.write()
            self._since_write = 0.0

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
