"""The durable inbox of one process (bot/ops/inbox.py) on a real store: what is queued, what is replayed,
what is marked handled. No Application: its update queue is a plain queue the test reads."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dtm
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from telegram import Bot, Chat, Message, Update, User

from bot.ops.inbox import STALE_SECONDS, Inbox
from storage import Store
from tests.storage.conftest import FakeClock

TOKEN = "123456:INBOX-unit-test-token"
SENT_AT = dtm.datetime(2026, 12, 6, tzinfo=dtm.UTC)


def _message_update(update_id: int, text: str) -> Update:
    user = User(id=7, first_name="Ann", is_bot=False)
    message = Message(
        message_id=update_id, date=SENT_AT, text=text,
        chat=Chat(id=7, type="private"), from_user=user,
    )  # fmt: skip
    return Update(update_id=update_id, message=message)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def store(tmp_path: Path, clock: FakeClock) -> AsyncIterator[Store]:
    async with await Store.open(tmp_path / "bot.db", clock=clock) as s:
        yield s


@contextlib.asynccontextmanager
async def process(store: Store) -> AsyncIterator[tuple[Inbox, asyncio.Queue[object]]]:
    """One process's inbox, opened (start-up replay included) and closed as post_init/post_stop do."""
    queue: asyncio.Queue[object] = asyncio.Queue()
    inbox = Inbox()
    inbox.attach(Bot(TOKEN), queue)
    await inbox.open(store)
    try:
        yield inbox, queue
    finally:
        await inbox.close()


def _drain(queue: asyncio.Queue[object]) -> list[Update]:
    items = []
    while not queue.empty():
        item = queue.get_nowait()
        assert isinstance(item, Update)
        items.append(item)
    return items


async def test_a_polled_batch_is_stored_then_queued_and_a_redelivery_is_not_queued_twice(
    store: Store,
) -> None:
    async with process(store) as (inbox, queue):
        batch = [_message_update(1, "/start"), _message_update(2, "/anime a cat")]
        await inbox.receive(batch)
        assert [u.update_id for u in _drain(queue)] == [1, 2]
        assert await store.updates.states() == {"received": 2}
        await inbox.receive(batch)  # fetched again (not confirmed yet): still queued here, not again
        assert _drain(queue) == []


async def test_what_a_stopped_process_received_is_replayed_as_it_came(store: Store, clock: FakeClock) -> None:
    """The poller stored a batch and died before its handlers claimed it: the next process to start queues
    the same updates, text and sender included; one whose handler had started is left alone. A running
    process takes over rows only once they are stale (their receiver may still be about to claim them)."""
    async with process(store) as (dead, _):
        await dead.receive([_message_update(1, "/anime a cat"), _message_update(2, "/help")])
        assert await dead.claim(2)  # its handler started, then the process died: never replayed
    async with process(store) as (alive, queue):
        (update,) = _drain(queue)
        assert update.update_id == 1 and update.message is not None and update.message.from_user is not None
        assert (update.message.text, update.message.from_user.first_name) == ("/anime a cat", "Ann")
        assert update.message.date == SENT_AT
        assert await alive.replay(older_than=0) == 0  # queued here already
        assert await alive.claim(1) is True
        async with process(store) as (other, _):
            await other.receive([_message_update(3, "/start")])
            assert await alive.replay() == 0
            clock.advance(STALE_SECONDS)
            assert await alive.replay() == 1
            assert [u.update_id for u in _drain(queue)] == [3]
            assert await alive.claim(3) is True and await other.claim(3) is False
    assert await store.updates.states() == {"started": 3}


async def test_handled_is_marked_with_the_next_claim_or_at_the_close(store: Store) -> None:
    async with process(store) as (inbox, queue):
        await inbox.receive([_message_update(n, "/start") for n in (1, 2, 3)])
        first, second, _ = _drain(queue)
        assert await inbox.claim(1) and await inbox.claim(2)
        inbox.finished(first)
        assert await store.updates.states() == {"received": 1, "started": 2}  # no commit of its own
        assert await inbox.claim(3)
        assert await store.updates.states() == {"handled": 1, "started": 2}
        inbox.finished(second)
    assert await store.updates.states() == {"handled": 2, "started": 1}  # close() wrote the last mark
