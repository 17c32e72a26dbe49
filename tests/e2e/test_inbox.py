"""No request is lost with a killed process: updates are stored before Telegram is told they arrived.

Real processes for the kills (`python -m bot`, as tests/e2e/test_process.py), killed while an update
is in their hands and not yet handled. To hold the bot right there, the test keeps the SQLite file's
write lock (a busy database, as another process's long transaction would): an update can then be
fetched, or posted to the webhook, but neither stored nor handled. The kill comes once Telegram (the
fake) considers the update delivered, or after a pause if it never does. After a restart on the free
database the request must become one task and one portrait: from Telegram again when the bot had not
confirmed it, or from the inbox when it had. The in-process test covers the inbox's replay: what a
dead process received and nobody claimed is handled at the next start; an update whose handler had
started is not handled again (at most once) unless it is replay-safe. Two more kills land inside a
handler (Telegram, the fake, answers the call it waits in late): a photo captioned /anime is handled
again after the restart, once in effect; an admin's /grant is not.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sqlite3
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from api_client.emulator import EmulatorConfig, serve_in_thread
from fake_telegram import FakeChat, FakeMessage, FakeTelegram, FakeUser, serve
from storage import Received, Store, TaskState
from tests.e2e.conftest import WAIT, HarnessFactory
from tests.e2e.images import draw_selfie
from tests.e2e.multiprocess import free_port, ready
from tests.e2e.test_process import TOKEN, _bot_env, _start_bot
from tests.e2e.test_scale_out import SECRET

#: How long the bot may hold an update before the kill when Telegram never learns it arrived (the
#: fixed bot): its chance to confirm it, as the old poller and webhook did at once.
GRACE = 2.0


@contextlib.asynccontextmanager
async def database_busy(db: Path) -> AsyncIterator[None]:
    """Hold the SQLite file's write lock (BEGIN IMMEDIATE) from this process until the block ends."""
    conn = sqlite3.connect(db, timeout=30, isolation_level=None, check_same_thread=False)
    try:
        await asyncio.to_thread(conn.execute, "BEGIN IMMEDIATE")
        yield
        conn.execute("ROLLBACK")
    finally:
        conn.close()


def _update_id(fake: FakeTelegram, sent: FakeMessage) -> int:
    return next(
        u["update_id"] for u in fake.updates if u.get("message", {}).get("message_id") == sent.message_id
    )


async def _kill_when_taken(fake: FakeTelegram, update_id: int, bot: asyncio.subprocess.Process) -> None:
    """SIGKILL once the fake no longer holds the update (confirmed) or after GRACE, whichever is first."""
    with contextlib.suppress(TimeoutError):
        await fake.wait_for(lambda: all(u["update_id"] != update_id for u in fake.updates) or None, GRACE)
    bot.kill()
    await bot.wait()


async def _selfie(fake: FakeTelegram, user: FakeUser, chat: FakeChat) -> None:
    sent = fake.send_photo(user, chat, draw_selfie())
    await fake.wait_for_message(chat, "selfie", after=sent.message_id, timeout=30)


def _portraits(fake: FakeTelegram, chat: FakeChat, request: FakeMessage) -> int:
    sent = fake.sent_messages(chat.id, include_deleted=True)
    return sum(1 for m in sent if m.photo and m.reply_to and m.reply_to.message_id == request.message_id)


async def _one_task_done(db: Path, user_id: int) -> None:
    store = await Store.open(db)
    try:
        (task,) = await store.tasks.recent_for_user(user_id)
        assert task.state is TaskState.DONE
        assert (await store.quotas.balance(user_id)).free_left == 2  # one unit spent, once
        assert (await store.quotas.check()).ok
    finally:
        await store.close()


@pytest.mark.slow
async def test_a_poller_killed_holding_a_fetched_update_delivers_it_after_restart(tmp_path: Path) -> None:
    fake = FakeTelegram(token=TOKEN)
    alice = fake.add_user(1001, "Alice", "alice")
    chat = fake.private_chat(alice)
    db = tmp_path / "bot.db"
    config = EmulatorConfig(access_key="AKP", secret_key="SKP", queue_seconds=0.0, generate_seconds=0.0)
    with serve_in_thread(config) as emulator:
        async with serve(fake) as url:
            env = _bot_env(url, emulator.base_url, db)
            first = await _start_bot(env, tmp_path)
            try:
                await _selfie(fake, alice, chat)
                async with database_busy(db):
                    request = fake.send_text(alice, chat, "/anime")
                    update_id = _update_id(fake, request)
                    await fake.wait_for(lambda: _handed_out(fake, update_id) or None, WAIT)
                    await _kill_when_taken(fake, update_id, first)
            finally:
                if first.returncode is None:
                    first.kill()
            portraits = await _portraits_after_restart(await _start_bot(env, tmp_path), fake, chat, request)
    assert portraits == 1
    assert emulator.state.submits_received == 1
    await _one_task_done(db, alice.id)


