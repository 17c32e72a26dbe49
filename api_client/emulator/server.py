"""Serving the emulator over real TCP with uvicorn: from the CLI, or in a background thread for tests.

The emulator runs uvicorn's h11 protocol with one addition: each connection publishes its transport in
``faults.CURRENT_TRANSPORT`` while it reads, and the ASGI task uvicorn creates there copies that context.
That is how a "dropped connection" fault closes the socket without writing a single response byte.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import uvicorn
from starlette.applications import Starlette
from uvicorn.protocols.http.h11_impl import H11Protocol

from api_client.emulator.app import EmulatorState, create_app
from api_client.emulator.config import EmulatorConfig
from api_client.emulator.faults import CURRENT_TRANSPORT


class DroppableH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, exposing the connection's transport to the app for drop faults."""

    def data_received(self, data: bytes) -> None:
        CURRENT_TRANSPORT.set(self.transport)
        super().data_received(data)


def build_server(
    app: Starlette, host: str = "127.0.0.1", port: int = 8080, log_level: str = "info"
) -> uvicorn.Server:
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        http=DroppableH11Protocol,
        loop="asyncio",
        lifespan="off",
        log_level=log_level,
        access_log=True,
    )
    return uvicorn.Server(config)


@dataclass(frozen=True)
class RunningEmulator:
    """A served emulator: ``base_url`` to point clients at, ``state`` to inspect and steer it."""

    app: Starlette
    host: str
    port: int

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def state(self) -> EmulatorState:
        state: EmulatorState = self.app.state.emulator
        return state


@contextmanager
def serve_in_thread(
    config: EmulatorConfig | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    startup_timeout: float = 10.0,
) -> Iterator[RunningEmulator]:
    """Run the emulator on a real socket (port 0: a free one) until the block ends."""
    app = create_app(config)
    server = build_server(app, host, port, log_level="warning")
    thread = threading.Thread(target=server.run, name="emulator-server", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + startup_timeout
        while not server.started and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)  # a thread handshake at start-up, not a timing assumption
        if not server.started:
            raise RuntimeError("the emulator server did not start")
        sockets = [sock for srv in server.servers for sock in (srv.sockets or ())]
        bound_port = sockets[0].getsockname()[1]
        yield RunningEmulator(app, host, bound_port)
    finally:
        server.should_exit = True
        thread.join(timeout=startup_timeout)


def run(config: EmulatorConfig, host: str, port: int, log_level: str = "info") -> None:
    """Serve until interrupted (the CLI's job)."""
    asyncio.run(build_server(create_app(config), host, port, log_level).serve())
