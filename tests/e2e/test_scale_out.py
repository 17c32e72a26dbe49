"""Several real processes on one database: webhook receivers that die, and a worker that runs jobs alone.

What only real processes show: leases moving from a SIGKILLed process to the others, each update handled
once although Telegram (the fake) delivers every one twice to different processes, no task submitted
twice, every portrait delivered exactly once and the ledger clean; and a `worker` with no Telegram updates
running tasks another process created.
"""

from __future__ import annotations

import asyncio
from functools import partial
from pathlib import Path

import pytest

from api_client.emulator import EmulatorConfig, serve_in_thread
from fake_telegram import FakeTelegram, serve
from storage import Store, TaskState
from tests.e2e.conftest import HarnessFactory, is_photo, says
from tests.e2e.images import draw_selfie
from tests.e2e.multiprocess import (
    TAKEN,
    bot_env,
    free_port,
    ledger_check,
    processes,
    ready,
    request_portrait,
    sample,
    scrape,
    until,
    victim,
    webhook_commands,
)
from tests.e2e.test_process import TOKEN

SECRET = "scale-out-secret"
USERS = 6


async def _tasks(db: Path) -> list[tuple[int, TaskState, str | None]]:
    store = await Store.open(db)
    try:
        return [(t.id, t.state, t.lease_owner) for u in range(1, USERS + 1) for t in
                await store.tasks.recent_for_user(1000 + u)]  # fmt: skip
    finally:
        await store.close()


@pytest.mark.slow
async def test_three_webhook_processes_one_killed_every_portrait_once(tmp_path: Path) -> None:
    fake = FakeTelegram(token=TOKEN)
    users = [fake.add_user(1000 + n, f"User{n}", f"user{n}") for n in range(1, USERS + 1)]
    config = EmulatorConfig(access_key="AKP", secret_key="SKP", queue_seconds=0.0, generate_seconds=3600.0)
    db = tmp_path / "bot.db"
    ports = [free_port() for _ in range(3)]
    with serve_in_thread(config) as emulator:
        async with serve(fake) as url:
            fake.webhook.targets = [f"http://127.0.0.1:{port}" for port in ports]
            fake.webhook.duplicates = 1  # every update also reaches a second process
            commands = webhook_commands(ports, partial(bot_env, url, emulator.base_url, db), SECRET)
            async with processes(tmp_path, *commands) as procs:
                for port, proc in zip(ports, procs, strict=True):
                    assert (await ready(port, proc))["role"] == "webhook"
                await asyncio.gather(*(request_portrait(fake, user) for user in users))

                async def all_polling() -> list[tuple[int, TaskState, str | None]] | None:
                    tasks = await _tasks(db)
                    with_service = (TaskState.SUBMITTED, TaskState.POLLING)  # submitted: polled, not yet done
                    polled = len(tasks) == USERS and all(state in with_service for _, state, _ in tasks)
                    return tasks if polled else None

                tasks = await until(all_polling, 30)
                procs[victim([owner for _, _, owner in tasks])].kill()  # the one holding the most leases
                emulator.state.config.generate_seconds = 0.0  # the service finishes everything now

                def delivered() -> bool | None:
                    return all(fake.sent_messages(u.id) and any(m.photo for m in fake.sent_messages(u.id))
                               for u in users) or None  # fmt: skip

                await fake.wait_for(delivered, 45)
                await asyncio.sleep(1.0)  # room for a duplicate delivery to show up, if there were one
                survivors = [p for p, proc in zip(ports, procs, strict=True) if proc.returncode is None]
                scraped = await scrape(survivors)
    for user in users:
        assert len([m for m in fake.sent_messages(user.id) if m.photo]) == 1, fake.transcript(user.id)
    assert emulator.state.submits_received == USERS  # no task submitted twice
    assert {state for _, state, _ in await _tasks(db)} == {TaskState.DONE}
    assert sum(sample(text, TAKEN) for text in scraped) >= 1  # the dead one's tasks moved on
    update_ids = {d.update_id for d in fake.webhook.deliveries}
    assert all(len(fake.webhook.delivered(u)) == 2 for u in update_ids)  # each update went to two processes
    code, output = await ledger_check(tmp_path, PORTRAIT_BOT_DB=str(db))
    assert code == 0, output


@pytest.mark.slow
async def test_a_worker_delivers_tasks_a_no_jobs_process_created(
    make_harness: HarnessFactory, tmp_path: Path
) -> None:
    harness = await make_harness(run_jobs=False)  # takes updates and creates tasks; runs none of them
    config = EmulatorConfig(access_key="AKP", secret_key="SKP", queue_seconds=0.0, generate_seconds=0.0)
    port = free_port()
    with serve_in_thread(config) as emulator:
        env = bot_env(harness.url, emulator.base_url, tmp_path / "bot.db", WORKER_ID="worker-1",
                   METRICS_PORT=str(port), TELEGRAM_BOT_TOKEN=harness.fake.token)  # fmt: skip
        async with processes(tmp_path, (["worker"], env)) as (worker,):
            readiness = await ready(port, worker)
            alice = harness.person()
            await alice.photo(draw_selfie(), expect=says("face.saved"))
            request = harness.fake.send_text(alice.user, alice.chat, "/anime")
            portrait = await harness.fake.wait_for_message(
                alice.chat, is_photo, after=request.message_id, timeout=30
            )
    assert readiness["role"] == "worker"
    assert readiness["checks"] == {"services_open": True, "not_stopping": True, "jobs_started": True,
                               "application_running": True}  # fmt: skip
    assert portrait.reply_to is not None and portrait.reply_to.message_id == request.message_id
    assert emulator.state.submits_received == 1 and harness.emulator_state.submits_received == 0
    assert harness.services.runner.running == frozenset()
    (task,) = await harness.services.store.tasks.recent_for_user(alice.user.id)
    assert task.state is TaskState.DONE
    assert harness.fake.calls_to("setWebhook") == []  # the worker asked for no updates
