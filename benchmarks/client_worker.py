"""One client process of the CPU benchmark: run N submit+poll tasks, report the CPU this process spent.

    python -m benchmarks.client_worker --client ours --transport aiohttp --loop uvloop --base-url URL

`bench_client` starts one of these per client variant, one after another, so no two clients share a core
or a GIL and each measures only itself. A worker first runs a few warm-up tasks (connections, imports,
caches), then reads `time.process_time()` (all threads of the process, user + system), runs the measured
tasks and reads it again. Calls are counted by the upstream (`/stats` before and after), so the clients
need no instrumentation of their own. The result is one JSON line on stdout.

Both clients do the whole job of a caller: base64-encode and submit a JPEG, poll every `--poll` seconds until
done, and hold the decoded result image. For the SDK (synchronous, `volcengine==1.0.229`) that means one of
`--concurrency` threads per task in flight, each with its own keep-alive connection, and the base64 work
done by the caller with the standard library (the SDK takes and returns base64 strings).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import threading
import time
import urllib.request
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

from api_client import PollSchedule, PortraitClient, SubmitRequest
from api_client.loop import fast_loop_factory
from api_client.models import REQ_KEY
from benchmarks.upstream import textured_jpeg

AK, SK = "AKbench", "SKbench"
FACE_SIDE = 512


@dataclass
class Measured:
    """What one worker reports: its CPU seconds and wall seconds for `tasks` tasks, `calls` HTTP calls."""

    cpu: float
    wall: float
    tasks: int
    calls: int
    failures: int


def _upstream_calls(base_url: str) -> int:
    with urllib.request.urlopen(f"{base_url}/stats", timeout=10) as reply:
        calls: int = json.load(reply)["calls"]
        return calls


def measure(base_url: str, tasks: int, run: Callable[[int], int]) -> Measured:
    """`run(n)` runs n tasks and returns how many failed; CPU and calls are taken around it only."""
    calls_before = _upstream_calls(base_url)
    cpu, wall = time.process_time(), time.perf_counter()
    failures = run(tasks)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return Measured(cpu, wall, tasks, _upstream_calls(base_url) - calls_before, failures)


async def measure_async(base_url: str, tasks: int, run: Callable[[int], Awaitable[int]]) -> Measured:
    """`measure` for a coroutine (the counter is read outside the CPU window, so its blocking is harmless)."""
    calls_before = _upstream_calls(base_url)
    cpu, wall = time.process_time(), time.perf_counter()
    failures = await run(tasks)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return Measured(cpu, wall, tasks, _upstream_calls(base_url) - calls_before, failures)


# --- ours ------------------------------------------------------------------------------------------------


def _transport(name: str) -> Any:
    if name == "httpx-aiohttp":  # the third-party package, for comparison where it is installed
        from httpx_aiohttp import AiohttpTransport

        return AiohttpTransport()
    return name


async def _ours(args: argparse.Namespace) -> Measured:
    schedule = PollSchedule(first_delay=args.poll, factor=1.0, max_delay=args.poll)
    face = textured_jpeg(args.face_side)
    request = SubmitRequest.from_images(face, face_switch=True, width=600, height=600)
    async with PortraitClient(
        AK, SK, endpoint=args.base_url, transport=_transport(args.transport), qps=1_000_000.0,
        max_concurrent_tasks=args.concurrency,
    ) as client:

        async def one() -> bool:
            try:
                async with client.task_slot():
                    task_id = await client.submit(request)
                    result = await client.wait(task_id, schedule=schedule)
            except Exception:
                return False
            return bool(result.images)

        async def run(tasks: int) -> int:
            done = await asyncio.gather(*(one() for _ in range(tasks)))
            return done.count(False)

        await run(args.warmup)
        return await measure_async(args.base_url, args.tasks, run)


def run_ours(args: argparse.Namespace) -> Measured:
    factory = fast_loop_factory() if args.loop == "uvloop" else None
    if args.loop == "uvloop" and factory is None:
        raise SystemExit("uvloop is not installed")
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(_ours(args))


# --- the official SDK ------------------------------------------------------------------------------------


def run_sdk(args: argparse.Namespace) -> Measured:
    import requests
    from volcengine.visual.VisualService import VisualService

    service = VisualService()
    service.set_ak(AK)
    service.set_sk(SK)
    service.set_host(args.base_url.removeprefix("http://"))
    service.set_scheme("http")
    service.session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=args.concurrency))
    face = textured_jpeg(args.face_side)
    request = SubmitRequest.from_images(face, face_switch=True, width=600, height=600)
    fields: dict[str, Any] = request.to_body()
    lock = threading.Lock()
    failures = 0

    def one(_: int) -> None:
        nonlocal failures
        try:
            form = {**fields, "binary_data_base64": [base64.b64encode(face).decode("ascii")]}
            answer = service.cv_sync2async_submit_task(form)
            task_id = answer["data"]["task_id"]
            while True:
                time.sleep(args.poll)
                result = service.cv_sync2async_get_result({"req_key": REQ_KEY, "task_id": task_id})
                if result.get("code") != 10000:
                    raise RuntimeError(result.get("message"))
                if result["data"]["status"] == "done":
                    images = [base64.b64decode(item) for item in result["data"]["binary_data_base64"]]
                    if not images:
                        raise RuntimeError("done without images")
                    return
        except Exception:
            with lock:
                failures += 1

    def run(tasks: int) -> int:
        nonlocal failures
        failures = 0
        with ThreadPoolExecutor(max_workers=args.concurrency) as pool:
            list(pool.map(one, range(tasks)))
        return failures

    run(args.warmup)
    return measure(args.base_url, args.tasks, run)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.client_worker", description=__doc__)
    parser.add_argument("--client", choices=("ours", "sdk"), required=True)
    parser.add_argument("--transport", default="httpx")
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--tasks", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--poll", type=float, default=0.2)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--face-side", type=int, default=FACE_SIDE, help="side of the square face JPEG")
    args = parser.parse_args(argv)
    measured = run_sdk(args) if args.client == "sdk" else run_ours(args)
    print(json.dumps(asdict(measured)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
