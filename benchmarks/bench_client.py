"""api_client vs the official `volcengine` SDK (1.0.229): signing, per-call overhead, CPU per finished task.

    python -m benchmarks.bench_client [--quick]

1. signing throughput: our `VolcengineAuth.sign` on an `httpx.Request` vs the SDK's `SignerV4.sign` on its
   `Request`, for a GetResult-sized body and a 1 MB submit-sized body (hashing dominates the latter);
2. client overhead: GetResult calls per second from one caller against an in-process stub answer (httpx
   MockTransport for ours, a requests adapter for the SDK): signing, JSON, HTTP objects, no network;
3. CPU per finished task, the figure the transport was chosen by. Three kinds of process: the upstream
   (`benchmarks.upstream`: the API's submit/poll behaviour and signature check, nothing expensive, so it
   never sets the pace), the SDK with one thread per task in flight, and ours, one process per variant
   (transport x event loop), each run after the other. Every task submits a photo-sized JPEG, polls every
   0.2 s until the upstream says done (after 0.5 s) and ends holding the decoded result image. Each client
   process reports its own CPU time (`time.process_time`: all threads, user + system) around the measured
   tasks only, after warm-up tasks; the upstream counts the calls. Variants are run in interleaved rounds
   and the medians printed: the machine is shared, so read the ratios, not the absolute figures.
   "ours (default)" is what the bot runs: `api_client.transport.DEFAULT_TRANSPORT`, on uvloop when it is
   installed (`api_client.loop`); the other rows are the alternatives it was chosen from.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from statistics import median
from typing import Any

import httpx

from api_client import PortraitClient
from api_client.auth import VolcengineAuth
from api_client.models import REQ_KEY
from api_client.transport import DEFAULT_TRANSPORT
from benchmarks.upstream import textured_jpeg

ROOT = Path(__file__).resolve().parent.parent
AK, SK = "AKbench", "SKbench"
HOST = "127.0.0.1"
SUBMIT = "CVSync2AsyncSubmitTask"
PARAMS = {"Action": SUBMIT, "Version": "2022-08-31"}


@dataclass
class Row:
    metric: str
    ours: float
    sdk: float
    unit: str

    @property
    def ratio(self) -> float:
        return self.ours / self.sdk if self.sdk else float("inf")


# --- 1. signing ------------------------------------------------------------------------------------------


def _rates(
    ours: Callable[[], object], sdk: Callable[[], object], seconds: float, batch: int, calls_each: int = 1
) -> tuple[float, float]:
    """Calls per CPU-second of each function (each making `calls_each` calls), in alternating batches
    until `seconds` of CPU are spent.

    Alternating (not one after the other) and counting CPU time (not wall time) keep the ratio fair on a
    shared machine, where the load changes from one second to the next.
    """
    ours(), sdk()  # warm-up
    spent, counts = [0.0, 0.0], [0, 0]
    while sum(spent) < seconds:
        for side, func in enumerate((ours, sdk)):
            started = time.process_time()
            for _ in range(batch):
                func()
            spent[side] += time.process_time() - started
            counts[side] += batch * calls_each
    return counts[0] / spent[0], counts[1] / spent[1]


def _ours_signer(body: bytes) -> Callable[[], None]:
    auth = VolcengineAuth(AK, SK, region="cn-north-1", service="cv")
    request = httpx.Request(
        "POST", "https://visual.volcengineapi.com/", params=PARAMS, content=body,
        headers={"Content-Type": "application/json"},
    )
    return lambda: auth.sign(request)


def _sdk_signer(body: bytes) -> Callable[[], None]:
    from volcengine.auth.SignerV4 import SignerV4
    from volcengine.base.Request import Request
    from volcengine.Credentials import Credentials

    credentials = Credentials(AK, SK, "cv", "cn-north-1")
    request = Request()
    request.set_method("POST")
    request.set_path("/")
    request.set_headers({"Host": "visual.volcengineapi.com", "Content-Type": "application/json"})
    request.set_query(dict(PARAMS))
    request.set_body(body.decode("utf-8"))
    return lambda: SignerV4.sign(request, credentials)


def bench_signing(seconds: float) -> list[Row]:
    small = json.dumps({"req_key": REQ_KEY, "task_id": "7392616336519610409"}, separators=(",", ":")).encode()
    large = json.dumps({"req_key": REQ_KEY, "binary_data_base64": ["A" * 1_000_000]}).encode()
    rows = []
    for label, body in ((f"{len(small)} B body", small), ("1 MB body", large)):
        budget = seconds if len(body) < 10_000 else seconds / 2
        ours, sdk = _rates(_ours_signer(body), _sdk_signer(body), budget, 50 if len(body) < 10_000 else 5)
        rows.append(Row(f"signatures per CPU-second ({label})", ours, sdk, "1/s"))
    return rows


# --- 2. client overhead per call, against an in-process stub (no network, no emulator) ----------------------


_STUB_BATCH = 20


def _stub_body() -> bytes:
    body = {"code": 10000, "data": {"status": "generating"}, "message": "Success", "request_id": "R",
            "status": 10000, "time_elapsed": "1ms"}
    return json.dumps(body).encode()


def _sdk_caller() -> Callable[[], None]:
    import requests
    from requests.adapters import BaseAdapter
    from requests.structures import CaseInsensitiveDict
    from volcengine.visual.VisualService import VisualService

    body = _stub_body()

    class StubAdapter(BaseAdapter):
        def send(self, request: Any, *args: Any, **kwargs: Any) -> requests.Response:
            response = requests.Response()
            response.status_code = 200
            response._content = body
            response.headers = CaseInsensitiveDict({"Content-Type": "application/json"})
            response.request = request
            response.url = request.url
            return response

        def close(self) -> None:
            pass

    service = VisualService()
    service.set_ak(AK)
    service.set_sk(SK)
    service.set_host("stub.invalid")
    service.set_scheme("http")
    service.session.mount("http://stub.invalid", StubAdapter())
    form = {"req_key": REQ_KEY, "task_id": "T"}

    def calls() -> None:
        for _ in range(_STUB_BATCH):
            service.cv_sync2async_get_result(dict(form))

    return calls


def bench_overhead(seconds: float) -> list[Row]:
    body = _stub_body()
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=body))
    client = PortraitClient(AK, SK, transport=transport, qps=1_000_000.0)

    async def calls() -> None:
        for _ in range(_STUB_BATCH):
            await client.get_result("T")

    with asyncio.Runner() as runner:
        ours, sdk = _rates(lambda: runner.run(calls()), _sdk_caller(), seconds, 1, _STUB_BATCH)
        runner.run(client.aclose())
    return [Row("GetResult calls per CPU-second, stub server", ours, sdk, "1/s")]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def served_upstream(result_side: int) -> Iterator[str]:
    """`benchmarks.upstream` in its own process (so it shares no GIL with a client); yields its base URL."""
    port = _free_port()
    command = [sys.executable, "-m", "benchmarks.upstream", "--host", HOST, "--port", str(port),
               "--access-key", AK, "--secret-key", SK, "--result-side", str(result_side)]
    process = subprocess.Popen(command, cwd=ROOT, env=_child_env())
    base_url = f"http://{HOST}:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base_url}/stats", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the benchmark upstream did not start")
            time.sleep(0.05)  # start-up handshake with a child process, not a timing assumption
        yield base_url
    finally:
        process.terminate()
        process.wait(timeout=10)


def _child_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}


# --- 3. CPU per finished task, each client in its own process -----------------------------------------------


@dataclass(frozen=True)
class Variant:
    """One client configuration: `client` ours/sdk, the transport name and the event loop."""

    label: str
    client: str
    transport: str = "-"
    loop: str = "asyncio"

    @property
    def key(self) -> str:
        """What `--variants` names it by: `sdk`, or `transport/loop` such as `httpx/asyncio`."""
        return "sdk" if self.client == "sdk" else f"{self.transport}/{self.loop}"


@dataclass
class Result:
    """The medians of a variant's rounds (each round one worker process)."""

    variant: Variant
    cpu_per_task: float  # seconds
    cpu_per_call: float
    calls_per_task: float
    tasks_per_s: float
    calls_per_s: float
    failures: int


