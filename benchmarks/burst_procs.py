"""Small helpers for benchmarks that run their parts in separate processes (shared, not benchmark-specific).

Each part of a multi-process benchmark is its own Python process so that none shares a GIL or an event
loop with another: the numbers of the process under test are its own. A part serves HTTP and answers
`GET /bench/stats` with JSON once it is up; `started()` waits for that (a start-up handshake, not a timing
assumption) and `stats()` reads it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.update(extra or {})
    return env


def spawn(
    args: Sequence[str], env: dict[str, str] | None = None, log: Path | None = None
) -> subprocess.Popen[bytes]:
    """`python <args>` from the repository root; its output goes to `log` (or nowhere)."""
    output = open(log, "wb") if log is not None else subprocess.DEVNULL  # noqa: SIM115 - the child owns it
    return subprocess.Popen(
        [sys.executable, *args], cwd=ROOT, env=env or child_env(), stdout=output, stderr=subprocess.STDOUT
    )


def started(process: subprocess.Popen[bytes], base_url: str, timeout: float = 60.0) -> None:
    """Wait until the part answers /bench/stats; RuntimeError if it exits or never does."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{base_url}/bench/stats", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{base_url} did not start")
        time.sleep(0.05)  # start-up handshake with a child process


def stats(base_url: str) -> dict[str, Any]:
    answer = httpx.get(f"{base_url}/bench/stats", timeout=30)
    answer.raise_for_status()
    data: dict[str, Any] = answer.json()
    return data


def stop(process: subprocess.Popen[bytes], timeout: float = 30.0) -> int:
    """SIGTERM, then SIGKILL if it will not go; returns the exit code."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


def peak_rss_mb(pid: int) -> float | None:
    """The process's peak resident set (VmHWM) from /proc, in MB; None where /proc has no such file."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None
