"""The durable inbox of one process (bot/ops/inbox.py) on a real store: what is queued, what is replayed,
what is marked handled. No Application: its update queue is a plain queue the test reads."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dtm
import json
from collections.abc import AsyncIterator, Collection
from pathlib import Path

import pytest
from telegram import Bot, Chat, Message, MessageEntity, PhotoSize, Update, User

from bot.ops.dedupe import replay_safe
from bot.ops.inbox import STALE_SECONDS, Claimers, Inbox
from storage import Store
from tests.storage.conftest import FakeClock

TOKEN = "123456:INBOX-unit-test-token"
SENT_AT = dtm.datetime(2026, 12, 6, tzinfo=dtm.UTC)


def _message_update(update_id: int, text: str) -> Update:
    user = User(id=7, first_name="Ann", is_bot=False)
    command = text.split(" ")[0]
    entities = [MessageEntity(MessageEntity.BOT_COMMAND, 0, len(command))] if text.startswith("/") else []
    message = Message(
        message_id=update_id, date=SENT_AT, text=text, entities=entities,
        chat=Chat(id=7, type="private"), from_user=user,
    )  # fmt: skip
    return Update(update_id=update_id, message=message)


def _fetched(updates: list[Update]) -> list[tuple[Update, str]]:
    """A getUpdates batch as the poller hands it over: each update, and its JSON as Telegram sent it."""
    return [(update, json.dumps(update.to_dict())) for update in updates]


def _photo_update(update_id: int, caption: str | None, album: str | None = None) -> Update:
    photo = PhotoSize("file-1", "unique-1", 640, 640)
    entities = [MessageEntity(MessageEntity.BOT_COMMAND, 0, len(caption.split(" ")[0]))] if caption else []
    message = Message(
        message_id=update_id, date=SENT_AT, photo=(photo,), caption=caption, caption_entities=entities,
        media_group_id=album, chat=Chat(id=7, type="private"), from_user=User(id=7, first_name="Ann",
        is_bot=False),
    )  # fmt: skip
    return Update(update_id=update_id, message=message)


class Workers:
    """Claimers for one process of `me`, and which worker ids the test says are alive."""

    def __init__(self) -> None:
        self.alive: set[str] = set()
        self.asked: list[set[str]] = []

    def of(self, me: str, *, exclusive: bool = True) -> Claimers:
        async def running(ids: Collection[str]) -> set[str]:
            self.asked.append(set(ids))
            return self.alive & set(ids)

        return Claimers(me, lambda: exclusive, running)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def store(tmp_path: Path, clock: FakeClock) -> AsyncIterator[Store]:
    async with await Store.open(tmp_path / "bot.db", clock=clock) as s:
        yield s


@contextlib.asynccontextmanager
async def process(
    store: Store, claimers: Claimers | None = None
) -> AsyncIterator[tuple[Inbox, asyncio.Queue[object]]]:
    """One process's inbox, opened (start-up replay included) and closed as post_init/post_stop do."""
    queue: asyncio.Queue[object] = asyncio.Queue()
    inbox = Inbox(claimers)
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
        await inbox.receive(_fetched(batch))
        assert [u.update_id for u in _drain(queue)] == [1, 2]
        assert await store.updates.states() == {"received": 2}
        await inbox.receive(_fetched(batch))  # fetched again (not confirmed): not queued twice
        assert _drain(queue) == []


async def test_what_a_stopped_process_received_is_replayed_as_it_came(store: Store, clock: FakeClock) -> None:
    """The poller stored a batch and died before its handlers claimed it: the next process to start queues
    the same updates, text and sender included; one whose handler had started is left alone. A running
    process takes over rows only once they are stale (their receiver may still be about to claim them)."""
    async with process(store) as (dead, _):
        await dead.receive(_fetched([_message_update(1, "/anime a cat"), _message_update(2, "/help")]))
        assert await dead.claim(2)  # its handler started, then the process died: never replayed
    async with process(store) as (alive, queue):
        (update,) = _drain(queue)
        assert update.update_id == 1 and update.message is not None and update.message.from_user is not None
        assert (update.message.text, update.message.from_user.first_name) == ("/anime a cat", "Ann")
        assert update.message.date == SENT_AT
        assert await alive.replay(older_than=0) == 0  # queued here already
        assert await alive.claim(1) is True
        async with process(store) as (other, _):
            await other.receive(_fetched([_message_update(3, "/start")]))
            assert await alive.replay() == 0
            clock.advance(STALE_SECONDS)
            assert await alive.replay() == 1
            assert [u.update_id for u in _drain(queue)] == [3]
            assert await alive.claim(3) is True and await other.claim(3) is False
    assert await store.updates.states() == {"started": 3}


async def test_what_a_receiver_with_a_clock_ahead_left_is_replayed_at_the_next_start(
    tmp_path: Path, store: Store, clock: FakeClock
) -> None:
    """The receiver's wall clock was ahead (stepped forward, or another host's) when it stored a batch and
    died before claiming it: the rows carry a time in the next process's future. Its start-up replay takes
    every unclaimed row all the same; comparing times would leave them until its own clock passed theirs
    (the crash soak lost an /anime so when a stepped worker restarted with a true clock)."""
    ahead = FakeClock(clock.now() + 30)
    async with await Store.open(tmp_path / "bot.db", clock=ahead) as skewed, process(skewed) as (dead, _):
        await dead.receive(_fetched([_message_update(1, "/anime a cat")]))
    async with process(store) as (restarted, queue):
        assert [u.update_id for u in _drain(queue)] == [1]
        assert await restarted.claim(1) is True


