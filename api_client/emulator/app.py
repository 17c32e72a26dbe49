"""The emulator as an ASGI app: the two actions of api.md, the gateway in front, faults on top.

Request path, in the order the real service meets it: route Action/Version (gateway 100002/100008), verify
the signature (gateway 1000xx), injected faults, then the action's own checks and business codes.
Everything a test wants to inspect or change at runtime hangs off ``app.state.emulator``
(an ``EmulatorState``): ``faults``, ``config``, ``tasks``, ``received``, ``calls``. From another process,
``GET /emulator/submits`` lists the accepted submits (task id, prompt, seed, time) and ``received``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from api_client.emulator.config import (
    BLOCKLIST_WORD,
    BUSINESS_CODES,
    GATEWAY_CODES,
    MAGENTA,
    MAGENTA_TOLERANCE,
    RESULT_ACTION,
    RISKY_WORD,
    SEED_TRIGGERS,
    SUBMIT_ACTION,
    VERSION,
    EmulatorConfig,
)
from api_client.emulator.faults import FAULT_CODES, Fault, FaultState, drop_connection
from api_client.emulator.render import LogoInfo, render_result
from api_client.emulator.tasks import Status, Task, TaskStore
from api_client.emulator.validate import (
    BusinessError,
    check_req_key,
    parse_object,
    read_req_json,
    read_submit,
)
from api_client.emulator.verify import verify_request


@dataclass(frozen=True)
class Call:
    """One answered request, for tests: ``code`` is the business code, gateway CodeN, or None if dropped."""

    action: str
    http_status: int | None
    code: int | None


@dataclass
class EmulatorState:
    config: EmulatorConfig
    faults: FaultState
    store: TaskStore
    rng: random.Random
    images: dict[str, bytes] = field(default_factory=dict)  # served at /emulator/images/{id}.jpg
    received: Counter[str] = field(default_factory=Counter)  # requests per action, rejected ones too
    calls: list[Call] = field(default_factory=list)
    #: Tasks accepted whose final answer (a result or the task's error) has not been fetched yet, and the
    #: most there ever were at once: what a client's concurrent-task limit is about.
    in_flight: set[str] = field(default_factory=set)
    max_in_flight: int = 0

    @property
    def tasks(self) -> dict[str, Task]:
        return self.store.tasks

    @property
    def submits_received(self) -> int:
        return self.received[SUBMIT_ACTION]

    def request_id(self) -> str:
        stamp = datetime.fromtimestamp(self.config.clock(), UTC).strftime("%Y%m%d%H%M%S")
        return f"{stamp}{self.rng.getrandbits(80):020X}"


def format_elapsed(seconds: float) -> str:
    """Go's duration style, as the service prints it: ``104.852309ms``, ``16.52978614s``."""
    if seconds >= 1:
        return f"{seconds:.8f}".rstrip("0").rstrip(".") + "s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.6f}".rstrip("0").rstrip(".") + "ms"
    return f"{seconds * 1e6:.3f}".rstrip("0").rstrip(".") + "µs"


class CodedResponse(JSONResponse):
    """A JSON answer that remembers its code, so the call log needs no re-parse of the body."""

    def __init__(self, content: object, status_code: int, code: int, request_id: str) -> None:
        super().__init__(content, status_code=status_code, headers={"X-Tt-Logid": request_id})
        self.code = code


def _business(
    state: EmulatorState, code: int, started: float, data: object = None, detail: str = ""
) -> CodedResponse:
    http_status, message = BUSINESS_CODES[code]
    request_id = state.request_id()
    body = {
        "code": code,
        "data": data,
        "message": f"{message}: {detail}" if detail else message,
        "request_id": request_id,
        "status": code,
        "time_elapsed": format_elapsed(time.perf_counter() - started),
    }
    return CodedResponse(body, http_status, code, request_id)


