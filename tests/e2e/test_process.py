"""The real process: `python -m bot` against the fake Bot API and a served emulator, stopped by SIGTERM.

What only a process shows: the token never reaches the logs (even at DEBUG, where libraries log URLs),
SIGTERM stops it cleanly with exit code 0, and a generation in flight is left in the database for the
next start instead of being failed or refunded.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest

from api_client.emulator import EmulatorConfig, EmulatorState, serve_in_thread
from api_client.emulator.server import RunningEmulator
from fake_telegram import FakeTelegram, FakeUser, serve
from storage import Store, TaskState
from tests.e2e.images import draw_selfie

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "987654321:PROCESS-test-token-that-must-never-be-logged"


def _polled(state: EmulatorState) -> bool:
    """The bot polls only after it stored the upstream task id: from here on the task is `submitted`.

    (Waiting for the submit to arrive is not enough: a stop between the service's answer and the bot's
    commit rightly leaves the task `submitting`, which a loaded machine makes likely.)
    """
    return any(call.action == "CVSync2AsyncGetResult" for call in list(state.calls))


def _bot_env(url: str, emulator_url: str, db: Path, *, log_level: str = "INFO") -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT), "LOG_LEVEL": log_level,
        "TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_API_URL": f"{url}/bot",
        "VOLC_ACCESSKEY": "AKP", "VOLC_SECRETKEY": "SKP", "VOLC_ENDPOINT": emulator_url,
        "PORTRAIT_BOT_DB": str(db), "STATUS_EDIT_INTERVAL": "0",
    }  # fmt: skip


async def _start_bot(
    env: dict[str, str], cwd: Path, *, keep_output: bool = False
) -> asyncio.subprocess.Process:
    """`python -m bot`; with keep_output its stdout and stderr are one pipe, for reading the logs."""
    output = asyncio.subprocess.PIPE if keep_output else asyncio.subprocess.DEVNULL
    stderr = asyncio.subprocess.STDOUT if keep_output else asyncio.subprocess.DEVNULL
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", cwd=cwd, env=env, stdout=output, stderr=stderr
    )


async def _ask_for_a_portrait(fake: FakeTelegram, alice: FakeUser, emulator: RunningEmulator) -> None:
    """Alice sends a selfie and /anime; returns once the bot polls the upstream task."""
    chat = fake.private_chat(alice)
    fake.send_photo(alice, chat, draw_selfie())
    await fake.wait_for_message(chat, "selfie", timeout=30)
    fake.send_text(alice, chat, "/anime")
    await fake.wait_for(lambda: _polled(emulator.state) or None, 30)


@pytest.mark.slow
async def test_sigterm_leaves_the_running_task_for_the_next_start(tmp_path: Path) -> None:
    fake = FakeTelegram(token=TOKEN)
    alice = fake.add_user(1001, "Alice", "alice")
    config = EmulatorConfig(access_key="AKP", secret_key="SKP", queue_seconds=0.0, generate_seconds=3600.0)
    with serve_in_thread(config) as emulator:
        async with serve(fake) as url:
            env = _bot_env(url, emulator.base_url, tmp_path / "bot.db", log_level="DEBUG")
            bot = await _start_bot(env, tmp_path, keep_output=True)
            try:
                await _ask_for_a_portrait(fake, alice, emulator)
                bot.send_signal(signal.SIGTERM)
                output, _ = await asyncio.wait_for(bot.communicate(), 30)
            finally:
                if bot.returncode is None:
                    bot.kill()
    logs = output.decode()
    assert bot.returncode == 0, logs
    assert "starting:" in logs and "getUpdates" in logs  # DEBUG logging did happen
    assert TOKEN not in logs and TOKEN.split(":")[1] not in logs
    assert "SKP" not in logs
    store = await Store.open(tmp_path / "bot.db")
    try:
        (task,) = await store.tasks.unfinished()
        assert task.state in (TaskState.SUBMITTED, TaskState.POLLING) and task.upstream_task_id
        assert (await store.quotas.balance(1001)).free_left == 2  # still reserved, not refunded
    finally:
        await store.close()


@pytest.mark.slow
async def test_sigkill_mid_generation_then_restart_delivers_once_and_bills_once(tmp_path: Path) -> None:
    """kill -9 while the service is generating: the next process resumes polling the same upstream task
    (never submits again), the user gets exactly one portrait, and exactly one unit is spent."""
    fake = FakeTelegram(token=TOKEN)
    alice = fake.add_user(1001, "Alice", "alice")
    config = EmulatorConfig(access_key="AKP", secret_key="SKP", queue_seconds=0.0, generate_seconds=3600.0)
    with serve_in_thread(config) as emulator:
        async with serve(fake) as url:
            env = _bot_env(url, emulator.base_url, tmp_path / "bot.db")
            first = await _start_bot(env, tmp_path)
            try:
                await _ask_for_a_portrait(fake, alice, emulator)
                first.kill()
                await first.wait()
            finally:
                if first.returncode is None:
                    first.kill()
            emulator.state.config.generate_seconds = 0.0  # the service finishes while the bot is down
            second = await _start_bot(env, tmp_path)
            try:
                await fake.wait_for(lambda: fake.calls_to("sendPhoto", ok=True) or None, 60)
                await asyncio.sleep(1.0)  # room for a duplicate delivery to show up, if there were one
            finally:
                second.send_signal(signal.SIGTERM)
                await asyncio.wait_for(second.wait(), 30)
    assert len(fake.calls_to("sendPhoto", ok=True)) == 1
    assert emulator.state.submits_received == 1
    store = await Store.open(tmp_path / "bot.db")
    try:
        assert await store.tasks.unfinished() == []
        (task,) = await store.tasks.recent_for_user(1001)
        assert task.state is TaskState.DONE
        assert (await store.quotas.balance(1001)).free_left == 2
        assert (await store.quotas.check()).ok
    finally:
        await store.close()
