"""The API emulator in its own process, with the service's concurrency limit and an in-flight recorder.

    python -m benchmarks.burst_upstream --port 8099 --max-tasks 10 --generate-seconds 1

For benchmarks/bench_burst.py. The real service limits how many tasks one account has running; the
emulator itself has no such limit, so a thin ASGI layer in front of it keeps one: a task counts from its
accepted submit until a GetResult answers `done` (its result fetched), and a submit over the limit is
answered 50430 ("concurrent limit", HTTP 429) as the service does. It samples the count every 0.1 s, so
the benchmark can say whether the bot kept the upstream at its limit (neither idle slots nor refusals).
`GET /bench/stats` answers the figures, `GET /bench/now` only the tasks in flight now.

The hand-over, seen from here: how long a finished task waited for the GetResult that read `done` (poll
lag, against the emulator's own finish time), how long a freed place stayed free until the next submit
arrived (freed places and arriving submits paired first come first served), and how long the emulator
took to answer a submit (the task counts in flight only once accepted).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any
from urllib.parse import parse_qs

from api_client.emulator import EmulatorConfig, create_app
from api_client.emulator.server import build_server
from benchmarks.burst_bot import spread

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SUBMIT, RESULT = "CVSync2AsyncSubmitTask", "CVSync2AsyncGetResult"
SAMPLE_SECONDS = 0.1


class ConcurrencyGate:
    """ASGI middleware: the account's concurrent-task limit, and the in-flight count over time."""

    def __init__(
        self, app: ASGIApp, limit: int, done_at: Callable[[str], float | None] | None = None
    ) -> None:
        """`done_at`: when the emulator's task reads done (wall clock), for the poll lag."""
        self.app = app
        self.done_at = done_at
        self.limit = limit
        self.in_flight: set[str] = set()
        self.pending = 0  # submits accepted by the gate, not answered yet
        self.refused = 0
        self.submits = 0
        self.done = 0
        self.samples: list[tuple[float, int]] = []
        self.freed: deque[float] = deque()  # places freed (a `done` read) not yet taken by a submit
        self.poll_lag: list[float] = []
        self.free_to_submit: list[float] = []
        self.submit_answer: list[float] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] == "/bench/stats":
            await _json(send, 200, self.stats())
            return
        if scope["path"] == "/bench/now":
            await _json(send, 200, {"in_flight": len(self.in_flight)})
            return
        action = parse_qs(scope.get("query_string", b"").decode()).get("Action", [""])[0]
        if action == SUBMIT:
            await self._submit(scope, receive, send)
        elif action == RESULT:
            await self._result(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _submit(self, scope: Scope, receive: Receive, send: Send) -> None:
        if len(self.in_flight) + self.pending >= self.limit:
            self.refused += 1
            body = {
                "code": 50430,
                "data": None,
                "message": "Request Has Reached API Concurrent Limit, Please Try Later",
                "request_id": "bench",
                "status": 50430,
                "time_elapsed": "1ms",
            }
            await _json(send, 429, body)
            return
        arrived = time.time()
        if self.freed:
            self.free_to_submit.append(arrived - self.freed.popleft())
        self.pending += 1
        try:
            answer = await _captured(self.app, scope, receive, send)
        finally:
            self.pending -= 1
        task_id = (answer.get("data") or {}).get("task_id") if isinstance(answer, dict) else None
        if task_id:
            self.submits += 1
            self.in_flight.add(str(task_id))
            self.submit_answer.append(time.time() - arrived)

    async def _result(self, scope: Scope, receive: Receive, send: Send) -> None:
        chunks: list[bytes] = []

        async def replay() -> Message:
            message = await receive()
            chunks.append(message.get("body", b""))
            return message

        answer = await _captured(self.app, scope, replay, send)
        try:
            task_id = str(json.loads(b"".join(chunks)).get("task_id"))
        except ValueError:
            return
        data = answer.get("data") if isinstance(answer, dict) else None
        if isinstance(data, dict) and data.get("status") == "done" and task_id in self.in_flight:
            self.in_flight.discard(task_id)
            self.done += 1
            now = time.time()
            self.freed.append(now)
            finished = self.done_at(task_id) if self.done_at is not None else None
            if finished is not None:
                self.poll_lag.append(now - finished)

    async def sample(self) -> None:
        while True:
            await asyncio.sleep(SAMPLE_SECONDS)
            if self.submits:
                self.samples.append((time.time(), len(self.in_flight)))

    def stats(self) -> dict[str, Any]:
        counts = [n for _, n in self.samples]
        busy = _until_last(counts)
        return {
            "limit": self.limit, "submits": self.submits, "done": self.done, "refused": self.refused,
            "max_in_flight": max(counts, default=0),
            "mean_in_flight": statistics.fmean(busy) if busy else 0.0,
            "at_limit_share": sum(1 for n in busy if n >= self.limit) / len(busy) if busy else 0.0,
            "series": [n for _, n in self.samples[:: max(1, len(self.samples) // 60)]],
            "poll_lag": spread(self.poll_lag), "free_to_submit": spread(self.free_to_submit),
            "submit_answer": spread(self.submit_answer),
        }  # fmt: skip


def _until_last(counts: list[int]) -> list[int]:
    """The samples from the first task until the queue had drained (the last time all slots were busy)."""
    if not counts:
        return []
    peak = max(counts)
    last = max(i for i, n in enumerate(counts) if n == peak)
    return counts[: last + 1]


async def _captured(app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> Any:
    """Run the app, passing its answer through, and return the answer's JSON."""
    body: list[bytes] = []

    async def tee(message: Message) -> None:
        if message["type"] == "http.response.body":
            body.append(message.get("body", b""))
        await send(message)

    await app(scope, receive, tee)
    try:
        return json.loads(b"".join(body))
    except ValueError:
        return None


async def _json(send: Send, status: int, body: object) -> None:
    payload = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


async def serve(gate: ConcurrencyGate, host: str, port: int) -> None:
    sampler = asyncio.create_task(gate.sample())
    try:
        await build_server(gate, host, port, "warning").serve()  # type: ignore[arg-type]
    finally:
        sampler.cancel()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.burst_upstream", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--access-key", default="AKBURST")
    parser.add_argument("--secret-key", default="SKBURST")
    parser.add_argument("--max-tasks", type=int, default=10)
    parser.add_argument("--queue-seconds", type=float, default=0.2)
    parser.add_argument("--generate-seconds", type=float, default=1.0)
    args = parser.parse_args(argv)
    config = EmulatorConfig(
        access_key=args.access_key, secret_key=args.secret_key, queue_seconds=args.queue_seconds,
        generate_seconds=args.generate_seconds, generate_jitter=0.2,
    )  # fmt: skip
    app = create_app(config)
    tasks = app.state.emulator.store

    def done_at(task_id: str) -> float | None:
        task = tasks.tasks.get(task_id)
        return None if task is None else float(tasks.done_at(task))

    asyncio.run(serve(ConcurrencyGate(app, args.max_tasks, done_at), args.host, args.port))


if __name__ == "__main__":
    main()
