"""The bot under test: `portrait-bot run` in this process, with the benchmark's instruments around it.

    python -m benchmarks.bot_proc [run --webhook]   (configured by the environment, as `portrait-bot`;
                                                     the arguments are `portrait-bot`'s, `run` by default)

Why a wrapper and not `python -m bot`: the benchmark must count what the bot does without a line of bot or
storage code changed for it, so the counting is patched in here, in the bot's own process, before
`bot.cli.main(["run"])` (or the arguments given) starts:

- PostgreSQL: every write transaction (`storage.postgres.PgDatabase.transaction`: the process's write lock,
  a pooled connection, BEGIN with the schema's advisory lock, the statements, COMMIT), the seconds from
  asking for it to BEGIN's answer and from there to COMMIT's answer (the advisory lock held: no other write
  of any process on that schema runs meanwhile), and how long the process's write lock was held in all
  (its pool wait and round trips included: no other write of this process starts meanwhile).
- SQLite: every commit, as `storage.db.Database` counts them (each `transaction()`, and each one-statement
  `write_one()`, which SQLite commits by itself with no COMMIT call; `durable_commits` of them fsynced with
  synchronous=FULL), and every call that crosses to an aiosqlite connection's thread and back
  (`Connection._execute`: each statement, fetch, commit or rollback is one such hop). If aiosqlite's
  internals move, the hop count reads -1.
- Image work: the CPU time of the threads decoding and preparing received images (the upload check,
  `PreparedCache.keep_upload`, or `check_image`), so the bot's own CPU is its total less what it spent on
  images itself, not less the same decode timed again in the driver (on a shared machine the two differ
  by more than the bot's own figure). Beside it, the event loop's thread alone (`time.thread_time` in
  the SIGUSR1 handler, which runs on that thread): the rest is SQLite's and image threads and the kernel.
- `PORTRAIT_BENCH_COUNTERS=path`: on SIGUSR1 the counters and this process's CPU seconds
  (`time.process_time`, all threads) are written to `path` as JSON, with a sequence number the driver
  waits for, so it reads them at the edges of each measured window.
- `PORTRAIT_BENCH_PROFILE=path`: SIGUSR2 starts cProfile on the event loop's thread (where the bot's Python
  runs; image decoding and SQLite run in worker threads and are not in it), the next SIGUSR2 stops it and
  writes the stats to `path` (pstats format).
- `PORTRAIT_BENCH_FLOOD_LIMIT=off`: PTB's AIORateLimiter with its overall and per-group rates lifted (its
  429 retries kept), to see the bot's own latency under load apart from Telegram's 30 messages/s.

Python runs signal handlers on the main thread between bytecodes, which is the event loop's thread here
(uvloop included: it wakes for them), so the handlers need no locking.
"""

from __future__ import annotations

import asyncio
import contextlib
import cProfile
import functools
import json
import os
import signal
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import FrameType
from typing import Any, Literal, TypeVar

import aiosqlite

T = TypeVar("T")

COUNTERS_ENV = "PORTRAIT_BENCH_COUNTERS"
PROFILE_ENV = "PORTRAIT_BENCH_PROFILE"
FLOOD_ENV = "PORTRAIT_BENCH_FLOOD_LIMIT"


TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


def stat_cpu_seconds(stat: Path) -> float:
    """utime + stime from a /proc `stat` file (a process's, or one thread's under task/)."""
    text = stat.read_text()
    fields = text[text.rindex(")") + 2 :].split()  # the command name may hold spaces and parentheses
    return (int(fields[11]) + int(fields[12])) / TICKS_PER_SECOND


