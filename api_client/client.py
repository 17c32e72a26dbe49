"""`PortraitClient`: submit a portrait task, read its result, wait for it; one retry loop for all of it.

Every HTTP call goes through `_call`, the only place that retries (house rule 5). It serialises the body
once, compactly, so the bytes signed by `VolcengineAuth` are the bytes sent; takes a throttle token before
every attempt; asks `retry.classify` whether a failure may be retried, `RetryPolicy` how long to wait (on the
injected clock) and `RetryBudget` whether the process can still afford it.

CPU per call is kept low on purpose (a bot polls many tasks at once; `benchmarks/bench_client.py` holds it
against the official SDK): no `httpx.AsyncClient` (its URL merging, cookie jar and default-header merging
cost more than the rest of a poll); a URL and headers built once per action, the signature computed from
them (`VolcengineAuth.signing_headers`) and the request handed to the transport's `exchange`
(`transport.exchange_for`: the aiohttp transport's own, without httpx Request/Response objects, or one
through `handle_async_request` for any other httpx transport). JSON goes through orjson and base64 through
pybase64 (each several times faster than the standard library on a multi-MB image body); the image bytes
are encoded once into the body and decoded once out of the answer. The transport is a constructor choice,
see `transport.py`.

A submit is billed. It is resent only when the service surely never ran it: a connect-phase failure or a
definite throttle answer (HTTP 429, 50429, 50430, 100018). A read timeout, a dropped connection or a 5xx
after the request was written become `SubmitOutcomeUnknown` and are never resent (it may bill twice).

Logging goes to the "api_client" logger: action, attempt, HTTP status, code, request_id and latency, never
headers or bodies (the Authorization header and base64 images stay out).
"""

from __future__ import annotations

import binascii
import json
import logging
import os
import random
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final

import httpx
import orjson
import pybase64

from .auth import VolcengineAuth
from .clock import Clock, SystemClock
from .errors import (
    AuthError,
    PortraitAPIError,
    ServerError,
    SubmitOutcomeUnknown,
    TransportError,
    error_from_response,
    error_from_transport,
)
from .models import REQ_KEY, SubmitRequest, TaskResult, TaskStatus, Watermark
from .polling import DEFAULT_DEADLINE, PollSchedule, ProgressCallback, wait
from .retry import RetryBudget, RetryKind, RetryPolicy, classify, parse_retry_after, retry_after_of
from .throttle import SharedLimits, Throttle
from .transport import DEFAULT_LIMITS, DEFAULT_TRANSPORT, Answer, TransportName, exchange_for, make_transport

__all__ = [
    "API_VERSION",
    "DEFAULT_ENDPOINT",
    "DEFAULT_LIMITS",
    "DEFAULT_TIMEOUT",
    "REGION",
    "RESULT_ACTION",
    "SERVICE",
    "SUBMIT_ACTION",
    "AttemptObserver",
    "PortraitClient",
]

DEFAULT_ENDPOINT: Final = "https://visual.volcengineapi.com"
REGION: Final = "cn-north-1"
SERVICE: Final = "cv"
API_VERSION: Final = "2022-08-31"
SUBMIT_ACTION: Final = "CVSync2AsyncSubmitTask"
RESULT_ACTION: Final = "CVSync2AsyncGetResult"
SUCCESS_CODE: Final = 10000

#: Per phase: connecting should be quick; a submit writes up to ~8 MB and a result reads a few MB.
DEFAULT_TIMEOUT: Final = httpx.Timeout(connect=5.0, read=30.0, write=30.0, pool=10.0)
_HEADERS: Final = (("Content-Type", "application/json"), ("Accept", "application/json"),
                   ("Accept-Encoding", "gzip, deflate"), ("User-Agent", "portrait-bot"))

log = logging.getLogger("api_client")

#: Told about every HTTP attempt once it ended: (action, seconds taken, HTTP status or None when no answer
#: came, the error's code or None for a success). For metrics; it must be quick and must not raise.
AttemptObserver = Callable[[str, float, int | None, int | None], None]


