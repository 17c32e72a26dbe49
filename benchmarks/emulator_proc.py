"""The emulator in a process of its own for the bot benchmark, noting when each task was submitted and done.

    python -m benchmarks.emulator_proc --port 8090 [--access-key AK --secret-key SK]

The emulator's app as `python -m api_client.emulator` serves it (signature check, validation, the
lifecycle), with three changes that keep it from setting the pace on a 2-core machine shared with the bot
under test: zero queue and generation time, the result rendered once per distinct request (the real
service renders on its own machines, here ~0.1 s of CPU per task would compete with the bot), and uvicorn's
fastest protocol and loop where installed instead of the CLI's h11 (its protocol carries the drop faults,
which this run does not use).

Around the app, on the wall clock (`time.time`, which the fake Telegram and the driver share):
- `submitted[task_id]`: when the SubmitTask request that created the task reached the server;
- `done[task_id]`: when the first GetResult answer saying `done` for it was sent;
both served as JSON at `GET /bench/marks`.
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import uvicorn

from api_client.emulator import EmulatorConfig, create_app
from api_client.emulator import app as emulator_app
from api_client.emulator.render import LogoInfo, render_result

SUBMIT, RESULT = "CVSync2AsyncSubmitTask", "CVSync2AsyncGetResult"
DONE = b'"status":"done"'

Scope = dict[str, Any]
Message = dict[str, Any]


@functools.lru_cache(maxsize=8)
def _render_cached(face: bytes, style: bytes | None, width: int, height: int, logo: LogoInfo) -> bytes:
    return render_result(face, style, width, height, logo)


def render_once(
    face: bytes, style: bytes | None, width: int, height: int, logo: LogoInfo, seed: int = -1
) -> bytes:
    """The emulator's render without the per-seed variation, so identical requests share one render."""
    return _render_cached(face, style, width, height, logo)


@dataclass
class Marks:
    submitted: dict[str, float] = field(default_factory=dict)
    done: dict[str, float] = field(default_factory=dict)

    def note(self, action: str, arrived: float, request: bytes, response: bytes) -> None:
        if action == SUBMIT:
            data = _data(response)
            if "task_id" in data:
                self.submitted[str(data["task_id"])] = arrived
        elif action == RESULT and DONE in response:
            task_id = _task_id(request)
            if task_id:
                self.done.setdefault(task_id, time.time())


def _data(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body).get("data")
    except (ValueError, AttributeError):
        return {}
    return data if isinstance(data, dict) else {}


def _task_id(body: bytes) -> str | None:
    try:
        value = json.loads(body).get("task_id")
    except (ValueError, AttributeError):
        return None
    return str(value) if value else None


class MarkedApp:
    """ASGI middleware: the emulator's app, its API calls timed into `marks`, plus `GET /bench/marks`."""

    def __init__(self, app: Any, marks: Marks) -> None:
        self.app, self.marks = app, marks

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] == "/bench/marks":
            await _send_json(send, {"submitted": self.marks.submitted, "done": self.marks.done})
            return
        arrived = time.time()
        action = parse_qs(scope.get("query_string", b"").decode()).get("Action", [""])[0]
        request, response = bytearray(), bytearray()

        async def receive_noted() -> Message:
            message: Message = await receive()
            if message["type"] == "http.request":
                request.extend(message.get("body", b""))
            return message

        async def send_noted(message: Message) -> None:
            if message["type"] == "http.response.body":
                response.extend(message.get("body", b""))
                if not message.get("more_body"):
                    self.marks.note(action, arrived, bytes(request), bytes(response))
            await send(message)

        await self.app(scope, receive_noted, send_noted)


async def _send_json(send: Any, payload: object) -> None:
    body = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.emulator_proc", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--access-key", default="AKbench")
    parser.add_argument("--secret-key", default="SKbench")
    args = parser.parse_args(argv)
    emulator_app.render_result = render_once  # type: ignore[attr-defined]  # this process only
    config = EmulatorConfig(
        access_key=args.access_key, secret_key=args.secret_key, queue_seconds=0.0, generate_seconds=0.0
    )
    app = MarkedApp(create_app(config), Marks())
    uvicorn.run(app, host=args.host, port=args.port, lifespan="off", log_level="warning", access_log=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
