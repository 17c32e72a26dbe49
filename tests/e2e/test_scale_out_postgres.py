"""Three webhook processes on one PostgreSQL schema, 1,000 updates from 200 users, one process SIGKILLed.

The scale-out claim at full size: Telegram (the fake) delivers every update to two processes in turn, the
process holding the most task leases dies with every portrait in flight at the service, and still every
accepted /anime gets its portrait exactly once, the service sees each task submitted once, no task is left
unfinished, the ledger check is clean, and the survivors' /metrics show the dead one's leases taken over.
Commands sent after the kill are each answered exactly once by the survivors, and the survivors' messages
drew from the one Telegram send rate they share through the database (bot/ops/ratelimit.py).

What is not claimed (bot/ops/dedupe.py): an update the killed process had taken but not handled is lost,
as Telegram would not send it again either. So the kill comes when every /anime has become a task.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from functools import partial
from pathlib import Path

import asyncpg
import pytest

from api_client.emulator import EmulatorConfig, serve_in_thread
from api_client.emulator import app as emulator_app
from benchmarks.emulator_proc import render_once
from fake_telegram import FakeTelegram, FakeUser, serve
from fake_telegram.model import FakeMessage
from tests.e2e.images import draw_selfie
from tests.e2e.multiprocess import (
    TAKEN,
    bot_env,
    free_port,
    ledger_check,
    processes,
    ready,
    sample,
    scrape,
    until,
    victim,
    webhook_commands,
)
from tests.e2e.test_process import TOKEN
from tests.pg import temporary_schema

SECRET = "scale-out-pg-secret"
USERS = 200
#: Per user: a selfie, /prompt, /anime before the kill; /quota, /settings after it.
BEFORE_KILL = ("/prompt a watercolour portrait", "/anime")
AFTER_KILL = ("/quota", "/settings")
UPDATES = USERS * (1 + len(BEFORE_KILL) + len(AFTER_KILL))
IN_FLIGHT = ("submitted", "polling")  # the service has the task: polled, not yet done
TERMINAL = ("done", "failed", "cancelled", "expired")
SHARED_SENDS = 'portrait_bot_telegram_shared_sends_total{outcome="drawn"}'



async def _tasks(url: str) -> list[tuple[int, str, str | None]]:
    """(user, state, lease owner) of every task, straight from the schema (one query for 200 users)."""
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT user_id, state, lease_owner FROM tasks ORDER BY id")
    finally:
        await conn.close()
    return [(row["user_id"], row["state"], row["lease_owner"]) for row in rows]


async def _states(url: str) -> str:
    """What the tasks are doing, for a wait's failure message."""
    tasks = await _tasks(url)
    return f"{len(tasks)} tasks: {dict(Counter((state, owner) for _, state, owner in tasks))}"


def _replies(fake: FakeTelegram, request: FakeMessage) -> list[FakeMessage]:
    """The bot's messages quoting `request` (every reply and the portrait quote the user's message)."""
    return [
        m for m in fake.sent_messages(request.chat.id)
        if m.reply_to is not None and m.reply_to.message_id == request.message_id
    ]  # fmt: skip


def _send_all(fake: FakeTelegram, users: list[FakeUser], text: str) -> list[FakeMessage]:
    return [fake.send_text(user, fake.private_chat(user), text) for user in users]