@dataclass(frozen=True)
class _Reply:
    """A successful answer: its `data` object and the request id the service gave it."""

    data: Mapping[str, Any]
    request_id: str


class PortraitClient:
    """Async client of the portrait API over one keep-alive connection pool.

    Use one per process (it holds the shared throttle and retry budget): `async with PortraitClient() as c`.
    `transport` is a name (`"aiohttp"`, the default, or `"httpx"`; see `api_client.transport`) or any
    `httpx.AsyncBaseTransport`, such as `httpx.MockTransport` or `httpx.ASGITransport` in tests. A transport
    passed in is closed with the client, as `httpx.AsyncClient` did. `shared_limits` adds limits shared with
    other processes of the account to this one's (api_client/throttle.py); closing them is the caller's.
    """

    def __init__(
        self,
        access_key: str | None = None,
        secret_key: str | None = None,
        *,
        endpoint: str = DEFAULT_ENDPOINT,
        region: str = REGION,
        service: str = SERVICE,
        transport: httpx.AsyncBaseTransport | TransportName | None = None,
        timeout: httpx.Timeout | None = None,
        max_retries: int = 3,
        qps: float = 5.0,
        max_concurrent_tasks: int = 10,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        observer: AttemptObserver | None = None,
        shared_limits: SharedLimits | None = None,
    ) -> None:
        access_key = access_key or os.environ.get("VOLC_ACCESSKEY")
        secret_key = secret_key or os.environ.get("VOLC_SECRETKEY")
        if not access_key or not secret_key:
            raise AuthError(
                "missing credentials: pass access_key/secret_key or set VOLC_ACCESSKEY/VOLC_SECRETKEY"
            )
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0 (0 disables retries)")
        self.endpoint = endpoint.rstrip("/")
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.policy = RetryPolicy(max_attempts=max_retries + 1, rng=rng)
        self.budget = RetryBudget()
        self.throttle = Throttle(qps, max_concurrent_tasks, self.clock, shared=shared_limits)
        self._auth = VolcengineAuth(access_key, secret_key, region=region, service=service, clock=self.clock)
        if transport is None or isinstance(transport, str):
            transport = make_transport(transport or DEFAULT_TRANSPORT, endpoint=self.endpoint,
                                       limits=DEFAULT_LIMITS)
        self._transport: httpx.AsyncBaseTransport = transport
        self._exchange = exchange_for(transport)
        self._timeout = (timeout if timeout is not None else DEFAULT_TIMEOUT).as_dict()
        self._urls = {
            action: httpx.URL(f"{self.endpoint}/", params={"Action": action, "Version": API_VERSION})
            for action in (SUBMIT_ACTION, RESULT_ACTION)
        }
        # Host is signed, so it is set here, as httpx would set it from the URL (punycode, non-default port).
        host = self._urls[SUBMIT_ACTION].netloc.decode("ascii")
        self._headers: Final = (("Host", host), *_HEADERS)
        self._observer = observer

    def __repr__(self) -> str:
        return f"PortraitClient(endpoint={self.endpoint!r}, {self.throttle!r})"

    async def __aenter__(self) -> PortraitClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._transport.aclose()

    def task_slot(self) -> AbstractAsyncContextManager[None]:
        """One of `max_concurrent_tasks` places, held from submit until the result (or failure)."""
        return self.throttle.task_slot()

    async def submit(self, request: SubmitRequest) -> str:
        """Validate locally, submit, and return the upstream task id. Never resends an uncertain submit."""
        body = request.to_body()
        reply = await self._call(SUBMIT_ACTION, body, resend_safe=False)
        task_id = reply.data.get("task_id")
        if not isinstance(task_id, str | int) or isinstance(task_id, bool) or not str(task_id):
            raise SubmitOutcomeUnknown("submit succeeded without a task_id", request_id=reply.request_id)
        log.info("task submitted", extra={"action": SUBMIT_ACTION, "task_id": str(task_id),
                                           "request_id": reply.request_id})
        return str(task_id)

    async def get_result(self, task_id: str, *, watermark: Watermark | None = None) -> TaskResult:
        """One poll. DONE carries the decoded images; a task that ended in error raises the mapped error."""
        body: dict[str, object] = {"req_key": REQ_KEY, "task_id": task_id}
        if watermark is not None:
            body["req_json"] = watermark.to_req_json()
        reply = await self._call(RESULT_ACTION, body, resend_safe=True)
        return _task_result(reply)

    async def wait(
        self,
        task_id: str,
        *,
        watermark: Watermark | None = None,
        on_progress: ProgressCallback | None = None,
        deadline: float = DEFAULT_DEADLINE,
        schedule: PollSchedule | None = None,
    ) -> TaskResult:
        """Poll `task_id` on `schedule` until DONE (see polling.wait for the give-up rules)."""

        async def poll() -> TaskResult:
            return await self.get_result(task_id, watermark=watermark)

        return await wait(
            poll, clock=self.clock, deadline=deadline, schedule=schedule, on_progress=on_progress,
            task_id=task_id,
        )

    async def generate(
        self,
        request: SubmitRequest,
        *,
        watermark: Watermark | None = None,
        on_progress: ProgressCallback | None = None,
        deadline: float = DEFAULT_DEADLINE,
    ) -> TaskResult:
        """Submit and wait, holding a task slot throughout."""
        async with self.task_slot():
            task_id = await self.submit(request)
            return await self.wait(task_id, watermark=watermark, on_progress=on_progress, deadline=deadline)

    async def _call(self, action: str, body: Mapping[str, object], *, resend_safe: bool) -> _Reply:
        """POST `body` to `action`, retrying what may be retried; the one retry loop of the package."""
        content = orjson.dumps(body)  # compact UTF-8: json.dumps(separators=(",", ":"), ensure_ascii=False)
        url = self._urls[action]
        attempt = 0
        spent = 0
        while True:
            attempt += 1
            await self.throttle.acquire_request()
            started = self.clock.monotonic()
            try:
                answer = await self._send(url, content)
            except httpx.RequestError as exc:
                error: PortraitAPIError = error_from_transport(exc)
                status: int | None = None
            else:
                status = answer.status
                try:
                    reply = self._parse(answer)
                except PortraitAPIError as exc:
                    error = exc
                else:
                    self.budget.succeed(spent)
                    self._observe(action, started, status, None)
                    if log.isEnabledFor(logging.DEBUG):  # a poll's success: skip building the record
                        self._log_attempt(logging.DEBUG, action, attempt, started, status, reply.request_id,
                                          None)
                    return reply
            self._observe(action, started, status, error.code)
            kind = classify(error, resend_safe=resend_safe)
            cost = self.budget.spend(error) if self.policy.should_retry(attempt, kind) else None
            if cost is None:
                final = error if resend_safe else _submit_failure(error)
                self._log_attempt(logging.WARNING, action, attempt, started, status, final.request_id, final)
                raise final
            spent += cost
            delay = self.policy.delay(attempt, kind, retry_after_of(error))
            if kind is RetryKind.THROTTLED:
                self.throttle.hold_off(delay)  # every caller backs off, not just this one
            self._log_attempt(logging.WARNING, action, attempt, started, status, error.request_id, error,
                              retry_in=delay)
            await self.clock.sleep(delay)

    async def _send(self, url: httpx.URL, content: bytes) -> Answer:
        """One signed POST, its answer read whole; each attempt is signed afresh (a new X-Date)."""
        signature = self._auth.signing_headers(
            "POST", url.path, url.query.decode("ascii"), self._headers, content
        )
        return await self._exchange("POST", url, [*self._headers, *signature], content, self._timeout)

    def _parse(self, answer: Answer) -> _Reply:
        """Return the reply of a success; raise the mapped error for anything else (either body shape)."""
        payload = _loads(answer.content)
        success = 200 <= answer.status < 300
        if isinstance(payload, Mapping) and payload.get("code") == SUCCESS_CODE and success:
            data = payload.get("data")
            request_id = payload.get("request_id")
            request_id = request_id if isinstance(request_id, str) else ""
            if not isinstance(data, Mapping):
                raise ServerError("success without a data object", http_status=answer.status,
                                  request_id=request_id or None)
            return _Reply(data, request_id)
        retry_after = parse_retry_after(answer.headers, now=self.clock.now())
        if success and not (
            isinstance(payload, Mapping) and ("code" in payload or "ResponseMetadata" in payload)
        ):
            # A 2xx that is not an API answer (a proxy page, a truncated body): the call's fate is unknown.
            raise ServerError("malformed success response", http_status=answer.status)
        body = payload if isinstance(payload, Mapping) else answer.content
        raise error_from_response(answer.status, body, retry_after=retry_after)

    def _observe(self, action: str, started: float, status: int | None, code: int | None) -> None:
        if self._observer is not None:
            self._observer(action, self.clock.monotonic() - started, status, code)

    def _log_attempt(
        self,
        level: int,
        action: str,
        attempt: int,
        started: float,
        status: int | None,
        request_id: str | None,
        error: PortraitAPIError | None,
        *,
        retry_in: float | None = None,
    ) -> None:
        latency = self.clock.monotonic() - started
        fields: dict[str, object] = {
            "action": action,
            "attempt": attempt,
            "status": status,
            "request_id": request_id or "",
            "latency": round(latency, 3),
        }
        if error is not None:
            fields.update(error=type(error).__name__, code=error.code)
        if retry_in is not None:
            fields["retry_in"] = round(retry_in, 3)
        outcome = "ok" if error is None else ("retrying" if retry_in is not None else "failed")
        log.log(
            level,
            "%s attempt %d %s: http=%s code=%s request_id=%s latency=%.3fs",
            action, attempt, outcome, status, fields.get("code"), fields["request_id"], latency,
            extra=fields,
        )


