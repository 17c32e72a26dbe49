"""The per-sender update budget through the fake Telegram: a burst is answered, then one "slow down", then
silence until the budget refills; button taps are still answered; owners are exempt; nothing is charged."""

from __future__ import annotations

from bot.handlers.flood import FloodGuard
from fake_telegram import FakeMessage
from tests.e2e.conftest import WAIT, Harness, HarnessFactory, Person, says
from tests.e2e.images import draw_selfie

RATE, BURST = 6.0, 3  # one update every 10 s, three at once


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def limited(make_harness: HarnessFactory, **settings: object) -> tuple[Harness, Clock]:
    """A bot with the budget on, on a clock the test moves."""
    harness = await make_harness(user_rate_limit=RATE, user_rate_burst=BURST, **settings)
    clock = Clock()
    harness.services.flood = FloodGuard(RATE, BURST, clock=clock)
    return harness, clock


def after(person: Person, sent: FakeMessage) -> list[FakeMessage]:
    return [m for m in person.sent() if m.message_id > sent.message_id]


async def test_a_flood_gets_one_slow_down_then_silence(make_harness: HarnessFactory) -> None:
    harness, clock = await limited(make_harness)
    alice = harness.person()
    first = None
    for _ in range(BURST):
        reply = await alice.say("/quota")
        first = first or reply
        assert reply.body.startswith("Free portraits left today: 3 of 3")
    warned = await alice.say("/quota", says("flood.slow_down", seconds=10))
    silenced = [harness.fake.send_text(alice.user, alice.chat, "/quota") for _ in range(5)]
    clock.now = 10.0
    probe = await alice.say("/help")
    assert after(alice, warned) == [probe]  # the five after the warning got nothing
    assert all(m.message_id < probe.message_id for m in silenced)
    balance = await harness.services.store.quotas.balance(alice.user.id)
    assert (balance.free_left, balance.credits) == (3, 0)


async def test_refused_photos_are_never_downloaded(make_harness: HarnessFactory) -> None:
    harness, _ = await limited(make_harness)
    alice = harness.person()
    for _ in range(BURST):
        await alice.photo(draw_selfie(), expect=says("face.saved"))
    last = await alice.photo(draw_selfie(), expect=says("flood.slow_down", seconds=10))
    for _ in range(3):
        harness.fake.send_photo(alice.user, alice.chat, draw_selfie())
    await harness.fake.wait_for(lambda: not harness.fake.updates or None, WAIT)
    assert len(harness.fake.calls_to("getFile")) == BURST
    assert after(alice, last) == []


async def test_taps_over_budget_are_answered_with_a_toast(make_harness: HarnessFactory) -> None:
    harness, _ = await limited(make_harness)
    alice = harness.person()
    screen = await alice.say("/settings")
    await alice.tap(screen, "menu:size")
    await alice.tap(screen, "set:size:portrait")  # the budget of three is spent
    data = screen.buttons[0][0][1] or ""
    edits = len(screen.history)
    answers = [await alice.click(screen, data) for _ in range(2)]
    expected = alice.text("flood.slow_down_button", seconds=10)
    assert [a["text"] for a in answers] == [expected, expected]
    assert len(screen.history) == edits  # nothing changed


async def test_owners_are_never_limited(make_harness: HarnessFactory) -> None:
    harness, _ = await limited(make_harness, admin_ids=frozenset({1001}))
    owner = harness.person(1001, "Olga")
    for _ in range(BURST * 3):
        assert (await owner.say("/quota")).body.startswith("Free portraits left today")
