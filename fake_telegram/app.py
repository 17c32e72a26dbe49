"""The ASGI face of the fake: `/bot{token}/{method}` and `/file/bot{token}/{path}`, as api.telegram.org."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from fake_telegram.core import FakeCore
from fake_telegram.errors import NOT_FOUND, UNAUTHORIZED, ApiError
from fake_telegram.media import render
from fake_telegram.model import BotCall
from fake_telegram.params import Params, parse_body
from fake_telegram.service import METHODS

DOWNLOAD_CHUNK = 256 * 1024


def create_app(fake: FakeCore) -> Starlette:
    """Starlette app serving `fake`; every call is recorded in `fake.calls`, failures in the transcript."""

    async def bot_method(request: Request) -> Response:
        method = request.path_params["method"]
        at = fake.clock()
        params = Params()
        result: object = None
        try:
            if request.path_params["token"] != fake.token:
                raise UNAUTHORIZED
            params = parse_body(
                request.headers.get("content-type", ""), await request.body(), request.url.query
            )
            handler = METHODS.get(method.lower())
            fault = fake.take_fault(method)
            if fault is not None:
                raise fault
            if handler is None:
                raise NOT_FOUND
            result = await handler(fake, params)
            status, body = 200, {"ok": True, "result": result}
        except ApiError as error:
            status, body = error.status, error.to_json()
            _note_failure(fake, method, params, error)
        files = {name: upload.data for name, upload in params.uploads.items()}
        error_text = None if status == 200 else str(body.get("description"))
        fake.record(BotCall(method, params.public(), files, at, status, error_text, result, fake.clock()))
        delay = fake.take_delay(method) if status == 200 else 0.0
        if delay > 0:
            await _late(fake, delay)
        return JSONResponse(body, status_code=status)

    async def download(request: Request) -> Response:
        if request.path_params["token"] != fake.token:
            return JSONResponse(UNAUTHORIZED.to_json(), status_code=401)
        stored = fake.file_by_path(request.path_params["file_path"])
        if stored is None:
            return JSONResponse(NOT_FOUND.to_json(), status_code=404)
        if stored.max_side is not None and stored.rendered is None:
            stored.rendered = await asyncio.to_thread(render, stored.source, stored.max_side)
        content = stored.rendered if stored.rendered is not None else stored.source
        # An unsized file says its size nowhere, not even in the download (sent chunked).
        headers = {"content-length": str(len(content))} if stored.report_size else None
        return StreamingResponse(
            _chunks(content), media_type=stored.mime_type or "application/octet-stream", headers=headers
        )

    return Starlette(
        routes=[
            Route("/bot{token}/{method}", bot_method, methods=["GET", "POST"]),
            Route("/file/bot{token}/{file_path:path}", download, methods=["GET"]),
        ]
    )


async def _chunks(content: bytes) -> AsyncIterator[bytes]:
    """The file in slices, as a server streams it: a whole 19 MB body handed to the socket at once would be
    copied into the transport's buffer, and the fake's memory would hide the bot's in memory tests."""
    view = memoryview(content)
    for start in range(0, len(content), DOWNLOAD_CHUNK):
        yield bytes(view[start : start + DOWNLOAD_CHUNK])


async def _late(fake: FakeCore, delay: float) -> None:
    """Answer late (the call already took effect) unless the server is closing."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + delay
    while not fake.closed and (remaining := deadline - loop.time()) > 0:
        await fake._wait_change(remaining)


def _note_failure(fake: FakeCore, method: str, params: Params, error: ApiError) -> None:
    if method.lower() == "getupdates" or error.status == 401:
        return
    with contextlib.suppress(ApiError):
        chat = fake.find_chat(params.chat_id())
        fake.note(chat, f"bot !! {method}: {error.status} {error.description}")
