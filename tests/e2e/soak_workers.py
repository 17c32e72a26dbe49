"""A fork server for the crash soak (test_crash_soak.py): bot processes that restart in milliseconds.

The soak kills a bot process a hundred times. A fresh interpreter spends ~0.7 s of CPU importing the bot
(telegram, httpx, PIL...) before it does anything, which on a small CI machine would make the restarts,
not the bot, the subject of the test. So this process imports everything once, starts no thread and no
event loop, and forks a child for each start: the child is a real process (its own pid, database
connections, sockets and `WORKER_ID` lock) that the test SIGKILLs, SIGSTOPs and SIGCONTs directly. It
runs the same code `portrait-bot run` runs.

Protocol, one line each way on stdin/stdout:
    spawn <mode> <cwd> <log path> <env as JSON>   ->  <pid>
    reap <pid>                                     ->  <exit code, or minus the signal that ended it>
    status <pid>                                   ->  `alive`, or what `reap` would answer (it reaps)
mode `run` is `portrait-bot run` (polls Telegram); `jobs` is the same Application without polling: the
job runner and the Telegram notifier only, as a second worker on the same database. End of input kills
every child still alive.

For a test that fails while a worker hangs: SIGUSR1 makes a child write every thread's stack to its log
(faulthandler, at C level: it works even when the main thread is stuck outside Python), SIGUSR2 every
asyncio task of its event loop with the await it is parked in.
"""

from __future__ import annotations

import asyncio
import faulthandler
import json
import os
import random
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

# Imported here, before any fork: that is the point.
import bot.app
import bot.cli
from bot.config import Settings
from bot.jobs.worker_lock import WorkerLock
from bot.log import setup_logging


async def _jobs_only(settings: Settings) -> None:
    """`start_application` without the updater: no getUpdates, so it never competes with the poller."""
    app = bot.app.build_application(settings)
    await app.initialize()
    assert app.post_init is not None
    await app.post_init(app)
    await app.start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await bot.app.stop_application(app)


def _jobs_main() -> int:
    settings = Settings.from_env()
    setup_logging(settings.log_level, settings.secret_values(), settings.log_format)
    with WorkerLock(settings.db_path, settings.worker_id):
        asyncio.run(_jobs_only(settings))
    return 0


#: The last line of a child's task dump (SIGUSR2): the test waits for it before it reads the log.
TASKS_DUMPED = "---- end of asyncio tasks"


def _dump_tasks(signum: int, frame: object) -> None:
    """Every task of the running event loop and where it waits (a Python handler: runs in the loop's
    thread between two steps, so the loop's task list is consistent)."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        print(f"---- pid {os.getpid()}: no event loop running", file=sys.stderr)
    else:
        tasks = asyncio.all_tasks(loop)
        print(f"---- pid {os.getpid()}: {len(tasks)} asyncio task(s)", file=sys.stderr)
        for task in sorted(tasks, key=lambda t: t.get_name()):
            task.print_stack(limit=12, file=sys.stderr)
    print(TASKS_DUMPED, file=sys.stderr, flush=True)


def _child(mode: str, cwd: str, log_path: str, env: dict[str, str]) -> None:
    try:
        os.chdir(cwd)
        fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.environ.clear()
        os.environ.update(env)
        random.seed()  # each child its own randomness, not the server's copy
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        faulthandler.register(signal.SIGUSR1, file=sys.stderr, all_threads=True)
        signal.signal(signal.SIGUSR2, _dump_tasks)
        code = bot.cli.main(["run"]) if mode == "run" else _jobs_main()
    except BaseException as exc:  # a child must never return into the server's loop
        print(f"soak worker: {exc!r}", file=sys.stderr, flush=True)
        code = 70
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def main() -> None:
    children: set[int] = set()
    ended: dict[int, int] = {}  # reaped by `status`: what `reap` answers for them
    for line in sys.stdin:
        command, _, rest = line.strip().partition(" ")
        if command == "spawn":
            mode, cwd, log_path, env = rest.split(" ", 3)
            pid = os.fork()
            if pid == 0:
                _child(mode, cwd, log_path, json.loads(env))
            children.add(pid)
            print(pid, flush=True)
        elif command == "reap":
            pid = int(rest)
            if pid not in ended:
                _, status = os.waitpid(pid, 0)
                ended[pid] = os.waitstatus_to_exitcode(status)
            children.discard(pid)
            print(ended.pop(pid), flush=True)
        elif command == "status":
            pid = int(rest)
            try:
                done, status = (0, 0) if pid in ended else os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                print("gone", flush=True)  # reaped already: not a child any more
                continue
            if done:
                ended[pid] = os.waitstatus_to_exitcode(status)
                children.discard(pid)
            print(ended.get(pid, "alive"), flush=True)
    for pid in children:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass


if __name__ == "__main__":
    main()