async def _portraits_after_restart(
    restarted: asyncio.subprocess.Process, fake: FakeTelegram, chat: FakeChat, request: FakeMessage
) -> int:
    """The portraits replying to `request` once the restarted bot delivered one (and had time for a
    second, if there were one); the bot is stopped on the way out."""
    try:
        await fake.wait_for(lambda: _portraits(fake, chat, request) or None, 60)
        await asyncio.sleep(1.0)
    finally:
        restarted.send_signal(signal.SIGTERM)
        await asyncio.wait_for(restarted.wait(), 30)
    return _portraits(fake, chat, request)


def _handed_out(fake: FakeTelegram, update_id: int) -> bool:
    """A getUpdates answer carried the update: the bot has it in hand."""
    return any(update["update_id"] == update_id for call in fake.calls_to("getUpdates", ok=True)
               for update in (call.result if isinstance(call.result, list) else []))  # fmt: skip


@pytest.mark.slow
async def test_a_webhook_killed_holding_a_posted_update_delivers_it_after_restart(tmp_path: Path) -> None:
    fake = FakeTelegram(token=TOKEN)
    alice = fake.add_user(1001, "Alice", "alice")
    chat = fake.private_chat(alice)
    db = tmp_path / "bot.db"
    port = free_port()
    config = EmulatorConfig(access_key="AKP", secret_key="SKP", queue_seconds=0.0, generate_seconds=0.0)
    with serve_in_thread(config) as emulator:
        async with serve(fake) as url:
            env = {**_bot_env(url, emulator.base_url, db), "WEBHOOK_URL": f"http://127.0.0.1:{port}/telegram",
                   "WEBHOOK_SECRET": SECRET, "WEBHOOK_LISTEN": f"127.0.0.1:{port}"}  # fmt: skip
            first = await _start_webhook(env, tmp_path, port)
            try:
                await _selfie(fake, alice, chat)
                async with database_busy(db):
                    request = fake.send_text(alice, chat, "/anime")
                    await _kill_when_taken(fake, _update_id(fake, request), first)
            finally:
                if first.returncode is None:
                    first.kill()
            second = await _start_webhook(env, tmp_path, port)
            portraits = await _portraits_after_restart(second, fake, chat, request)
    assert portraits == 1
    assert emulator.state.submits_received == 1
    await _one_task_done(db, alice.id)


async def _start_webhook(env: dict[str, str], cwd: Path, port: int) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "--webhook", cwd=cwd, env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        await ready(port, proc)
    except BaseException:
        proc.kill()
        await proc.wait()
        raise
    return proc


async def test_a_restart_replays_updates_received_but_never_claimed_and_not_started_ones(
    make_harness: HarnessFactory, tmp_path: Path
) -> None:
    """What a killed process leaves in the inbox: /start received (queued, never claimed) and /help whose
    handler had started. The next start answers /start once and leaves /help alone."""
    bot = await make_harness()
    alice = bot.person()
    first = await alice.say("/start")
    await bot.stop()
    fresh = bot.fake.send_text(alice.user, alice.chat, "/start")
    cut_off = bot.fake.send_text(alice.user, alice.chat, "/help")
    taken = [bot.fake.updates.pop(0), bot.fake.updates.pop(0)]  # fetched and confirmed by the dead process
    async with await Store.open(tmp_path / "bot.db") as store:
        await store.updates.receive([Received(u["update_id"], json.dumps(u)) for u in taken])
        assert await store.updates.claim(taken[1]["update_id"])
    await bot.start()
    welcome = await alice.reply_after(fresh)
    assert welcome.body == first.body
    await bot.settle()
    await asyncio.sleep(0.5)  # room for a late answer to /help or a second welcome, if there were one
    await bot.stop()
    replies = [m for m in bot.fake.sent_messages(alice.chat.id) if m.message_id > cut_off.message_id]
    assert [m.message_id for m in replies] == [welcome.message_id], bot.fake.transcript(alice.chat.id)
    async with await Store.open(tmp_path / "bot.db") as store:
        assert await store.updates.states() == {"handled": 2, "started": 1}


