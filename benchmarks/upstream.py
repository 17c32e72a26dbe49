"""A lean stand-in for the portrait API, served in its own process for the client CPU benchmark.

    python -m benchmarks.upstream --port 8099 [--queue-seconds 0.25] [--generate-seconds 0.25]

Why not the emulator: it renders a real JPEG per task (~50 ms of CPU) behind Starlette and uvicorn's h11
protocol, so with 100 tasks in flight on a small machine it, not the client under test, sets the pace, and
a slow server changes how many polls a task needs. This server answers the two actions the way the API
does (body shapes, codes, the in_queue -> generating -> done lifecycle on the wall clock, not_found for an
unknown id) and stays strict where it is cheap: every request must carry a valid signature, checked by the
emulator's independent verifier (a broken signer fails the benchmark), and a submit must be a JSON object
with the right `req_key` and non-empty base64 image strings. It does nothing expensive: images are not
decoded, and the done answer is one pre-built result image, base64-encoded once at start-up.

HTTP/1.1 with keep-alive on a bare `asyncio.Protocol` (stdlib only), enough for the clients it serves:
Content-Length bodies, no chunked uploads, no `Expect: 100-continue`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import count
from urllib.parse import parse_qsl

from api_client.emulator.verify import verify_request

REQ_KEY = "img2img_anime_accelerated_maintain_id"
VERSION = "2022-08-31"
SUBMIT, RESULT = "CVSync2AsyncSubmitTask", "CVSync2AsyncGetResult"
MAX_HEAD = 64 * 1024
MAX_BODY = 16 * 1024 * 1024
_REASONS = {200: b"OK", 400: b"Bad Request", 401: b"Unauthorized", 403: b"Forbidden", 404: b"Not Found",
            413: b"Payload Too Large"}


def textured_jpeg(side: int) -> bytes:
    """A photo-like JPEG: a flat image would compress to nothing and hide the cost of moving real ones."""
    from PIL import Image

    noise = Image.effect_noise((side, side), 48).convert("RGB")
    gradient = Image.linear_gradient("L").resize((side, side)).convert("RGB")
    buffer = io.BytesIO()
    Image.blend(noise, gradient, 0.5).save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


@dataclass
class Upstream:
    """The API's state and answers; `answer()` maps one parsed request to (HTTP status, JSON body)."""

    access_key: str
    secret_key: str
    queue_seconds: float
    generate_seconds: float
    result_base64: str
    verify: bool = True
    submitted: dict[str, float] = field(default_factory=dict)
    calls: int = 0
    _ids: count[int] = field(default_factory=lambda: count(7_392_616_336_519_610_409))

    def answer(
        self, method: str, path: str, query: str, headers: list[tuple[str, str]], body: bytes
    ) -> tuple[int, bytes]:
        if method == "GET" and path == "/stats":
            return 200, b'{"calls":%d}' % self.calls
        params = dict(parse_qsl(query))
        action, version = params.get("Action", ""), params.get("Version", "")
        if method != "POST" or path != "/" or action not in (SUBMIT, RESULT) or version != VERSION:
            return _gateway(404, 100008, "InvalidActionOrVersion", action, version)
        self.calls += 1
        if self.verify:
            verdict = verify_request(
                method, path, query, headers, body, self.access_key, self.secret_key, time.time()
            )
            if not verdict.ok:
                return _gateway(verdict.http_status, verdict.code_n, verdict.code, action, version)
        try:
            form = json.loads(body)
        except ValueError:
            return _business(400, 50200, "Invalid Parameter")
        if not isinstance(form, dict) or form.get("req_key") != REQ_KEY:
            return _business(400, 50201, "Invalid Req Key")
        if action == SUBMIT:
            return self._submit(form)
        return self._result(form)

    def _submit(self, form: dict[str, object]) -> tuple[int, bytes]:
        images = form.get("binary_data_base64")
        if not isinstance(images, list) or not images or not all(isinstance(i, str) and i for i in images):
            return _business(400, 50204, "Missing Parameter")
        task_id = str(next(self._ids))
        self.submitted[task_id] = time.monotonic()
        return _business(200, 10000, "Success", f'{{"task_id":"{task_id}"}}')

    def _result(self, form: dict[str, object]) -> tuple[int, bytes]:
        task_id = form.get("task_id")
        submitted = self.submitted.get(task_id) if isinstance(task_id, str) else None
        if submitted is None:
            return _business(200, 10000, "Success", _pending("not_found"))
        age = time.monotonic() - submitted
        if age < self.queue_seconds:
            return _business(200, 10000, "Success", _pending("in_queue"))
        if age < self.queue_seconds + self.generate_seconds:
            return _business(200, 10000, "Success", _pending("generating"))
        data = (
            '{"algorithm_base_resp":{"status_code":0,"status_message":"Success"},'
            f'"binary_data_base64":["{self.result_base64}"],"image_urls":[""],'
            '"response_data":"","status":"done"}'
        )
        return _business(200, 10000, "Success", data)


