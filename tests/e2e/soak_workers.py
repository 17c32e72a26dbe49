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
mode `run` is `portrait-bot run` (polls Telegram); `jobs` is the same Application without polling: the
job runner and the Telegram notifier only, as a second worker on the same database. End of input kills
every child still alive.
"""

from __future__ import annotations

import asyncio
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
        code = bot.cli.main(["run"]) if mode == "run" else _jobs_main()
    except BaseException as exc:  # a child must never return into the server's loop
        print(f"soak worker: {exc!r}", file=sys.stderr, flush=True)
        code = 70
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def main() -> None:
    children: set[int] = set()
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
            _, status = os.waitpid(pid, 0)
            children.discard(pid)
            print(os.waitstatus_to_exitcode(status), flush=True)
    for pid in children:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass


if __name__ == "__main__":
    main()
