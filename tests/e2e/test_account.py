"""/quota, /history and /cancel: what the user has, what they did, and stopping a running portrait."""

from __future__ import annotations

from bot.replies import t
from storage import TaskState
from tests.e2e.conftest import Harness, Person, is_photo, says
from tests.e2e.images import draw_selfie


async def test_quota_shows_free_left_credits_and_the_reset_time(harness: Harness, alice: Person) -> None:
    await alice.say("/help")
    await harness.services.store.quotas.grant(alice.user.id, 5, actor=0, reason="test")
    reply = await alice.say("/quota")
    first_lines = t("quota.text", "en", free_left=3, daily=3, credits=5, resets="").rsplit("\n", 1)[0]
    assert reply.body.startswith(first_lines)
    assert "00:00 (UTC)" in reply.body


async def test_history_lists_generations_newest_first(harness: Harness, alice: Person) -> None:
    await alice.say("/history", says("history.empty"))
    await alice.photo(draw_selfie(), expect=says("face.saved"))
    await alice.say("/anime", is_photo)
    await harness.settle()
    await alice.say("/anime something risky", says("error.risk.input_text"))
    await harness.settle()
    reply = await alice.say("/history")
    lines = reply.body.splitlines()
    assert lines[0] == t("history.text", "en", lines="").strip()
    assert lines[1].startswith("#2 ") and lines[1].endswith(t("state.failed", "en"))
    assert lines[2].startswith("#1 ") and lines[2].endswith(t("state.done", "en"))


async def test_cancel_stops_the_running_portrait_and_refunds(harness: Harness, alice: Person) -> None:
    harness.set_timings(generate=600)
    await alice.photo(draw_selfie(), expect=says("face.saved"))
    await alice.say("/anime")
    await harness.until_state(alice, TaskState.POLLING)
    assert (await harness.services.store.quotas.balance(alice.user.id)).free_left == 2
    await alice.say("/cancel", says("job.cancelled"))
    task = await harness.until_state(alice, TaskState.CANCELLED)
    assert task.error_code is not None
    assert (await harness.services.store.quotas.balance(alice.user.id)).free_left == 3
    await alice.say("/cancel", says("cancel.nothing"))
    assert not [m for m in alice.sent() if m.photo]