async def _kill_in_handler(
    fake: FakeTelegram, method: str, seen: int, bot: asyncio.subprocess.Process
) -> None:
    """SIGKILL once the handler called `method` (answered late: the handler is waiting in it), the
    `seen`+1-th call of it."""
    await fake.wait_for(lambda: len(fake.calls_to(method)) > seen or None, WAIT)
    bot.kill()
    await bot.wait()


@pytest.mark.slow
async def test_a_bot_killed_inside_an_anime_handler_makes_the_portrait_once_after_restart(
    tmp_path: Path,
) -> None:
    """A photo captioned /anime is replay-safe: the kill lands while its handler checks the photo (its
    update claimed, no task yet). The restarted process (same WORKER_ID) handles it again: one task, one
    unit reserved, one submit, one portrait."""
    fake = FakeTelegram(token=TOKEN)
    alice = fake.add_user(1001, "Alice", "alice")
    chat = fake.private_chat(alice)
    db = tmp_path / "bot.db"
    config = EmulatorConfig(access_key="AKP", secret_key="SKP", queue_seconds=0.0, generate_seconds=0.0)
    with serve_in_thread(config) as emulator:
        async with serve(fake) as url:
            env = _bot_env(url, emulator.base_url, db)
            first = await _start_bot(env, tmp_path)
            try:
                await _selfie(fake, alice, chat)
                fake.answer_late("getFile", 120)  # the handler's photo check waits there: killed in it
                request = fake.send_photo(alice, chat, draw_selfie(), caption="/anime smiling")
                await _kill_in_handler(fake, "getFile", len(fake.calls_to("getFile")), first)
            finally:
                if first.returncode is None:
                    first.kill()
            async with await Store.open(db) as store:
                assert await store.updates.states() == {"handled": 1, "started": 1}
                assert await store.tasks.recent_for_user(alice.id) == []  # cut off before the task
            portraits = await _portraits_after_restart(await _start_bot(env, tmp_path), fake, chat, request)
    assert portraits == 1
    assert emulator.state.submits_received == 1
    await _one_task_done(db, alice.id)
    async with await Store.open(db) as store:
        assert await store.updates.states() == {"handled": 2}


@pytest.mark.slow
async def test_an_admin_grant_cut_off_by_a_kill_is_not_granted_again_after_restart(tmp_path: Path) -> None:
    """Not replay-safe: the kill lands while the grant's answer is on its way (the credits stored). The
    restarted process leaves that update alone: granted once, answered once."""
    fake = FakeTelegram(token=TOKEN)
    admin, bob = fake.add_user(1001, "Ann", "ann"), fake.add_user(1002, "Bob", "bob")
    admin_chat, bob_chat = fake.private_chat(admin), fake.private_chat(bob)
    db = tmp_path / "bot.db"
    config = EmulatorConfig(access_key="AKP", secret_key="SKP", queue_seconds=0.0, generate_seconds=0.0)
    with serve_in_thread(config) as emulator:
        async with serve(fake) as url:
            env = {**_bot_env(url, emulator.base_url, db), "ADMIN_IDS": str(admin.id)}
            first = await _start_bot(env, tmp_path)
            try:
                hello = fake.send_text(bob, bob_chat, "/start")
                await fake.wait_for_message(bob_chat, after=hello.message_id, timeout=30)
                fake.answer_late("sendMessage", 120)  # the grant's answer: sent, its handler waits
                grant = fake.send_text(admin, admin_chat, f"/grant {bob.id} 5")
                await _kill_in_handler(fake, "sendMessage", len(fake.calls_to("sendMessage")), first)
            finally:
                if first.returncode is None:
                    first.kill()
            second = await _start_bot(env, tmp_path)
            try:
                probe = fake.send_text(admin, admin_chat, "/help")  # handled after any start-up replay
                await fake.wait_for_message(admin_chat, after=probe.message_id, timeout=30)
                await asyncio.sleep(0.5)  # room for a late second answer to the grant, if there were one
            finally:
                second.send_signal(signal.SIGTERM)
                await asyncio.wait_for(second.wait(), 30)
    answers = [
        m for m in fake.sent_messages(admin_chat.id) if grant.message_id < m.message_id < probe.message_id
    ]
    assert len(answers) == 1, fake.transcript(admin_chat.id)
    async with await Store.open(db) as store:
        assert (await store.quotas.balance(bob.id)).credits == 5
        assert await store.updates.states() == {"handled": 2, "started": 1}
