"""Several `portrait-bot run` (polling) processes on one PostgreSQL schema: one polls, another takes over.

Telegram (and the fake: fake_telegram/service.py) ends an older getUpdates with 409 Conflict when a second
one comes in, so two pollers at once would show as 409s. The processes say which one polls on /readyz
(`polling` or `poll_standby`). Requests made before and after the poller is SIGKILLed are all delivered
exactly once, and the ledger is clean.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from api_client.emulator import EmulatorConfig, serve_in_thread
from fake_telegram import FakeTelegram, FakeUser, serve
from storage import Store, TaskState
from tests.e2e.multiprocess import bot_env, free_port, ledger_check, processes, ready, request_portrait
from tests.e2e.test_process import TOKEN
from tests.pg import temporary_schema

USERS = 6


async def _polling(ports: list[int]) -> list[int]:
    """The ports of the processes whose /readyz says they poll (unreachable ones are skipped)."""
    found = []
    async with httpx.AsyncClient() as client:
        for port in ports:
            try:
                checks = (await client.get(f"http://127.0.0.1:{port}/readyz")).json()["checks"]
            except httpx.HTTPError:
                continue
            if "polling" in checks:
                found.append(port)
    return found


def _conflicts(fake: FakeTelegram) -> int:
    return len([call for call in fake.calls_to("getUpdates") if call.status == 409])



@pytest.mark.slow
async def test_one_of_three_polling_processes_polls_and_another_takes_over_when_it_is_killed(
    tmp_path: Path, postgres: None
) -> None:
    fake = FakeTelegram(token=TOKEN)
    users = [fake.add_user(1000 + n, f"User{n}", f"user{n}") for n in range(1, USERS + 1)]
    config = EmulatorConfig(access_key="AKP", secret_key="SKP", queue_seconds=0.0, generate_seconds=0.5)
    ports = [free_port() for _ in range(3)]

    def delivered(group: list[FakeUser]) -> bool | None:
        return all(any(m.photo for m in fake.sent_messages(u.id)) for u in group) or None

    async with temporary_schema() as url:
        with serve_in_thread(config) as emulator:
            async with serve(fake) as fake_url:
                commands = [
                    (["run"], bot_env(fake_url, emulator.base_url, tmp_path / "unused.db", DATABASE_URL=url,
                                     WORKER_ID=f"poll-{n}", METRICS_PORT=str(port)))
                    for n, port in enumerate(ports, start=1)
                ]  # fmt: skip
                async with processes(tmp_path, *commands) as procs:
                    for port, proc in zip(ports, procs, strict=True):
                        assert (await ready(port, proc))["role"] == "polling"
                    (leader,) = await _polling(ports)
                    await asyncio.gather(*(request_portrait(fake, user) for user in users[:3]))
                    await fake.wait_for(lambda: delivered(users[:3]), 45)
                    assert _conflicts(fake) == 0  # never two getUpdates at once
                    assert await _polling(ports) == [leader]

                    procs[ports.index(leader)].kill()
                    survivors = [port for port in ports if port != leader]
                    async with asyncio.timeout(30):  # RETRY_SECONDS (2 s) in practice
                        while not await _polling(survivors):  # noqa: ASYNC110
                            await asyncio.sleep(0.2)
                    (new_leader,) = await _polling(survivors)
                    await asyncio.gather(*(request_portrait(fake, user) for user in users[3:]))
                    await fake.wait_for(lambda: delivered(users), 45)
                    await asyncio.sleep(1.0)  # room for a duplicate delivery to show up, if there were one
                    assert await _polling(survivors) == [new_leader]
                    # At most the killed poller's long poll, still parked at the fake when the new one came
                    # in (a poller stopping ends its own parked poll the same way: asked before the stop).
                    assert _conflicts(fake) <= 1
            for user in users:
                assert len([m for m in fake.sent_messages(user.id) if m.photo]) == 1, fake.transcript(user.id)
            assert emulator.state.submits_received == USERS
            store = await Store.open(url)
            try:
                states = {t.state for u in users for t in await store.tasks.recent_for_user(u.id)}
            finally:
                await store.close()
            assert states == {TaskState.DONE}
            code, output = await ledger_check(tmp_path, DATABASE_URL=url)
            assert code == 0, output