def _importable(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def variants(concurrency: int) -> list[Variant]:
    """The SDK, then our default (what the bot runs: DEFAULT_TRANSPORT, uvloop where installed), then the
    other transport x loop combinations the default was chosen from."""
    uvloop = _importable("uvloop")
    default_loop = "uvloop" if uvloop else "asyncio"
    chosen = [
        Variant(f"SDK volcengine 1.0.229, {concurrency} threads", "sdk"),
        Variant(f"ours: {DEFAULT_TRANSPORT} + {default_loop} (default)", "ours", DEFAULT_TRANSPORT,
                default_loop),
    ]
    for transport in ("aiohttp", "httpx", "httpx-aiohttp"):
        if transport == "httpx-aiohttp" and not _importable("httpx_aiohttp"):
            continue
        for loop in ("uvloop", "asyncio") if uvloop else ("asyncio",):
            if (transport, loop) != (DEFAULT_TRANSPORT, default_loop):
                chosen.append(Variant(f"ours: {transport} + {loop}", "ours", transport, loop))
    return chosen


def _run_worker(variant: Variant, base_url: str, args: argparse.Namespace) -> dict[str, float]:
    command = [
        sys.executable, "-m", "benchmarks.client_worker", "--client", variant.client, "--base-url", base_url,
        "--tasks", str(args.tasks), "--concurrency", str(args.concurrency), "--poll", str(args.poll),
        "--warmup", str(args.warmup), "--face-side", str(args.face_side),
    ]
    if variant.client == "ours":
        command += ["--transport", variant.transport, "--loop", variant.loop]
    done = subprocess.run(command, cwd=ROOT, env=_child_env(), capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"{variant.label}: worker failed\n{done.stderr[-2000:]}")
    measured: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return measured


def bench_cpu(args: argparse.Namespace) -> tuple[list[Result], list[str]]:
    """Every variant once per round, rounds interleaved (drift on a shared machine hits all alike)."""
    chosen = variants(args.concurrency)
    if args.variants:  # the SDK and our default always run: the ratios are taken between them
        wanted = set(args.variants.split(","))
        chosen = chosen[:2] + [variant for variant in chosen[2:] if variant.key in wanted]
    runs: dict[Variant, list[dict[str, float]]] = {variant: [] for variant in chosen}
    with served_upstream(args.result_side) as base_url:
        for _ in range(args.rounds):
            for variant in chosen:
                runs[variant].append(_run_worker(variant, base_url, args))
    results, notes = [], []
    for variant, measured in runs.items():
        failures = int(sum(m["failures"] for m in measured))
        if failures:
            notes.append(f"{variant.label}: {failures} of {args.tasks * args.rounds} tasks failed")
        results.append(Result(
            variant,
            cpu_per_task=median(m["cpu"] / m["tasks"] for m in measured),
            cpu_per_call=median(m["cpu"] / max(1.0, m["calls"]) for m in measured),
            calls_per_task=median(m["calls"] / m["tasks"] for m in measured),
            tasks_per_s=median(m["tasks"] / m["wall"] for m in measured),
            calls_per_s=median(m["calls"] / m["wall"] for m in measured),
            failures=failures,
        ))
    return results, notes


def print_cpu_table(results: Sequence[Result]) -> None:
    sdk = results[0]
    width = max(len(result.variant.label) for result in results)
    print(f"{'client':<{width}}  {'CPU ms/task':>11}  {'CPU us/call':>11}  {'calls/task':>10}  "
          f"{'tasks/s':>8}  {'calls/s':>8}  {'CPU/task vs SDK':>15}")
    for result in results:
        ratio = result.cpu_per_task / sdk.cpu_per_task if sdk.cpu_per_task else float("inf")
        print(f"{result.variant.label:<{width}}  {result.cpu_per_task * 1e3:>11.2f}  "
              f"{result.cpu_per_call * 1e6:>11.0f}  {result.calls_per_task:>10.2f}  "
              f"{result.tasks_per_s:>8.1f}  {result.calls_per_s:>8.1f}  {ratio:>14.2f}x")


def cpu_ratio_rows(results: Sequence[Result]) -> list[Row]:
    """Ours (the default variant) against the SDK, as rows of the summary table."""
    sdk, ours = results[0], results[1]
    return [
        Row("CPU ms per finished task (lower is better)", ours.cpu_per_task * 1e3, sdk.cpu_per_task * 1e3,
            "ms"),
        Row("tasks/s", ours.tasks_per_s, sdk.tasks_per_s, "1/s"),
        Row("HTTP calls/s", ours.calls_per_s, sdk.calls_per_s, "1/s"),
    ]


def print_table(rows: Sequence[Row]) -> None:
    width = max(len(row.metric) for row in rows)
    print(f"{'metric':<{width}}  {'ours':>12}  {'sdk':>12}  {'ours/sdk':>9}")
    for row in rows:
        print(f"{row.metric:<{width}}  {row.ours:>12,.1f}  {row.sdk:>12,.1f}  {row.ratio:>8.2f}x")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_client", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer tasks, one round, shorter timings")
    parser.add_argument("--tasks", type=int, help="measured tasks per process (default 300, quick 150)")
    parser.add_argument("--concurrency", type=int, default=100, help="tasks in flight (SDK: threads)")
    parser.add_argument("--poll", type=float, default=0.2, help="seconds between polls, both clients")
    parser.add_argument("--rounds", type=int, help="processes per variant, medians (default 3, quick 1)")
    parser.add_argument("--warmup", type=int, default=20, help="unmeasured tasks first, in each process")
    parser.add_argument("--face-side", type=int, default=512, help="side of the submitted JPEG")
    parser.add_argument("--result-side", type=int, default=600, help="side of the result JPEG")
    parser.add_argument("--seconds", type=float, help="per signing / overhead row (default 2, quick 0.5)")
    parser.add_argument("--variants", help="only these besides the SDK and the default, e.g. httpx/asyncio")
    args = parser.parse_args(argv)
    args.tasks = args.tasks or (150 if args.quick else 300)
    args.rounds = args.rounds or (1 if args.quick else 3)
    seconds = args.seconds or (0.5 if args.quick else 2.0)
    rows = bench_signing(seconds) + bench_overhead(seconds)
    results, notes = bench_cpu(args)
    face_kb = len(textured_jpeg(args.face_side)) / 1000
    result_kb = len(textured_jpeg(args.result_side)) / 1000
    print(f"CPU per finished submit+poll task: {args.tasks} tasks, {args.concurrency} in flight, polls every "
          f"{args.poll:g} s, face {face_kb:.0f} kB / result {result_kb:.0f} kB JPEG; each client in its own "
          f"process against benchmarks.upstream in another (signatures checked); median of {args.rounds} "
          f"round(s); {os.cpu_count()} CPUs")
    print_cpu_table(results)
    print()
    print_table([*rows, *cpu_ratio_rows(results)])
    print("(ours/sdk above 1 is better for rates; for CPU ms per task, below 1 is better)")
    for note in notes:
        print("note:", note)
    return 1 if notes else 0


if __name__ == "__main__":
    raise SystemExit(main())