async def test_handled_is_marked_with_the_next_claim_or_at_the_close(store: Store) -> None:
    async with process(store) as (inbox, queue):
        await inbox.receive(_fetched([_message_update(n, "/start") for n in (1, 2, 3)]))
        first, second, _ = _drain(queue)
        assert await inbox.claim(1) and await inbox.claim(2)
        await inbox.finished(first)
        assert await store.updates.states() == {"received": 1, "started": 2}  # no commit of its own
        assert await inbox.claim(3)
        assert await store.updates.states() == {"handled": 1, "started": 2}
        await inbox.finished(second)
    assert await store.updates.states() == {"handled": 2, "started": 1}  # close() wrote the last mark


async def test_a_replay_safe_update_is_marked_handled_as_soon_as_its_handlers_are_done(
    store: Store, clock: FakeClock
) -> None:
    """An /anime refused (no units left) and then cut off by a kill must not come back as a task later:
    its handled mark is written when its handlers end, not with the next claim, so a restart finds nothing
    of it to replay."""
    workers = Workers()
    async with process(store, workers.of("w-a")) as (inbox, queue):
        await inbox.receive(_fetched([_message_update(1, "/anime a cat")]))
        (update,) = _drain(queue)
        assert await inbox.claim(1, replayable=True)
        await inbox.finished(update)
        assert await store.updates.states() == {"handled": 1}  # before any other claim or the close
    async with process(store, workers.of("w-a")) as (_, queue):
        assert _drain(queue) == []


def test_replay_safe_kinds_are_generate_requests_and_captioned_uploads_only() -> None:
    """The rule in bot/ops/dedupe.py: what is handled again after a kill cut its handler off."""
    assert replay_safe(_message_update(1, "/anime a cat"))
    assert replay_safe(_message_update(1, "/generate@PortraitBot"))
    assert replay_safe(_photo_update(1, "/anime smiling"))
    assert replay_safe(_photo_update(1, "/style"))
    for unsafe in ("/grant 7 5", "/buy", "/forgetme", "/cancel", "/start", "a cat /anime", "anime"):
        assert not replay_safe(_message_update(1, unsafe)), unsafe
    assert not replay_safe(_photo_update(1, None))  # its slot may come from a /style the dead process held
    assert not replay_safe(_photo_update(1, "/anime", album="a1"))  # albums are collected in memory
    edited = _message_update(1, "/anime")
    assert not replay_safe(Update(update_id=1, edited_message=edited.message))


async def test_a_dead_claimers_replay_safe_update_is_replayed_and_nothing_else(
    store: Store, clock: FakeClock
) -> None:
    """Killed mid-handler: the same WORKER_ID restarting (holding its lock) replays its replay-safe update
    at once; the unsafe one stays cut off; without the lock it replays nothing of its own."""
    workers = Workers()
    async with process(store, workers.of("w-a")) as (dead, queue):
        await dead.receive(_fetched([_message_update(1, "/anime a cat"), _message_update(2, "/grant 8 5")]))
        assert _drain(queue) and await dead.claim(1, replayable=True) and await dead.claim(2)
    async with process(store, workers.of("w-a", exclusive=False)) as (unsure, queue):
        assert _drain(queue) == [] and await unsure.replay(older_than=0) == 0
    async with process(store, workers.of("w-a")) as (restarted, queue):
        (update,) = _drain(queue)
        assert update.update_id == 1 and update.message is not None and update.message.text == "/anime a cat"
        assert await restarted.claim(1, replayable=True) is True
        await restarted.finished(update)
    assert workers.asked == []  # its own id: no question asked
    assert await store.updates.states() == {"started": 1, "handled": 1}
    assert await store.updates.cut_off(older_than=0) == []  # handled: the update is gone from the inbox


async def test_another_workers_cut_off_update_is_taken_only_once_stale_and_that_worker_is_gone(
    store: Store, clock: FakeClock
) -> None:
    workers = Workers()
    workers.alive = {"w-b"}
    async with process(store, workers.of("w-b")) as (other, queue):
        await other.receive(_fetched([_message_update(1, "/anime a cat")]))
        assert _drain(queue) and await other.claim(1, replayable=True)  # its handler is still running
        async with process(store, workers.of("w-a")) as (this, mine):
            assert _drain(mine) == [] and workers.asked == []  # not stale: nobody asked
            clock.advance(STALE_SECONDS)
            assert await this.replay() == 0 and _drain(mine) == []  # stale, but w-b is alive
            assert workers.asked == [{"w-b"}]
            workers.alive = set()  # w-b died
            assert await this.replay() == 1
            (update,) = _drain(mine)
            assert update.update_id == 1 and await this.claim(1, replayable=True)
            assert await this.replay() == 0  # its own claim now: never taken from itself
