"""/quota, /history and /cancel: what the user has, what they did, and stopping a running portrait."""

from __future__ import annotations

import asyncio

from bot.replies import t
from storage import RetryReason, TaskState
from tests.e2e.conftest import Harness, HarnessFactory, Person, is_photo, says
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


async def test_cancel_after_the_service_started_counts_and_the_portrait_still_arrives(
    harness: Harness, alice: Person
) -> None:
    """Once the service accepted the portrait it bills it: /cancel says so, nothing is refunded, and the
    portrait arrives (so /anime + /cancel in a loop gets nothing for free)."""
    harness.set_timings(generate=600)
    await alice.photo(draw_selfie(), expect=says("face.saved"))
    await alice.say("/anime")
    await harness.until_state(alice, TaskState.SUBMITTED)  # polled while submitted
    assert (await harness.services.store.quotas.balance(alice.user.id)).free_left == 2
    await alice.say("/cancel", says("cancel.started"))
    harness.emulator_time.advance(700)  # the service finishes it
    task = await harness.until_state(alice, TaskState.DONE)
    assert task.reservation == "committed"
    assert (await harness.services.store.quotas.balance(alice.user.id)).free_left == 2
    await harness.settle()
    assert [m for m in alice.sent() if m.photo]


async def test_cancel_before_the_service_took_it_stops_and_refunds(make_harness: HarnessFactory) -> None:
    harness = await make_harness()
    harness.emulator_state.faults.rate_429 = 1.0  # every submit refused: it waits to be sent again
    alice = harness.person()
    await alice.photo(draw_selfie(), expect=says("face.saved"))
    await alice.say("/anime")
    task = await harness.until_state(alice, TaskState.SUBMITTING)
    for _ in range(500):  # the client's own retries give up, the runner marks it safe to resend
        stored = await harness.services.store.tasks.get(task.id)
        if stored is not None and stored.retry_reason is RetryReason.RATE_LIMITED:
            break
        await asyncio.sleep(0.02)
    assert stored is not None and stored.retry_reason is RetryReason.RATE_LIMITED
    await alice.say("/cancel", says("job.cancelled"))
    task = await harness.until_state(alice, TaskState.CANCELLED)
    assert (await harness.services.store.quotas.balance(alice.user.id)).free_left == 3
    await alice.say("/cancel", says("cancel.nothing"))
    assert not [m for m in alice.sent() if m.photo]
