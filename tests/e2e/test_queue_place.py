"""Waiting in line through the fake Bot API: the first status message says the place and the wait."""

from __future__ import annotations

from bot.jobs.announcer import DEFAULT_GENERATION_SECONDS, rough_minutes
from bot.replies import t
from storage import TaskState
from tests.e2e.conftest import HarnessFactory
from tests.e2e.images import draw_selfie


async def test_a_request_behind_a_full_upstream_is_told_its_place(make_harness: HarnessFactory) -> None:
    harness = await make_harness(max_concurrent_tasks=1)
    harness.set_timings(generate=600)
    alice, bob = harness.person(), harness.person(1002, "Bob")
    await alice.photo(draw_selfie(), caption="/anime", expect=t("status.queued", "en", elapsed=0))
    await harness.until_state(alice, TaskState.SUBMITTED)

    # The only slot is taken: Bob is first in line and waits for Alice's generation, then his own.
    minutes = rough_minutes(2 * DEFAULT_GENERATION_SECONDS)
    await bob.photo(
        draw_selfie(), caption="/anime", expect=t("status.queued_place", "en", position=1, minutes=minutes)
    )
    (waiting,) = await harness.services.store.tasks.active_for_user(1002)
    assert waiting.state is TaskState.QUEUED

    harness.emulator_time.advance(700)  # Alice's portrait is done: Bob's request starts
    await harness.until_state(bob, TaskState.SUBMITTED)
    await harness.until_state(alice, TaskState.DONE)