def _pending(status: str) -> str:
    return (
        '{"algorithm_base_resp":{"status_code":0,"status_message":"Success"},"binary_data_base64":null,'
        f'"image_urls":null,"response_data":"","status":"{status}"}}'
    )


def _business(http_status: int, code: int, message: str, data: str = "null") -> tuple[int, bytes]:
    body = (
        f'{{"code":{code},"data":{data},"message":"{message}","request_id":"2026120600000000BENCH",'
        f'"status":{code},"time_elapsed":"1.5ms"}}'
    )
    return http_status, body.encode()


def _gateway(http_status: int, code_n: int, code: str, action: str, version: str) -> tuple[int, bytes]:
    metadata = {"RequestId": "2026120600000000BENCH", "Action": action, "Version": version,
                "Service": "cv", "Region": "cn-north-1", "Error": {"CodeN": code_n, "Code": code}}
    return http_status, json.dumps({"ResponseMetadata": metadata}).encode()


class _Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection: parse requests from the buffer, answer each in order."""

    def __init__(self, upstream: Upstream) -> None:
        self.upstream = upstream
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self.transport is not None and not self.transport.is_closing() and self._one_request():
            pass

    def _one_request(self) -> bool:
        """Answer the first complete request in the buffer; False when more bytes are needed."""
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buffer) > MAX_HEAD:
                self._reply(413, b"{}", close=True)
            return False
        lines = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers = []
        length, close = 0, False
        for line in lines[1:]:
            name, _, value = line.partition(":")
            value = value.strip()
            headers.append((name, value))
            lower = name.lower()
            if lower == "content-length":
                length = int(value)
            elif lower == "connection":
                close = value.lower() == "close"
        if length > MAX_BODY:
            self._reply(413, b"{}", close=True)
            return False
        start = end + 4
        if len(self.buffer) < start + length:
            return False
        body = bytes(self.buffer[start : start + length])
        del self.buffer[: start + length]
        path, _, query = target.partition("?")
        status, answer = self.upstream.answer(method, path, query, headers, body)
        self._reply(status, answer, close=close)
        return True

    def _reply(self, status: int, body: bytes, *, close: bool) -> None:
        assert self.transport is not None
        head = (
            b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n"
            % (status, _REASONS.get(status, b"Error"), len(body), b"Connection: close\r\n" if close else b"")
        )
        self.transport.writelines((head, body))
        if close:
            self.transport.close()


async def serve(upstream: Upstream, host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Connection(upstream), host, port, backlog=1024)
    async with server:
        await server.serve_forever()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.upstream", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--access-key", default="AKbench")
    parser.add_argument("--secret-key", default="SKbench")
    # Done 0.5 s after submit: between a 0.2 s poller's 2nd and 3rd poll, so both clients need 3 polls.
    parser.add_argument("--queue-seconds", type=float, default=0.25)
    parser.add_argument("--generate-seconds", type=float, default=0.25)
    parser.add_argument("--result-side", type=int, default=600, help="side of the square result JPEG")
    parser.add_argument("--no-verify", action="store_true", help="accept unsigned requests")
    args = parser.parse_args(argv)
    upstream = Upstream(
        args.access_key, args.secret_key, args.queue_seconds, args.generate_seconds,
        base64.b64encode(textured_jpeg(args.result_side)).decode("ascii"), verify=not args.no_verify,
    )
    try:
        asyncio.run(serve(upstream, args.host, args.port))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
