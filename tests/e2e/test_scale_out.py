"""Several real processes on one database: webhook receivers that die, and a worker that runs jobs alone.

What only real processes show: leases moving from a SIGKILLed process to the others, each update handled
once although Telegram (the fake) delivers every one twice to different processes, no task submitted
twice, every portrait delivered exactly once and the ledger clean; and a `worker` with no Telegram updates
running tasks another process created.
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

from api_client.emulator import EmulatorConfig, serve_in_thread
from fake_telegram import FakeTelegram, FakeUser, serve
from storage import Store, TaskState
from tests.e2e.conftest import HarnessFactory, is_photo, says
from tests.e2e.images import draw_selfie
from tests.e2e.test_process import ROOT, TOKEN

SECRET = "scale-out-secret"
USERS = 6
Process = asyncio.subprocess.Process
T = TypeVar("T")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _env(fake_url: str, emulator_url: str, db: Path, **extra: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT), "LOG_LEVEL": "WARNING",
        "TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_API_URL": f"{fake_url}/bot",
        "VOLC_ACCESSKEY": "AKP", "VOLC_SECRETKEY": "SKP", "VOLC_ENDPOINT": emulator_url,
        "PORTRAIT_BOT_DB": str(db), "STATUS_EDIT_INTERVAL": "0", "TASK_LEASE_SECONDS": "10", **extra,
    }  # fmt: skip


@contextlib.asynccontextmanager
async def processes(cwd: Path, *commands: tuple[list[str], dict[str, str]]) -> AsyncIterator[list[Process]]:
    """Start `python -m bot ARGS` per command; SIGTERM (then wait) whatever still runs at the end."""
    started: list[Process] = []
    try:
        for args, env in commands:
            started.append(await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", *args, cwd=cwd, env=env,
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
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


async def _ready(port: int, proc: Process, timeout: float = 45.0) -> dict[str, object]:  # noqa: ASYNC109
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


async def _tasks(db: Path) -> list[tuple[int, TaskState, str | None]]:
    store = await Store.open(db)
    try:
        return [(t.id, t.state, t.lease_owner) for u in range(1, USERS + 1) for t in
                await store.tasks.recent_for_user(1000 + u)]  # fmt: skip
    finally:
        await store.close()


async def _request_portrait(fake: FakeTelegram, user: FakeUser) -> None:
    chat = fake.private_chat(user)
    sent = fake.send_photo(user, chat, draw_selfie())
    await fake.wait_for_message(chat, "selfie", after=sent.message_id, timeout=30)
    fake.send_text(user, chat, "/anime")


@pytest.mark.slow
async def test_three_webhook_processes_one_killed_every_portrait_once(tmp_path: Path) -> None:
    fake = FakeTelegram(token=TOKEN)
    users = [fake.add_user(1000 + n, f"User{n}", f"user{n}") for n in range(1, USERS + 1)]
    config = EmulatorConfig(access_key="AKP", secret_key="SKP", queue_seconds=0.0, generate_seconds=3600.0)
    db = tmp_path / "bot.db"
    ports = [_free_port() for _ in range(3)]
    with serve_in_thread(config) as emulator:
        async with serve(fake) as url:
            fake.webhook.targets = [f"http://127.0.0.1:{port}" for port in ports]
            fake.webhook.duplicates = 1  # every update also reaches a second process
            commands = [
                (["--webhook"], _env(url, emulator.base_url, db, WORKER_ID=f"web-{n}",
                                     WEBHOOK_URL=f"http://127.0.0.1:{ports[0]}/telegram",
                                     WEBHOOK_SECRET=SECRET, WEBHOOK_LISTEN=f"127.0.0.1:{port}"))
                for n, port in enumerate(ports, start=1)
            ]  # fmt: skip
            async with processes(tmp_path, *commands) as procs:
                for port, proc in zip(ports, procs, strict=True):
                    assert (await _ready(port, proc))["role"] == "webhook"
                await asyncio.gather(*(_request_portrait(fake, user) for user in users))

                async def all_polling() -> list[tuple[int, TaskState, str | None]] | None:
                    tasks = await _tasks(db)
                    with_service = (TaskState.SUBMITTED, TaskState.POLLING)  # submitted: polled, not yet done
                    polled = len(tasks) == USERS and all(state in with_service for _, state, _ in tasks)
                    return tasks if polled else None

                tasks = await _until(all_polling, 30)
                owners = [owner for _, _, owner in tasks]
                victim = max(set(owners), key=owners.count)  # the process holding the most leases dies
                procs[int(str(victim).removeprefix("web-")) - 1].kill()
                emulator.state.config.generate_seconds = 0.0  # the service finishes everything now

                def delivered() -> bool | None:
                    return all(fake.sent_messages(u.id) and any(m.photo for m in fake.sent_messages(u.id))
                               for u in users) or None  # fmt: skip

                await fake.wait_for(delivered, 45)
                await asyncio.sleep(1.0)  # room for a duplicate delivery to show up, if there were one
                survivors = [p for p, proc in zip(ports, procs, strict=True) if proc.returncode is None]
                async with httpx.AsyncClient() as client:
                    scraped = [(await client.get(f"http://127.0.0.1:{p}/metrics")).text for p in survivors]
    for user in users:
        assert len([m for m in fake.sent_messages(user.id) if m.photo]) == 1, fake.transcript(user.id)
    assert emulator.state.submits_received == USERS  # no task submitted twice
    assert {state for _, state, _ in await _tasks(db)} == {TaskState.DONE}
    taken = 'portrait_bot_lease_takeovers_total{direction="taken"}'
    assert sum(_sample(text, taken) for text in scraped) >= 1  # the dead one's tasks moved on
    update_ids = {d.update_id for d in fake.webhook.deliveries}
    assert all(len(fake.webhook.delivered(u)) == 2 for u in update_ids)  # each update went to two processes
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT), "PORTRAIT_BOT_DB": str(db)}
    check = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "admin", "ledger", "check", cwd=tmp_path, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await asyncio.wait_for(check.communicate(), 60)
    assert check.returncode == 0, output.decode()


def _sample(text: str, name: str) -> float:
    return next(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + " "))


async def _until(probe: Callable[[], Awaitable[T | None]], timeout: float) -> T:  # noqa: ASYNC109
    """The probe's first truthy value (the database has no change signal a test could wait on)."""
    async with asyncio.timeout(timeout):
        while True:
            value = await probe()
            if value:
                return value
            await asyncio.sleep(0.1)


