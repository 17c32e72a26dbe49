"""Awaiting a database call to its end even when the caller is cancelled meanwhile.

Why: a transaction's BEGIN, COMMIT and ROLLBACK must not be left half-way. aiosqlite runs each on its
own thread, where a cancelled `await` does not stop it, and asyncpg's connection must not go back to its
pool inside a transaction; the code after such a call (a rollback, the next BEGIN) has to see where it
really left the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import TypeVar

import aiosqlite

__all__ = ["run_to_completion", "to_the_end"]

T = TypeVar("T")


async def run_to_completion(step: Awaitable[T]) -> T:
    """Await `step` to the end even if we are cancelled meanwhile, then re-raise the cancellation.

    `asyncio.shield` alone is not enough: it protects the step, but the awaiter still returns early, and the
    code after it (a rollback, the next BEGIN) would race a statement still running on aiosqlite's thread.
    """
    future = asyncio.ensure_future(step)
    cancelled = False
    while True:
        try:
            result = await asyncio.shield(future)
            break
        except asyncio.CancelledError:
            if future.done():
                raise
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError
    return result


async def to_the_end(conn: aiosqlite.Connection, step: Awaitable[T]) -> T:
    """`run_to_completion` for one aiosqlite call, without its task and shield on the way that is not
    cancelled: those cost about a third of a hop, and every transaction's BEGIN and COMMIT takes this way.

    Why it is enough: an aiosqlite call puts its statement on the connection's queue before its first
    suspension, so a cancellation can only reach an `await` whose statement is queued. The connection's
    thread runs its queue in order: once a marker statement queued behind it has run, the cancelled one
    has ended too, and the code after (a rollback, the next BEGIN) sees where it left the connection.
    """
    try:
        return await step
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):  # a closed connection has nothing left to run
            await run_to_completion(conn.execute_fetchall("SELECT 1"))
        raise