class Counters:
    """Counts of SQLite and PostgreSQL work in this process; `snapshot()` is what SIGUSR1 writes."""

    def __init__(self) -> None:
        self.seq = 0
        self.hops = 0 if hasattr(aiosqlite.Connection, "_execute") else -1
        self.image_cpu = 0.0
        self._image_lock = threading.Lock()
        self.pg_writes = 0
        self.pg_wait = 0.0
        self.pg_held = 0.0
        self.pg_lock_held = 0.0
        self._sqlite_threads: list[threading.Thread] = []
        self._databases: list[Any] = []  # storage.db.Database: their durable_commits are the fsynced ones
        self._sqlite_cpu: dict[int, float] = {}  # thread id -> its CPU seconds when last read
        #: CPU seconds the snapshots themselves took (reading /proc, writing the file): left out of the
        #: figures, which are the bot's. Two snapshots per generation for one user cost ~0.5 ms.
        self._own_cpu = 0.0

    def sqlite_cpu(self) -> float:
        """CPU seconds of aiosqlite's connection threads (statements, commits, fsyncs), read from
        /proc/self/task; a thread that has ended keeps what it had when last read."""
        for thread in self._sqlite_threads:
            if thread.native_id is None:
                continue
            stat = Path(f"/proc/self/task/{thread.native_id}/stat")
            try:
                self._sqlite_cpu[thread.native_id] = stat_cpu_seconds(stat)
            except OSError:
                continue
        return sum(self._sqlite_cpu.values())

    def timed_image_work(self, fn: Callable[..., T]) -> Callable[..., T]:
        """`fn` (run in a worker thread) adding its thread's CPU time to `image_cpu`: the bot's own CPU
        is its total less this, without the noise of timing the same decode again in another process."""
        counters = self

        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> T:
            started = time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                spent = time.thread_time() - started
                with counters._image_lock:
                    counters.image_cpu += spent

        return timed

    def install(self) -> None:
        counters = self
        import bot.handlers.downloads
        import bot.jobs.prepared

        # The upload check (decode + prepare, kept for the generation) and, without a prepared-image
        # cache, the plain decode check. (A generation whose selfie is not prepared yet decodes again in
        # api_client.images.prepare_image, which this does not time: bench_bot's selfies are prepared.)
        cache = bot.jobs.prepared.PreparedCache
        cache.keep_upload = self.timed_image_work(cache.keep_upload)  # type: ignore[method-assign]
        downloads: Any = bot.handlers.downloads
        downloads.check_image = self.timed_image_work(downloads.check_image)
        if os.environ.get("DATABASE_URL", "").startswith("postgres"):
            self._install_postgres()  # asyncpg only where the bot loads it too
        init = aiosqlite.Connection.__init__

        @functools.wraps(init)
        def tracked_init(conn: aiosqlite.Connection, *args: Any, **kwargs: Any) -> None:
            init(conn, *args, **kwargs)
            thread = getattr(conn, "_thread", None)
            if isinstance(thread, threading.Thread):
                counters._sqlite_threads.append(thread)

        aiosqlite.Connection.__init__ = tracked_init  # type: ignore[method-assign, assignment]
        import storage.db

        database_init = storage.db.Database.__init__

        @functools.wraps(database_init)
        def tracked_database(db: storage.db.Database, *args: Any, **kwargs: Any) -> None:
            database_init(db, *args, **kwargs)
            counters._databases.append(db)

        storage.db.Database.__init__ = tracked_database  # type: ignore[method-assign, assignment]
        if self.hops >= 0:
            execute = aiosqlite.Connection._execute

            @functools.wraps(execute)
            async def counted_execute(conn: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
                counters.hops += 1
                return await execute(conn, fn, *args, **kwargs)  # type: ignore[no-untyped-call]

            aiosqlite.Connection._execute = counted_execute  # type: ignore[method-assign, assignment]

    def _install_postgres(self) -> None:
        from storage.postgres import PgDatabase

        counters = self
        transaction = PgDatabase.transaction

        @contextlib.asynccontextmanager
        async def timed(db: PgDatabase, **kwargs: Any) -> AsyncIterator[Any]:
            asked = time.perf_counter()
            began: float | None = None
            try:
                async with transaction(db, **kwargs) as session:
                    began = time.perf_counter()
                    yield session
            finally:
                if began is not None:
                    counters.pg_writes += 1
                    counters.pg_wait += began - asked
                    counters.pg_held += time.perf_counter() - began

        PgDatabase.transaction = timed  # type: ignore[method-assign, assignment]
        init = PgDatabase.__init__

        @functools.wraps(init)
        def timed_lock(db: PgDatabase, *args: Any, **kwargs: Any) -> None:
            init(db, *args, **kwargs)
            db._write_lock = TimedLock(counters)

        PgDatabase.__init__ = timed_lock  # type: ignore[method-assign, assignment]

    def snapshot(self) -> dict[str, float]:
        """The counters now, the CPU figures without what earlier snapshots cost (signal handlers run on
        the main thread, the event loop's, so that is the thread whose time they took)."""
        self.seq += 1
        loop_cpu, cpu = time.thread_time(), time.process_time()
        return {
            "seq": self.seq,
            "commits": sum(db.commits for db in self._databases),
            "sqlite_hops": self.hops,
            "image_cpu": self.image_cpu,
            "loop_cpu": loop_cpu - self._own_cpu,
            "sqlite_cpu": self.sqlite_cpu(),
            "fsynced": sum(db.durable_commits for db in self._databases if db.synchronous == "FULL"),
            "pg_writes": self.pg_writes,
            "pg_wait": self.pg_wait,
            "pg_held": self.pg_held,
            "pg_lock_held": self.pg_lock_held,
            "cpu": cpu - self._own_cpu,
        }

    def write_snapshot(self, target: Path) -> None:
        """`snapshot()` into `target`; what this takes is kept out of the next snapshot's CPU figures."""
        started = time.thread_time()
        write_atomically(target, self.snapshot())
        self._own_cpu += time.thread_time() - started


class TimedLock(asyncio.Lock):
    """An asyncio.Lock that adds the seconds it was held to `counters.pg_lock_held`."""

    def __init__(self, counters: Counters) -> None:
        super().__init__()
        self._counters = counters
        self._since = 0.0

    async def acquire(self) -> Literal[True]:
        await super().acquire()
        self._since = time.perf_counter()
        return True

    def release(self) -> None:
        self._counters.pg_lock_held += time.perf_counter() - self._since
        super().release()


def write_atomically(path: Path, payload: object) -> None:
    """Write then rename, so a reader never sees half a file."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(payload))
    os.replace(partial, path)


class Profiling:
    """cProfile of the main thread, toggled by a signal."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.profile: cProfile.Profile | None = None

    def toggle(self) -> None:
        if self.profile is None:
            # CPU time of this thread, not wall time: a call that waits (for the GIL, a socket) costs none
            self.profile = cProfile.Profile(time.thread_time)
            self.profile.enable()
            return
        self.profile.disable()
        self.profile.dump_stats(str(self.path))
        self.profile = None


def lift_flood_limit() -> None:
    """bot.app builds its limiter with `telegram_rate_limiter(settings)`: give it rates of 0 (off) here."""
    from bot import app
    from bot.ops.ratelimit import TELEGRAM_429_RETRIES, CountingRateLimiter

    def lifted(settings: object) -> CountingRateLimiter:
        return CountingRateLimiter(max_retries=TELEGRAM_429_RETRIES, overall_max_rate=0, group_max_rate=0)

    setattr(app, "telegram_rate_limiter", lifted)  # noqa: B010 (not an export of bot.app)


def main() -> int:
    counters = Counters()
    counters.install()
    counters_path = os.environ.get(COUNTERS_ENV)
    if counters_path:
        target = Path(counters_path)

        def on_usr1(signum: int, frame: FrameType | None) -> None:
            counters.write_snapshot(target)

        signal.signal(signal.SIGUSR1, on_usr1)
    profile_path = os.environ.get(PROFILE_ENV)
    if profile_path:
        profiling = Profiling(Path(profile_path))
        signal.signal(signal.SIGUSR2, lambda signum, frame: profiling.toggle())
    if os.environ.get(FLOOD_ENV, "on") == "off":
        lift_flood_limit()
    from bot.cli import main as bot_main

    return bot_main(sys.argv[1:] or ["run"])


if __name__ == "__main__":
    sys.exit(main())