@pytest.mark.slow
async def test_a_worker_delivers_tasks_a_no_jobs_process_created(
    make_harness: HarnessFactory, tmp_path: Path
) -> None:
    harness = await make_harness(run_jobs=False)  # takes updates and creates tasks; runs none of them
    config = EmulatorConfig(access_key="AKP", secret_key="SKP", queue_seconds=0.0, generate_seconds=0.0)
    port = _free_port()
    with serve_in_thread(config) as emulator:
        env = _env(harness.url, emulator.base_url, tmp_path / "bot.db", WORKER_ID="worker-1",
                   METRICS_PORT=str(port), TELEGRAM_BOT_TOKEN=harness.fake.token)  # fmt: skip
        async with processes(tmp_path, (["worker"], env)) as (worker,):
            ready = await _ready(port, worker)
            alice = harness.person()
            await alice.photo(draw_selfie(), expect=says("face.saved"))
            request = harness.fake.send_text(alice.user, alice.chat, "/anime")
            portrait = await harness.fake.wait_for_message(
                alice.chat, is_photo, after=request.message_id, timeout=30
            )
    assert ready["role"] == "worker"
    assert ready["checks"] == {"services_open": True, "not_stopping": True, "jobs_started": True,
                               "application_running": True}  # fmt: skip
    assert portrait.reply_to is not None and portrait.reply_to.message_id == request.message_id
    assert emulator.state.submits_received == 1 and harness.emulator_state.submits_received == 0
    assert harness.services.runner.running == frozenset()
    (task,) = await harness.services.store.tasks.recent_for_user(alice.user.id)
    assert task.state is TaskState.DONE
    assert harness.fake.calls_to("setWebhook") == []  # the worker asked for no updates