def _loads(content: bytes) -> Any:
    """The parsed JSON body, or None. The standard library gets a second look at what orjson refuses
    (integers past 64 bits, UTF-16), so no valid answer is mistaken for a malformed one."""
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(content)
    except (ValueError, UnicodeDecodeError):
        return None


def _submit_failure(error: PortraitAPIError) -> PortraitAPIError:
    """The error a submit ends with: anything after which the service may have run it is outcome-unknown."""
    if isinstance(error, TransportError) and error.connect_phase:
        return error
    if isinstance(error, TransportError | ServerError) and not isinstance(error, SubmitOutcomeUnknown):
        return SubmitOutcomeUnknown(
            f"submit may have reached the service ({error.message}); not resent",
            code=error.code,
            http_status=error.http_status,
            request_id=error.request_id,
        )
    return error


def _task_result(reply: _Reply) -> TaskResult:
    data = reply.data
    raw_status = data.get("status")
    try:
        status = TaskStatus(str(raw_status))
    except ValueError:
        raise ServerError(f"unexpected task status {raw_status!r}", request_id=reply.request_id) from None
    if status is not TaskStatus.DONE:
        return TaskResult(status, request_id=reply.request_id)
    encoded = data.get("binary_data_base64") or []
    urls = data.get("image_urls") or []
    try:
        images = tuple(pybase64.b64decode(item, validate=True) for item in encoded if item)
    except (binascii.Error, TypeError, ValueError):
        raise ServerError("result images are not valid base64", request_id=reply.request_id) from None
    image_urls = tuple(url for url in urls if isinstance(url, str) and url)
    if not images and not image_urls:
        raise _empty_result_error(data, reply.request_id)
    return TaskResult(status, images=images, image_urls=image_urls, request_id=reply.request_id)


def _empty_result_error(data: Mapping[str, Any], request_id: str) -> PortraitAPIError:
    """A done task without images: map the algorithm's own status code if it gave one."""
    algorithm = data.get("algorithm_base_resp")
    if isinstance(algorithm, Mapping):
        code = algorithm.get("status_code")
        if isinstance(code, int) and not isinstance(code, bool) and code not in (0, SUCCESS_CODE):
            message = algorithm.get("status_message")
            text = message if isinstance(message, str) else ""
            return error_from_response(200, {"code": code, "message": text, "request_id": request_id})
    return ServerError("task done without images", request_id=request_id or None)
