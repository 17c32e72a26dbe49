"""The burst benchmark's process helpers, on top of benchmarks/procs.py (ports, environment, stopping).

Each part of a multi-process benchmark is its own Python process so that none shares a GIL or an event
loop with another: the numbers of the process under test are its own. A part serves HTTP and answers
`GET /bench/stats` with JSON once it is up; `started()` waits for that (a start-up handshake, not a timing
assumption) and `stats()` reads it.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from benchmarks.procs import HOST, ROOT, child_env, free_port, stop, wait_http

__all__ = [
    "HOST", "ROOT", "child_env", "free_port", "peak_rss_mb", "spawn", "started", "stats", "stop",
]  # fmt: skip


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
    wait_http(f"{base_url}/bench/stats", process, base_url, timeout)


def stats(base_url: str) -> dict[str, Any]:
    answer = httpx.get(f"{base_url}/bench/stats", timeout=30)
    answer.raise_for_status()
    data: dict[str, Any] = answer.json()
    return data


def peak_rss_mb(pid: int) -> float | None:
    """The process's peak resident set (VmHWM) from /proc, in MB; None where /proc has no such file."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None
