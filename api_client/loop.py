"""The event loop the bot and the CLI run on: uvloop where it is installed, asyncio's own elsewhere.

uvloop (the optional `fast` extra; it does not exist on Windows) runs the same asyncio programs with its
I/O, timers and callbacks in C. `benchmarks/bench_client.py` measures it with every transport: with the
default aiohttp transport it saved a few per cent of the client's CPU per task (the client's own Python
work dominates), and it costs nothing. Nothing in the project depends on it: every function here falls
back to the standard loop when it is missing, so the choice is made once, at start-up, by the program
(never by the library on import).
"""

from __future__ import annotations

import asyncio
import importlib
import warnings
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["fast_loop_factory", "install_fast_loop", "run"]

T = TypeVar("T")


def fast_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's `new_event_loop`, or None without uvloop (for `asyncio.Runner(loop_factory=...)`)."""
    try:
        uvloop = importlib.import_module("uvloop")
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def install_fast_loop() -> bool:
    """Make new event loops uvloop loops (for code that creates its own, such as PTB's `run_polling`).

    Returns whether uvloop is now in use; without it nothing changes. Call it once, before any loop is
    created. Python 3.14 deprecates event loop policies; the warning is silenced here because for
    `run_polling` a policy is still the only way in.
    """
    try:
        uvloop = importlib.import_module("uvloop")
    except ImportError:
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return True


def run(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(main)` on uvloop when available (a drop-in for programs that own their loop)."""
    with asyncio.Runner(loop_factory=fast_loop_factory()) as runner:
        return runner.run(main)
