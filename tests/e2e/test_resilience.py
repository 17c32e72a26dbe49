"""What must hold when things go wrong: restarts, users who block the bot, Telegram's 429, bugs, bans."""

from __future__ import annotations

import pytest

from bot.replies import t
from storage import TaskState
from tests.e2e.conftest import ADMIN_CHAT, Harness, Person, is_photo, says
from tests.e2e.images import draw_selfie


async def start_slow_task(harness: Harness, alice: Person) -> None:
    """A generation the emulator finishes only when the test moves its clock."""
    harness.set_timings(generate=600)
    await alice.photo(draw_selfie(), expect=says("face.saved"))
    await alice.say("/anime")
    await harness.until_state(alice, TaskState.SUBMITTED)  # polled while submitted


def photos(person: Person) -> list[object]:
    return [m for m in person.sent() if m.photo]


async def test_restart_mid_generation_delivers_exactly_once(harness: Harness, alice: Person) -> None:
    await start_slow_task(harness, alice)
    await harness.stop()  # SIGTERM: the runner stops, the task stays in the database
    harness.emulator_time.advance(700)  # meanwhile the service finished it
    await harness.start()  # a new process on the same database resumes the task
    await harness.fake.wait_for_message(alice.chat, is_photo, timeout=10)
    task = await harness.until_state(alice, TaskState.DONE)
    await harness.settle()
    assert len(photos(alice)) == 1
    assert harness.emulator_state.submits_received == 1  # polled again, never resubmitted
    assert (await harness.services.store.quotas.balance(alice.user.id)).free_left == 2
    assert task.result_file_id is not None


async def test_user_who_blocked_the_bot_is_left_alone_and_the_billed_unit_stays_spent(
    harness: Harness, alice: Person
) -> None:
    """Blocking the bot while the service makes the portrait must not refund it (a free billed portrait
    per block and unblock); nothing more is sent there."""
    await start_slow_task(harness, alice)
    harness.fake.block(alice.chat.id)
    harness.emulator_time.advance(700)
    task = await harness.until_state(alice, TaskState.FAILED)
    await harness.settle()
    assert task.error_code == "blocked" and task.reservation == "committed"
    assert (await harness.services.store.quotas.balance(alice.user.id)).free_left == 2
    refused = [call for call in harness.fake.calls if call.chat_id == alice.chat.id and not call.ok]
    assert [call.status for call in refused] == [403]  # the first refusal ends it: nothing is retried
    assert photos(alice) == []


async def test_telegram_429_is_retried_after_retry_after(harness: Harness, alice: Person) -> None:
    harness.fake.rate_limit("sendMessage", times=1, retry_after=1)
    reply = await alice.say("/help")
    assert reply.body == t("help.text", "en", max_prompt=harness.services.settings.max_prompt_length)
    statuses = [call.status for call in harness.fake.calls_to("sendMessage", chat_id=alice.chat.id)]
    assert statuses == [429, 200]


async def test_an_unexpected_error_gets_an_apology_and_an_admin_alert(
    harness: Harness, alice: Person, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(user_id: int) -> None:
        raise RuntimeError("internal detail the user must not see")

    monkeypatch.setattr(harness.services.store.quotas, "balance", broken)
    reply = await alice.say("/quota")
    assert reply.body == t("error.unexpected", "en")
    alert = await harness.fake.wait_for_message(ADMIN_CHAT, "RuntimeError")
    assert "internal detail" not in alert.body
    assert all("internal detail" not in m.body for m in alice.sent())


async def test_a_banned_user_gets_one_clear_message_and_nothing_else(harness: Harness, alice: Person) -> None:
    await alice.photo(draw_selfie(), expect=says("face.saved"))
    await harness.services.store.users.ban(alice.user.id, actor=0, reason="spam")
    before = len(alice.sent())
    reply = await alice.say("/anime")
    assert reply.body == t("banned", "en")
    await alice.say("/start", says("banned"))
    await harness.settle()
    assert len(alice.sent()) == before + 2
    assert await harness.services.store.tasks.recent_for_user(alice.user.id) == []


async def test_a_reply_refused_with_403_is_not_retried_nor_reported(harness: Harness, alice: Person) -> None:
    request = harness.fake.send_text(alice.user, alice.chat, "/help")
    await alice.reply_after(request)
    harness.fake.block(alice.chat.id)
    harness.fake.push_update("message", request.to_json())  # an update still in flight when they blocked us
    await harness.fake.wait_for(
        lambda: harness.fake.calls_to("sendMessage", chat_id=alice.chat.id, ok=False) or None, 10
    )
    bob = harness.person(1002, "Bob")
    await bob.say("/help")  # the error handler for Alice's update has had its turn
    refused = harness.fake.calls_to("sendMessage", chat_id=alice.chat.id, ok=False)
    assert [call.status for call in refused] == [403]
    assert harness.fake.sent_messages(ADMIN_CHAT) == []