def _gateway(
    state: EmulatorState, code_n: int, message: str, action: str, version: str
) -> CodedResponse:
    http_status, code = GATEWAY_CODES[code_n]
    request_id = state.request_id()
    metadata = {
        "RequestId": request_id,
        "Action": action,
        "Version": version,
        "Service": state.config.service,
        "Region": state.config.region,
        "Error": {"CodeN": code_n, "Code": code, "Message": message},
    }
    return CodedResponse({"ResponseMetadata": metadata}, http_status, code_n, request_id)


def _is_magenta(pixel: tuple[int, int, int]) -> bool:
    return all(abs(have - want) <= MAGENTA_TOLERANCE for have, want in zip(pixel, MAGENTA, strict=True))


async def _submit(state: EmulatorState, raw: bytes, started: float) -> CodedResponse:
    body = parse_object(raw, state.config.max_body_bytes)
    check_req_key(body)
    spec, infos = await read_submit(body, state.images.get, state.config.fetch_local_urls)
    prompt = spec.prompt.lower()
    if RISKY_WORD in prompt:
        raise BusinessError(50412)
    if BLOCKLIST_WORD in prompt:
        raise BusinessError(50413)
    if any(_is_magenta(info.centre) for info in infos):
        raise BusinessError(50411)
    for expired in state.store.purge(state.config.clock()):
        for image_id in [key for key in state.images if key.startswith(f"{expired}-")]:
            del state.images[image_id]
    task = state.store.add(
        Task(
            task_id=state.store.new_id(),
            submitted_at=state.config.clock(),
            images=spec.images,
            face_index=spec.face_index,
            style_index=spec.style_index,
            prompt=spec.prompt,
            seed=spec.seed,
            width=spec.width,
            height=spec.height,
            stuck=state.faults.draw_stuck(),
            pace=state.store.draw_pace(),
            outcome_code=spec.seed if spec.seed in SEED_TRIGGERS else 10000,
        )
    )
    state.in_flight.add(task.task_id)
    state.max_in_flight = max(state.max_in_flight, len(state.in_flight))
    return _business(state, 10000, started, {"task_id": task.task_id})


async def _render(task: Task, logo: LogoInfo) -> bytes:
    key = logo.cache_key()
    if key not in task.renders:
        face = task.images[task.face_index or 0]
        style = task.images[task.style_index] if task.style_index is not None else None
        # The service draws a random seed for -1; the emulator derives one from the task id so runs repeat.
        seed = task.seed if task.seed >= 0 else int(task.task_id) % 1_000_003
        task.renders[key] = await asyncio.to_thread(
            render_result, face, style, task.width, task.height, logo, seed
        )
    return task.renders[key]


async def _get_result(state: EmulatorState, raw: bytes, started: float, base_url: str) -> CodedResponse:
    body = parse_object(raw, state.config.max_body_bytes)
    check_req_key(body)
    task_id = body.get("task_id")
    if task_id is None or task_id == "":
        raise BusinessError(50204, "task_id")
    if not isinstance(task_id, str):
        raise BusinessError(50200, "task_id must be a string")
    logo, return_url = read_req_json(body)
    status, task = state.store.status(task_id, state.config.clock())
    data: dict[str, object] = {
        "algorithm_base_resp": {"status_code": 0, "status_message": "Success"},
        "binary_data_base64": None,
        "image_urls": None,
        "response_data": "",
        "status": str(status),
    }
    if status is not Status.DONE or task is None:
        return _business(state, 10000, started, data)
    state.in_flight.discard(task.task_id)
    if task.outcome_code != 10000:
        return _business(state, task.outcome_code, started)
    image = await _render(task, logo)
    if return_url:
        image_id = f"{task.task_id}-{hashlib.sha256(logo.cache_key().encode()).hexdigest()[:10]}"
        state.images[image_id] = image
        base = (state.config.public_base_url or base_url).rstrip("/")
        data.update(binary_data_base64=[], image_urls=[f"{base}/emulator/images/{image_id}.jpg"])
    else:
        data.update(binary_data_base64=[base64.b64encode(image).decode("ascii")], image_urls=[""])
    return _business(state, 10000, started, data)


