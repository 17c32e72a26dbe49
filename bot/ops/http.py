"""The HTTP side of a process: /healthz, /readyz, /metrics, and in webhook mode the update endpoint.

One Starlette app, served by uvicorn inside the bot's own event loop (as python-telegram-bot's
custom-webhook example does). Why a server class of our own: uvicorn would install its own SIGINT/SIGTERM
handlers and re-raise the signal once it stopped, killing the process before the bot stopped gracefully;
here the process (bot/ops/process.py) owns the signals and stops the server first. The socket is bound
before the server starts, so a port already in use is an OSError the command line can report in one line,
and port 0 (tests) tells which port it got.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Generator

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.config_values import Listen
from bot.ops import metrics
from bot.ops.health import ProcessView, liveness, readiness

#: Seconds uvicorn gives requests in flight when the process stops (they only enqueue: this is plenty).
GRACEFUL_SECONDS = 5


def ops_app(view: ProcessView, *extra: Route) -> Starlette:
    """The three operator endpoints, plus `extra` routes (the webhook)."""

    async def healthz(request: Request) -> Response:
        ok, checks = await liveness(view)
        return JSONResponse({"ok": ok, "role": view.role, "checks": checks}, status_code=200 if ok else 503)

    async def readyz(request: Request) -> Response:
        ok, checks = readiness(view)
        return JSONResponse({"ok": ok, "role": view.role, "checks": checks}, status_code=200 if ok else 503)

    async def metrics_text(request: Request) -> Response:
        services = view.services
        body = await metrics.render(services.store if services is not None else None)
        return Response(body, media_type=metrics.CONTENT_TYPE)

    return Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", metrics_text, methods=["GET"]),
            *extra,
        ]
    )


class _Server(uvicorn.Server):
    """uvicorn without its signal handlers (the process owns them)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class HttpServer:
    """`await start()` binds and serves; `await stop()` lets requests in flight finish, then stops."""

    def __init__(self, app: Starlette, listen: Listen) -> None:
        self._app = app
        self._listen = listen
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None
        self.port = listen.port

    async def start(self) -> None:
        sock = _bind(self._listen)
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self._app, lifespan="off", log_level="warning", access_log=False,
            timeout_graceful_shutdown=GRACEFUL_SECONDS,
        )  # fmt: skip
        self._server = _Server(config)
        # The socket already listens: connections wait in its backlog until uvicorn accepts them.
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name="http-server")

    async def stop(self) -> None:
        if self._server is None or self._task is None:
            return
        self._server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(self._task), GRACEFUL_SECONDS + 2)
        except TimeoutError:
            self._task.cancel()
        self._server = self._task = None


def _bind(listen: Listen) -> socket.socket:
    family = socket.AF_INET6 if ":" in listen.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((listen.host, listen.port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock
