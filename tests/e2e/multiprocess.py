"""Real `python -m bot` processes for the multi-process tests: ports, environment, start, readiness, stop.

Shared by the scale-out tests (SQLite and PostgreSQL) and the poller election test, so each says only what
it checks. Every process gets the fake Telegram's and the emulator's URLs and a lease short enough
(TASK_LEASE_SECONDS=10) for a SIGKILLed process's tasks to move on within a test.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import httpx
import pytest

from fake_telegram import FakeTelegram, FakeUser
from tests.e2e.images import draw_selfie
from tests.e2e.test_process import ROOT, TOKEN

Process = asyncio.subprocess.Process
T = TypeVar("T")
TAKEN = 'portrait_bot_lease_takeovers_total{direction="taken"}'


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def bot_env(fake_url: str, emulator_url: str, db: Path, **extra: str) -> dict[str, str]:
    """The environment of one bot process; `extra` adds or overrides settings (DATABASE_URL, WORKER_ID...)."""
    return {
        "PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT), "LOG_LEVEL": "WARNING",
        "TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_API_URL": f"{fake_url}/bot",
        "VOLC_ACCESSKEY": "AKP", "VOLC_SECRETKEY": "SKP", "VOLC_ENDPOINT": emulator_url,
        "PORTRAIT_BOT_DB": str(db), "STATUS_EDIT_INTERVAL": "0", "TASK_LEASE_SECONDS": "10", **extra,
    }  # fmt: skip


def webhook_commands(
    ports: list[int], env: Callable[..., dict[str, str]], secret: str
) -> list[tuple[list[str], dict[str, str]]]:
    """`--webhook` processes `web-1`... one per port, all registering the first one's URL (a balancer's)."""
    return [
        (["--webhook"], env(WORKER_ID=f"web-{n}", WEBHOOK_URL=f"http://127.0.0.1:{ports[0]}/telegram",
                            WEBHOOK_SECRET=secret, WEBHOOK_LISTEN=f"127.0.0.1:{port}"))
        for n, port in enumerate(ports, start=1)
    ]  # fmt: skip


@contextlib.asynccontextmanager
async def processes(
    cwd: Path, *commands: tuple[list[str], dict[str, str]], logs: bool = False
) -> AsyncIterator[list[Process]]:
    """Start `python -m bot ARGS` per command; SIGTERM (then wait) whatever still runs at the end.

    With `logs` each process writes its output to `cwd/bot-N.log` (pytest keeps the last runs' tmp_path)."""
    started: list[Process] = []
    try:
        for n, (args, env) in enumerate(commands, start=1):
            with open(cwd / f"bot-{n}.log", "wb") if logs else contextlib.nullcontext() as out:  # noqa: ASYNC230
                output = out if out is not None else asyncio.subprocess.DEVNULL
                started.append(await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "bot", *args, cwd=cwd, env=env, stdout=output, stderr=output,
                ))  # fmt: skip
        yield started
    finally:
        for proc in started:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
        for proc in started:
            try:
                await asyncio.wait_for(proc.wait(), 30)
            except TimeoutError:
                proc.kill()


async def ready(port: int, proc: Process, timeout: float = 45.0) -> dict[str, object]:  # noqa: ASYNC109
    """/readyz of a starting process, once it answers 200 (it fails the test if the process exits)."""
    async with httpx.AsyncClient() as client, asyncio.timeout(timeout):
        while True:
            assert proc.returncode is None, "the process exited while starting"
            with contextlib.suppress(httpx.HTTPError):
                answer = await client.get(f"http://127.0.0.1:{port}/readyz")
                if answer.status_code == 200:
                    body: dict[str, object] = answer.json()
                    return body
            await asyncio.sleep(0.1)


async def request_portrait(fake: FakeTelegram, user: FakeUser) -> None:
    """A selfie, its acknowledgement, then /anime (not waited for)."""
    chat = fake.private_chat(user)
    sent = fake.send_photo(user, chat, draw_selfie())
    await fake.wait_for_message(chat, "selfie", after=sent.message_id, timeout=30)
    fake.send_text(user, chat, "/anime")


def victim(owners: list[str | None]) -> int:
    """The index of the `web-N` process holding the most leases (the one whose death moves the most)."""
    holder = max({o for o in owners if o is not None}, key=owners.count)
    return int(holder.removeprefix("web-")) - 1


async def scrape(ports: list[int]) -> list[str]:
    """The /metrics text of each port."""
    async with httpx.AsyncClient() as client:
        return [(await client.get(f"http://127.0.0.1:{p}/metrics")).text for p in ports]


def sample(text: str, name: str) -> float:
    return next(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + " "))


async def until(
    probe: Callable[[], Awaitable[T | None]],
    timeout: float,  # noqa: ASYNC109
    why: Callable[[], Awaitable[str]] | None = None,
) -> T:
    """The probe's first truthy value (the database has no change signal a test could wait on); past the
    timeout the test fails saying what `why` reports (e.g. where the tasks are)."""
    try:
        async with asyncio.timeout(timeout):
            while True:
                value = await probe()
                if value:
                    return value
                await asyncio.sleep(0.1)
    except TimeoutError:
        if why is None:
            raise
        pytest.fail(f"still waiting after {timeout:.0f} s: {await why()}", pytrace=False)


async def ledger_check(cwd: Path, **database: str) -> tuple[int, str]:
    """`portrait-bot admin ledger check` in its own process on the database `database` names
    (PORTRAIT_BOT_DB=... or DATABASE_URL=...): its exit code and output."""
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT), **database}
    check = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "admin", "ledger", "check", cwd=cwd, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await asyncio.wait_for(check.communicate(), 60)
    assert check.returncode is not None
    return check.returncode, output.decode()