async def _api(request: Request) -> Response:
    state: EmulatorState = request.app.state.emulator
    started = time.perf_counter()
    action = request.query_params.get("Action", "")
    version = request.query_params.get("Version", "")
    if not action or not version:
        missing = "Action" if not action else "Version"
        response = _gateway(state, 100002, f"The request is missing {missing} parameter.", action, version)
        state.calls.append(Call(action, response.status_code, 100002))
        return response
    if action not in (SUBMIT_ACTION, RESULT_ACTION) or version != VERSION:
        response = _gateway(state, 100008, f"Could not find operation {action} for version {version}",
                            action, version)
        state.calls.append(Call(action, response.status_code, 100008))
        return response
    state.received[action] += 1
    raw = await request.body()
    config = state.config
    if config.check_signature:
        verdict = verify_request(
            request.method,
            request.url.path,
            request.scope["query_string"].decode("utf-8", "replace"),
            [(k.decode("latin-1"), v.decode("utf-8", "replace")) for k, v in request.scope["headers"]],
            raw,
            config.access_key,
            config.secret_key,
            config.clock(),
            region=config.region,
            service=config.service,
            max_skew=config.max_clock_skew,
        )
        if not verdict.ok:
            state.calls.append(Call(action, verdict.http_status, verdict.code_n))
            return _gateway(state, verdict.code_n, verdict.message, action, version)

    fault = state.faults.draw(action)
    if state.faults.latency_seconds > 0:
        await config.sleep(state.faults.latency_seconds)
    if fault is Fault.DROP:
        state.calls.append(Call(action, None, None))
        await drop_connection()
        return Response(status_code=500)
    if fault in FAULT_CODES:
        response = _business(state, FAULT_CODES[fault], started)
    else:
        try:
            if action == SUBMIT_ACTION:
                response = await _submit(state, raw, started)
            else:
                response = await _get_result(state, raw, started, str(request.base_url))
        except BusinessError as error:
            response = _business(state, error.code, started, detail=error.detail)
    if fault is Fault.DROP_AFTER:
        state.calls.append(Call(action, None, None))
        await drop_connection()
        return Response(status_code=500)
    state.calls.append(Call(action, response.status_code, response.code))
    return response


async def _image(request: Request) -> Response:
    state: EmulatorState = request.app.state.emulator
    image = state.images.get(request.path_params["image_id"])
    if image is None:
        return Response(status_code=404)
    return Response(image, media_type="image/jpeg")


async def _health(request: Request) -> Response:
    return JSONResponse({"ok": True})


async def _submits(request: Request) -> Response:
    """Every accepted submit, oldest first, and the requests received per action: for tests that run the
    emulator in its own process and count submits per task (a prompt marker) from outside."""
    state: EmulatorState = request.app.state.emulator
    accepted = [
        {"task_id": t.task_id, "prompt": t.prompt, "seed": t.seed, "submitted_at": t.submitted_at}
        for t in sorted(state.tasks.values(), key=lambda t: t.submitted_at)
    ]
    return JSONResponse({"received": dict(state.received), "accepted": accepted})


def create_app(config: EmulatorConfig | None = None) -> Starlette:
    """A fresh emulator; its state (tasks, faults, counters) is ``app.state.emulator``."""
    config = config or EmulatorConfig()
    state = EmulatorState(
        config=config,
        faults=FaultState.from_config(config),
        store=TaskStore(
            config, random.Random(config.rng_seed + 1), pace_rng=random.Random(config.rng_seed + 3)
        ),
        rng=random.Random(config.rng_seed + 2),
    )
    app = Starlette(
        routes=[
            Route("/", _api, methods=["POST"]),
            Route("/emulator/images/{image_id}.jpg", _image, methods=["GET"]),
            Route("/emulator/health", _health, methods=["GET"]),
            Route("/emulator/submits", _submits, methods=["GET"]),
        ]
    )
    app.state.emulator = state
    return app