@pytest.mark.slow
@pytest.mark.timeout(300)  # about 1.5 minutes alone on 2 cores; the phases' own limits are below
async def test_three_webhook_processes_on_postgresql_1000_updates_one_killed(
    tmp_path: Path, postgres: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The service renders on its own machines; here 200 renders would take the CPU this process needs to
    # play Telegram. Identical requests (one selfie, one size) share one render, as in the benchmarks.
    monkeypatch.setattr(emulator_app, "render_result", render_once)
    fake = FakeTelegram(token=TOKEN)
    users = [fake.add_user(2000 + n, f"User{n}", f"user{n}") for n in range(1, USERS + 1)]
    selfie = draw_selfie()
    config = EmulatorConfig(access_key="AKP", secret_key="SKP", queue_seconds=0.0, generate_seconds=3600.0)
    ports = [free_port() for _ in range(3)]
    async with temporary_schema() as url:
        with serve_in_thread(config) as emulator:
            async with serve(fake) as fake_url:
                fake.webhook.targets = [f"http://127.0.0.1:{port}" for port in ports]
                fake.webhook.duplicates = 1  # every update also reaches a second process
                env = partial(
                    bot_env, fake_url, emulator.base_url, tmp_path / "unused.db", DATABASE_URL=url,
                    DAILY_FREE_QUOTA="100", UPSTREAM_QPS="200", MAX_CONCURRENT_TASKS=str(USERS + 50),
                    TELEGRAM_SEND_RATE="200",  # for the three together: the fake has no limit, CI time has
                    STATUS_EDIT_INTERVAL="3",  # the default: progress edits of 200 waiting tasks cost CPU
                )  # fmt: skip
                async with processes(tmp_path, *webhook_commands(ports, env, SECRET), logs=True) as procs:
                    for port, proc in zip(ports, procs, strict=True):
                        assert (await ready(port, proc))["role"] == "webhook"
                    selfies = [fake.send_photo(u, fake.private_chat(u), selfie) for u in users]
                    await until(partial(_all_answered, fake, selfies), 90)
                    before = [_send_all(fake, users, text) for text in BEFORE_KILL]

                    async def all_in_flight() -> list[tuple[int, str, str | None]] | None:
                        tasks = await _tasks(url)
                        states = {state for _, state, _ in tasks}
                        return tasks if len(tasks) == USERS and states <= set(IN_FLIGHT) else None

                    tasks = await until(all_in_flight, 120, why=partial(_states, url))
                    procs[victim([owner for _, _, owner in tasks])].kill()  # the one holding the most leases
                    after = [m for text in AFTER_KILL for m in _send_all(fake, users, text)]
                    emulator.state.config.generate_seconds = 0.0  # the service finishes everything now

                    async def finished() -> bool:
                        states = {state for _, state, _ in await _tasks(url)}
                        return states <= set(TERMINAL) and await _all_answered(fake, after)

                    await until(finished, 120, why=partial(_states, url))
                    await asyncio.sleep(1.0)  # room for a duplicate delivery to show up, if there were one
                    survivors = [p for p, proc in zip(ports, procs, strict=True) if proc.returncode is None]
                    scraped = await scrape(survivors)
            tasks = await _tasks(url)
            code, output = await ledger_check(tmp_path, DATABASE_URL=url)
    update_ids = {d.update_id for d in fake.webhook.deliveries}
    assert len(update_ids) == UPDATES == 1_000
    for selfie_message in selfies:  # delivered twice, to two different processes
        assert len({d.url for d in fake.webhook.delivered(selfie_message.update_id or 0)}) == 2
    accepted = Counter(user for user, _, _ in tasks)
    assert accepted == Counter({u.id: 1 for u in users})  # every /anime became one task
    for request in before[BEFORE_KILL.index("/anime")]:
        photos = [m for m in fake.sent_messages(request.chat.id) if m.photo]
        assert len(photos) == accepted[request.chat.id], fake.transcript(request.chat.id)
        assert all(p.reply_to is not None and p.reply_to.message_id == request.message_id for p in photos)
    assert emulator.state.submits_received == len(tasks)  # no task submitted twice
    assert {state for _, state, _ in tasks} == {"done"}
    for request in after:  # each command after the kill answered once
        assert len(_replies(fake, request)) == 1, fake.transcript(request.chat.id)
    assert sum(sample(text, TAKEN) for text in scraped) >= 1  # the dead one's tasks moved on
    drawn, failed_open = (
        f'portrait_bot_telegram_shared_sends_total{{outcome="{o}"}}' for o in ("drawn", "failed_open")
    )
    assert all(
        sample(text, drawn) > 0 and sample(text, failed_open) == 0 for text in scraped
    )  # one send rate
    assert code == 0, output


async def _all_answered(fake: FakeTelegram, requests: list[FakeMessage]) -> bool:
    return all(_replies(fake, request) for request in requests)
