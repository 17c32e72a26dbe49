"""Processes of the bot benchmark: servers started on free ports, the bot under test, its CPU and counters,
and the two servers' control APIs (`Servers`).

Every program of the run has its own process (no GIL or event loop shared with what it measures), all on
one machine so their wall clocks (`time.time`) agree. The bot's CPU is read from outside, from
`/proc/<pid>/stat` (utime + stime of all its threads, in clock ticks), so nothing in the bot is needed
for it; its SQLite counters come from `benchmarks.bot_proc` on a signal.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import astuple, dataclass
from pathlib import Path
from typing import Any

import httpx

from benchmarks.bot_proc import COUNTERS_ENV, FLOOD_ENV, PROFILE_ENV, stat_cpu_seconds

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
START_TIMEOUT = 60.0
TIMEOUT = 180.0  # seconds a phase of a benchmark run may take before the run is declared failed


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.update(extra or {})
    return env


def cpu_seconds(pid: int) -> float:
    """utime + stime of the whole process (every thread, living or ended), from /proc/<pid>/stat."""
    return stat_cpu_seconds(Path(f"/proc/{pid}/stat"))


def wait_http(url: str, process: subprocess.Popen[bytes], what: str, timeout: float = START_TIMEOUT) -> None:
    """Wait until `url` answers 200; RuntimeError if the process exits first or never does."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start")
        time.sleep(0.05)  # start-up handshake with a child process, not a timing assumption


