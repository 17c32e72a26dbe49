"""The fake as a server of its own: the Bot API plus a small JSON control API under `/fake/` for a driver.

Why: a benchmark or a manual run drives a real bot process, so the users' side must be reachable from
another process. Everything a load run needs, nothing more (JSON in and out):

- `GET  /fake/stats`: `{"calls": n, "downloads": n, "waiting_polls": n, "handed_out": n}` (file
  downloads are no Bot API call, so they are counted apart; a bot is polling once a getUpdates is parked:
  `waiting_polls` > 0);
- `GET  /fake/calls?since=K[&until=L]`: `{"next": len(calls), "methods": {method: count}}` for calls K..L;
- `POST /fake/load/batches {"users": N}`: N new users, each with a private chat -> `{"batch": id, ...}`;
- `POST /fake/load/batches/{id}/selfies`: each user sends the selfie;
- `POST /fake/load/batches/{id}/command {"text": "/anime"}`: all of them send it at one instant;
- `POST /fake/load/batches/{id}/wait {"until": "acknowledged"|"photos", "timeout": s}`: answers when every
  user got there (200) or when the timeout passed (504, with the count and the transcript's tail);
- `GET  /fake/load/batches/{id}`: per user, the fake's timestamps (see `load.LoadUser.to_json`).
"""

from __future__ import annotations

import json
from typing import Any, cast

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from fake_telegram.app import create_app
from fake_telegram.fake import FakeTelegram
from fake_telegram.load import Batch, Phase, ScriptedLoad

MAX_BATCH = 10_000


class DownloadCounter:
    """ASGI middleware counting file downloads (`/file/...`), which the call log does not list."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.count = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/file/"):
            self.count += 1
        await self.app(scope, receive, send)


def create_standalone_app(fake: FakeTelegram, load: ScriptedLoad) -> DownloadCounter:
    """The Bot API routes of `create_app(fake)` and the control routes beside them."""
    counted = DownloadCounter(Starlette())
    counted.app = Starlette(routes=[*control_routes(fake, load, counted), *create_app(fake).routes])
    return counted


def control_routes(fake: FakeTelegram, load: ScriptedLoad, downloads: DownloadCounter) -> list[BaseRoute]:
    async def stats(request: Request) -> JSONResponse:
        return JSONResponse({
            "calls": len(fake.calls), "downloads": downloads.count, "waiting_polls": fake.waiting_polls,
            "handed_out": len(fake.handed_out),
        })  # fmt: skip

    async def calls(request: Request) -> JSONResponse:
        since = int(request.query_params.get("since", "0"))
        until_text = request.query_params.get("until")
        until = int(until_text) if until_text else len(fake.calls)
        return JSONResponse({"next": until, "methods": load.calls_by_method(since, until)})

    async def new_batch(request: Request) -> JSONResponse:
        body = await _json(request)
        size = body.get("users")
        if not isinstance(size, int) or not 1 <= size <= MAX_BATCH:
            return JSONResponse({"error": f"users must be 1..{MAX_BATCH}"}, status_code=400)
        batch = load.add_batch(size)
        return JSONResponse({"batch": batch.id, "chat_ids": list(batch.users)})

    async def selfies(request: Request) -> JSONResponse:
        batch = _batch(load, request)
        load.send_selfies(batch)
        return JSONResponse({"batch": batch.id, "sent": len(batch.users)})

    async def command(request: Request) -> JSONResponse:
        batch = _batch(load, request)
        text = (await _json(request)).get("text")
        if not isinstance(text, str) or not text:
            return JSONResponse({"error": "text is required"}, status_code=400)
        load.send_command(batch, text)
        return JSONResponse({"batch": batch.id, "sent": len(batch.users)})

    async def wait(request: Request) -> JSONResponse:
        batch = _batch(load, request)
        body = await _json(request)
        phase = body.get("until")
        if phase not in ("acknowledged", "photos"):
            return JSONResponse({"error": "until must be acknowledged or photos"}, status_code=400)
        timeout = float(body.get("timeout", 60.0))
        try:
            await load.wait(batch, cast(Phase, phase), timeout)
        except TimeoutError as exc:
            count = load.progress(batch, cast(Phase, phase))
            return JSONResponse({"done": count, "of": len(batch.users), "error": str(exc)}, status_code=504)
        return JSONResponse({"done": len(batch.users), "of": len(batch.users)})

    async def report(request: Request) -> JSONResponse:
        batch = _batch(load, request)
        return JSONResponse({"batch": batch.id, "users": load.report(batch)})

    return [
        Route("/fake/stats", stats, methods=["GET"]),
        Route("/fake/calls", calls, methods=["GET"]),
        Route("/fake/load/batches", new_batch, methods=["POST"]),
        Route("/fake/load/batches/{batch:int}", report, methods=["GET"]),
        Route("/fake/load/batches/{batch:int}/selfies", selfies, methods=["POST"]),
        Route("/fake/load/batches/{batch:int}/command", command, methods=["POST"]),
        Route("/fake/load/batches/{batch:int}/wait", wait, methods=["POST"]),
    ]


def _batch(load: ScriptedLoad, request: Request) -> Batch:
    batch = load.batches.get(int(request.path_params["batch"]))
    if batch is None:
        raise HTTPException(404, "no such batch")
    return batch


async def _json(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        raise HTTPException(400, "the body must be JSON") from None
    return data if isinstance(data, dict) else {}
