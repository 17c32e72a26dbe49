"""Pacing the bot's messages per chat, and the group limits left to PTB's AIORateLimiter.

The pacer waits with a FakeClock: no test sleeps. The AIORateLimiter test checks the limiter the real
Application is built with (bot.app), by what it lets through, so a change to its configuration shows.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from api_client.clock import FakeClock
from bot.app import build_application
from bot.chat.pacing import BURST, ChatPacer, is_group_chat, status_interval
from bot.config import Secret, Settings

GROUP, OTHER_GROUP, PRIVATE = -100123, -100456, 42


async def send_times(pacer: ChatPacer, clock: FakeClock, chats: list[int]) -> list[tuple[int, float]]:
    """Start one send per entry at once; return (chat, fake time) in the order the sends happened."""
    sent: list[tuple[int, float]] = []

    async def send(chat_id: int) -> None:
        async with pacer.turn(chat_id):
            sent.append((chat_id, clock.monotonic()))
            await asyncio.sleep(0)  # a real send yields: the next turn must still wait for this one

    await asyncio.gather(*(send(chat_id) for chat_id in chats))
    return sent


async def test_a_burst_goes_at_once_then_one_message_per_interval() -> None:
    clock = FakeClock()
    pacer = ChatPacer(1.0, clock=clock)
    sent = await send_times(pacer, clock, [GROUP] * (BURST + 3))
    assert [at for _, at in sent] == pytest.approx([0.0] * BURST + [1.0, 2.0, 3.0])


async def test_the_budget_comes_back_while_the_chat_is_quiet() -> None:
    clock = FakeClock()
    pacer = ChatPacer(2.0, clock=clock)
    await send_times(pacer, clock, [GROUP] * BURST)
    clock.advance(2.0)  # one message's worth
    sent = await send_times(pacer, clock, [GROUP, GROUP])
    assert [at for _, at in sent] == pytest.approx([2.0, 4.0])


async def test_chats_are_paced_independently_and_in_order_of_arrival() -> None:
    clock = FakeClock()
    pacer = ChatPacer(1.0, burst=1, clock=clock)
    sent = await send_times(pacer, clock, [GROUP, PRIVATE, GROUP, OTHER_GROUP])
    assert [chat for chat, _ in sent][:2] == [GROUP, PRIVATE]
    assert dict((chat, at) for chat, at in sent if chat != GROUP) == {PRIVATE: 0.0, OTHER_GROUP: 0.0}
    assert [at for chat, at in sent if chat == GROUP] == pytest.approx([0.0, 1.0])


async def test_a_turn_cancelled_while_waiting_costs_nothing_and_blocks_nobody() -> None:
    clock = FakeClock()
    pacer = ChatPacer(5.0, burst=1, clock=clock)
    release = asyncio.Event()
    holding = asyncio.Event()

    async def hold() -> None:
        async with pacer.turn(GROUP):
            holding.set()
            await release.wait()

    async def waiter() -> None:
        async with pacer.turn(GROUP):
            raise AssertionError("a cancelled turn must never send")

    first = asyncio.create_task(hold())
    await holding.wait()
    second = asyncio.create_task(waiter())
    await asyncio.sleep(0)
    second.cancel()
    release.set()
    await first
    with pytest.raises(asyncio.CancelledError):
        await second
    sent = await send_times(pacer, clock, [GROUP])  # not stuck behind the cancelled waiter
    assert sent == [(GROUP, pytest.approx(5.0))]  # one interval after the first send, not two


async def test_interval_zero_means_turns_without_waiting() -> None:
    clock = FakeClock()
    sent = await send_times(ChatPacer(0.0, clock=clock), clock, [GROUP] * 10)
    assert {at for _, at in sent} == {0.0} and clock.sleeps == []


def test_groups_get_the_longer_status_interval() -> None:
    assert is_group_chat(GROUP) and not is_group_chat(PRIVATE)
    assert status_interval(GROUP, interval=3.0, group_interval=10.0) == 10.0
    assert status_interval(GROUP, interval=30.0, group_interval=10.0) == 30.0
    assert status_interval(PRIVATE, interval=3.0, group_interval=10.0) == 3.0


async def test_the_application_limits_each_group_to_20_messages_a_minute(tmp_path: Path) -> None:
    """The decision in bot/pacing.py: the per-group limit is AIORateLimiter's, as app.py builds it."""
    settings = Settings(
        telegram_bot_token=Secret("123:abc"), volc_access_key=Secret("a"), volc_secret_key=Secret("s"),
        db_path=tmp_path / "bot.db",
    )
    limiter = build_application(settings).bot.rate_limiter
    assert limiter is not None
    done: list[int] = []

    async def call(chat_id: int) -> Any:
        async def callback() -> bool:
            done.append(chat_id)
            return True

        data = {"chat_id": chat_id, "text": "hi"}
        return await limiter.process_request(callback, (), {}, "sendMessage", data, None)

    for _ in range(20):
        await call(GROUP)
    over = asyncio.create_task(call(GROUP))  # the 21st within the minute waits
    await asyncio.gather(*(call(PRIVATE) for _ in range(5)), call(OTHER_GROUP))
    for _ in range(10):
        await asyncio.sleep(0)
    assert done.count(GROUP) == 20 and not over.done()
    assert done.count(PRIVATE) == 5 and done.count(OTHER_GROUP) == 1  # others are not held up
    over.cancel()
    with pytest.raises(asyncio.CancelledError):
        await over
