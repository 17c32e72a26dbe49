"""One upstream place, held by a task from before its submit until the poll reads its result `done`.

Why not simply `async with client.task_slot()` around the whole upstream part: the service counts a task
against the account's limit until its result is fetched, not until the bot has finished with it. After the
`done` reading the bot still records the polling model's timings (a database write) and unpacks the
image; holding the place through that leaves the service a task short of its limit on every hand-over,
and with short generations the hand-overs add up. So the place is given back the moment `done` is read
(`free()`, called from the poll's progress callback) and, whatever happens, when the part ends.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from types import TracebackType

__all__ = ["UpstreamPlace"]


class UpstreamPlace:
    """`async with UpstreamPlace(client.task_slot(), on_free) as place:` ... `await place.free()`.

    `on_free` runs once, right after the slot is given back (the runner starts the next task there)."""

    def __init__(self, slot: AbstractAsyncContextManager[None], on_free: Callable[[], None]) -> None:
        self._slot = slot
        self._on_free = on_free
        self._stack = AsyncExitStack()
        self._held = False

    async def __aenter__(self) -> UpstreamPlace:
        await self._stack.enter_async_context(self._slot)
        self._held = True
        return self

    async def free(self) -> None:
        """Give the place back (once; later calls do nothing)."""
        if not self._held:
            return
        self._held = False
        try:
            await self._stack.aclose()
        finally:
            self._on_free()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.free()
