"""FloodGuard: a token bucket per sender on an injected clock: burst, refill, one warning, then silence."""

from __future__ import annotations

import pytest

from bot.handlers.flood import PRUNE_ABOVE, FloodGuard, Verdict


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_a_burst_passes_then_one_warning_then_silence(clock: Clock) -> None:
    guard = FloodGuard(6, 3, clock=clock)  # one token every 10 s, three at once
    verdicts = [guard.take(1) for _ in range(6)]
    assert verdicts == [Verdict.ALLOWED] * 3 + [Verdict.WARN, Verdict.SILENT, Verdict.SILENT]
    assert guard.wait_seconds(1) == 10


def test_tokens_come_back_at_the_rate_and_a_new_flood_is_warned_again(clock: Clock) -> None:
    guard = FloodGuard(6, 3, clock=clock)
    for _ in range(4):
        guard.take(1)
    clock.now = 9.0
    assert guard.take(1) is Verdict.SILENT and guard.wait_seconds(1) == 1
    clock.now = 10.0
    assert guard.take(1) is Verdict.ALLOWED  # one token after 10 s
    assert guard.take(1) is Verdict.WARN  # a new episode: told again
    clock.now = 1_000.0
    assert [guard.take(1) for _ in range(4)] == [Verdict.ALLOWED] * 3 + [Verdict.WARN]  # never above burst


def test_senders_have_their_own_buckets(clock: Clock) -> None:
    guard = FloodGuard(6, 1, clock=clock)
    assert (guard.take(1), guard.take(2), guard.take(1)) == (Verdict.ALLOWED, Verdict.ALLOWED, Verdict.WARN)


def test_a_zero_rate_turns_the_limit_off(clock: Clock) -> None:
    guard = FloodGuard(0, 1, clock=clock)
    assert not guard.enabled
    assert {guard.take(1) for _ in range(100)} == {Verdict.ALLOWED}


def test_full_buckets_are_forgotten_when_many_senders_are_tracked(clock: Clock) -> None:
    guard = FloodGuard(60, 2, clock=clock)
    for key in range(PRUNE_ABOVE):
        guard.take(key)
    guard.take(-1)
    guard.take(-1)
    guard.take(-1)  # over budget: must be remembered
    clock.now = 1.5  # everyone else is full again; -1 has 1.5 of 2 tokens
    guard.take(-2)
    assert len(guard._buckets) == 2
    assert (guard.take(-1), guard.take(-1)) == (Verdict.ALLOWED, Verdict.WARN)
