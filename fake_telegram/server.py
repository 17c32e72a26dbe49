"""Run the fake over real HTTP inside the caller's event loop, so PTB talks to it like to api.telegram.org."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Generator

import uvicorn

from fake_telegram.app import create_app
from fake_telegram.core import FakeCore


class _Server(uvicorn.Server):
    """uvicorn without its signal handlers (Ctrl+C belongs to the demo or test runner, not to the fake)
    and without its 0.1 s tick, so stopping it does not wait for one."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.exit_event = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield

    async def main_loop(self) -> None:
        await self.exit_event.wait()

    def stop(self) -> None:
        self.should_exit = True
        self.exit_event.set()


@contextlib.asynccontextmanager
async def serve(fake: FakeCore, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
    """Serve `fake` and yield its base URL; PTB: `.base_url(f"{url}/bot").base_file_url(f"{url}/file/bot")`.

    The socket is bound and listening before the yield, so the first request never races the start-up.
    """
    # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY only on such sockets; without it every
    # request waits ~40 ms for Nagle's algorithm and delayed ACKs.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.setblocking(False)
    fake.closed = False  # Telegram outlives bot restarts: the same fake may be served again
    config = uvicorn.Config(
        create_app(fake), lifespan="off", log_level="warning", timeout_graceful_shutdown=1,
        timeout_keep_alive=5,
    )  # fmt: skip
    server = _Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]), name="fake-telegram")
    bound_port = sock.getsockname()[1]
    try:
        yield f"http://{host}:{bound_port}"
    finally:
        fake.close()
        server.stop()
        try:
            await asyncio.wait_for(task, timeout=5)
        except TimeoutError:
            task.cancel()
        sock.close()