def stop(process: subprocess.Popen[bytes], timeout: float = 30.0) -> int:
    """SIGTERM (a graceful stop), SIGKILL if it does not end in time; the exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


@contextmanager
def server(module: str, args: Sequence[str], ready_path: str, what: str) -> Iterator[str]:
    """`python -m module --port P *args` on a free port; yields its base URL once `ready_path` answers."""
    port = free_port()
    command = [sys.executable, "-m", module, "--host", HOST, "--port", str(port), *args]
    process = subprocess.Popen(command, cwd=ROOT, env=child_env())
    base_url = f"http://{HOST}:{port}"
    try:
        wait_http(base_url + ready_path, process, what)
        yield base_url
    finally:
        stop(process, timeout=10)


def run_json(module: str, args: Sequence[str], timeout: float = 900.0) -> dict[str, Any]:
    """Run `python -m module *args` to the end; its last stdout line, parsed as JSON."""
    done = subprocess.run(
        [sys.executable, "-m", module, *args], cwd=ROOT, env=child_env(), capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"{module} {args[:1]} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@dataclass
class Snapshot:
    """The bot process at one instant: CPU seconds from /proc, its SQLite and PostgreSQL write counters."""

    cpu: float
    commits: int
    sqlite_hops: int
    image_cpu: float = 0.0  # CPU seconds of image decoding/preparing, timed in the threads doing it
    loop_cpu: float = 0.0  # CPU seconds of the event loop's thread
    pg_writes: int = 0
    pg_wait: float = 0.0  # seconds write transactions waited for the write locks (and BEGIN's answer)
    pg_held: float = 0.0  # seconds they held the schema's advisory lock (BEGIN's answer -> COMMIT's)
    pg_lock_held: float = 0.0  # seconds the process's own write lock was held
    sqlite_cpu: float = 0.0  # CPU seconds of aiosqlite's connection threads
    fsynced: int = 0  # SQLite commits that were flushed to disk (durable ones under synchronous=FULL)

    def __sub__(self, earlier: Snapshot) -> Snapshot:
        return Snapshot(*(a - b for a, b in zip(astuple(self), astuple(earlier), strict=True)))

    def __add__(self, other: Snapshot) -> Snapshot:
        return Snapshot(*(a + b for a, b in zip(astuple(self), astuple(other), strict=True)))


class BotProcess:
    """`python -m benchmarks.bot_proc` (the bot, `portrait-bot run` or `args`, instrumented)."""

    def __init__(
        self, env: dict[str, str], workdir: Path, *, flood_limit: bool, profile: Path | None,
        args: Sequence[str] = (),
    ) -> None:  # fmt: skip
        self.counters = workdir / "counters.json"
        self.log = workdir / "bot.log"
        extra = {**env, COUNTERS_ENV: str(self.counters), FLOOD_ENV: "on" if flood_limit else "off"}
        if profile is not None:
            extra[PROFILE_ENV] = str(profile)
        self._seq = 0
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "benchmarks.bot_proc", *args], cwd=workdir, env=child_env(extra),
                stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    async def snapshot(self) -> Snapshot:
        """Ask for the counters (SIGUSR1) and wait for the answer; the CPU is read from /proc meanwhile."""
        self._seq += 1
        cpu = cpu_seconds(self.pid)
        self.process.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + 10
        while True:
            try:
                data = json.loads(self.counters.read_text())
                if data["seq"] >= self._seq:
                    return Snapshot(cpu, int(data["commits"]), int(data["sqlite_hops"]),
                                    float(data.get("image_cpu", 0.0)), float(data.get("loop_cpu", 0.0)),
                                    int(data["pg_writes"]), float(data["pg_wait"]), float(data["pg_held"]),
                                    float(data["pg_lock_held"]), float(data.get("sqlite_cpu", 0.0)),
                                    int(data.get("fsynced", 0)))  # fmt: skip
            except (OSError, ValueError, KeyError):
                pass
            if not self.alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the bot did not answer SIGUSR1:\n{self.tail()}")
            await asyncio.sleep(0.005)

    def toggle_profile(self) -> None:
        self.process.send_signal(signal.SIGUSR2)

    async def quiet(self, span: float = 0.3, limit: float = 10.0) -> None:
        """Until the bot spent no CPU for `span` seconds (its trailing work done), at most `limit`."""
        deadline = time.monotonic() + limit
        last, since = cpu_seconds(self.pid), time.monotonic()
        while time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            now = cpu_seconds(self.pid)
            if now != last:
                last, since = now, time.monotonic()
            elif time.monotonic() - since >= span:
                return

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> int:
        return stop(self.process)


@dataclass
class Servers:
    """The two servers' control APIs, through one HTTP client."""

    http: httpx.AsyncClient
    fake: str
    emulator: str

    async def _post(self, path: str, body: dict[str, Any] | None = None, wait: float = 30) -> Any:
        answer = await self.http.post(self.fake + path, json=body or {}, timeout=wait)
        if answer.status_code != 200:
            raise RuntimeError(f"fake {path}: {answer.status_code} {answer.text[-1500:]}")
        return answer.json()

    async def new_batch(self, users: int) -> tuple[int, list[int]]:
        data = await self._post("/fake/load/batches", {"users": users})
        return int(data["batch"]), [int(chat) for chat in data["chat_ids"]]

    async def selfies(self, batch: int) -> None:
        await self._post(f"/fake/load/batches/{batch}/selfies")

    async def command(self, batch: int, text: str) -> None:
        await self._post(f"/fake/load/batches/{batch}/command", {"text": text})

    async def wait(self, batch: int, until: str) -> str | None:
        """None once every user of the batch got there; else what the fake says (count, transcript tail)."""
        answer = await self.http.post(
            f"{self.fake}/fake/load/batches/{batch}/wait", json={"until": until, "timeout": TIMEOUT},
            timeout=TIMEOUT + 10,
        )  # fmt: skip
        if answer.status_code == 200:
            return None
        data = answer.json()
        return f"{until}: {data.get('done')} of {data.get('of')} within {TIMEOUT:.0f} s; {data.get('error')}"

    async def report(self, batch: int) -> list[dict[str, Any]]:
        users: list[dict[str, Any]] = (await self.http.get(f"{self.fake}/fake/load/batches/{batch}")).json()[
            "users"
        ]
        return users

    async def stats(self) -> dict[str, int]:
        data: dict[str, int] = (await self.http.get(f"{self.fake}/fake/stats")).json()
        return data

    async def calls(self, since: int, until: int) -> Counter[str]:
        answer = await self.http.get(f"{self.fake}/fake/calls", params={"since": since, "until": until})
        return Counter(answer.json()["methods"])

    async def marks(self) -> tuple[dict[str, float], dict[str, float]]:
        data = (await self.http.get(f"{self.emulator}/bench/marks")).json()
        return data["submitted"], data["done"]
