"""Upstream limits shared through PostgreSQL (storage/pg_limits.py) and the poller lock (storage/pg_leader.py,
bot/ops/poller.py): several "processes" here are several limiters / locks on one schema, each with its own
connections, as separate processes would have them."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import asyncpg
import httpx
import pytest
from PIL import Image

from api_client import PortraitClient, SubmitRequest
from api_client.emulator import EmulatorConfig, create_app
from api_client.emulator.app import EmulatorState
from api_client.models import TaskStatus
from bot.ops.poller import PollerElection, poller_lock_name
from storage import pg_limits
from storage.pg_leader import PgLeaderLock
from storage.pg_limits import SLOT_LEASE, PgUpstreamLimits
from tests.pg import SERVER_URL


@pytest.fixture
def url(migrated_pg_url: str) -> str:
    return migrated_pg_url


def _jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (256, 256), "red").save(buffer, format="JPEG")
    return buffer.getvalue()


class FakeTime:
    """Wall time that moves only when someone sleeps."""

    def __init__(self) -> None:
        self.t = 1_800_000_000.0

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.t += max(0.0, seconds)
        await asyncio.sleep(0)


async def test_three_processes_never_hold_more_upstream_tasks_than_the_limit(url: str) -> None:
    config = EmulatorConfig(access_key="AK", secret_key="SK", queue_seconds=0.0, generate_seconds=0.1)
    app = create_app(config)
    state: EmulatorState = app.state.emulator
    limits = [
        await PgUpstreamLimits.open(url, qps=500, max_concurrent_tasks=2, holder=f"w{n}") for n in range(3)
    ]
    clients = [
        PortraitClient("AK", "SK", endpoint="http://emulator.test", transport=httpx.ASGITransport(app=app),
                       qps=500, max_concurrent_tasks=2, shared_limits=shared)
        for shared in limits
    ]  # fmt: skip
    face = _jpeg()

    async def one(client: PortraitClient) -> None:
        async with client.task_slot():  # what the runner holds from submit until the result
            task_id = await client.submit(SubmitRequest.from_images(face))
            while (await client.get_result(task_id)).status is not TaskStatus.DONE:  # noqa: ASYNC110
                await asyncio.sleep(0.02)

    try:
        await asyncio.gather(*(one(client) for client in clients for _ in range(4)))
    finally:
        for client, shared in zip(clients, limits, strict=True):
            await client.aclose()
            await shared.aclose()
    assert state.submits_received == 12 and not state.in_flight
    assert state.max_in_flight == 2  # each process alone would have allowed 2, together 6


async def test_the_qps_budget_is_shared_by_every_process(url: str) -> None:
    time = FakeTime()
    limits = [
        await PgUpstreamLimits.open(url, qps=2.0, max_concurrent_tasks=1, holder=f"w{n}", now=time.now,
                                    sleep=time.sleep)
        for n in range(3)
    ]  # fmt: skip
    granted: list[float] = []

    async def draw(shared: PgUpstreamLimits) -> None:
        for _ in range(8):
            await shared.acquire_request()
            granted.append(time.now())

    try:
        await asyncio.gather(*(draw(shared) for shared in limits))
    finally:
        for shared in limits:
            await shared.aclose()
    assert len(granted) == 24
    # A token bucket's promise: in any window of w seconds, at most burst + qps * w tokens (burst = 2).
    for start in granted:
        for w in (0.5, 1.0, 3.0):
            assert sum(start <= t < start + w for t in granted) <= 2 + 2.0 * w + 1e-6


async def test_waiters_of_one_process_take_turns_instead_of_each_asking_the_database(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    draws = 0
    real_take = pg_limits.take

    async def counted_take(*args: Any, **kwargs: Any) -> float | None:
        nonlocal draws
        draws += 1
        return await real_take(*args, **kwargs)

    monkeypatch.setattr(pg_limits, "take", counted_take)
    shared = await PgUpstreamLimits.open(url, qps=50.0, max_concurrent_tasks=1, holder="w1")  # real time
    try:
        for _ in range(50):  # the burst: the bucket starts full
            await shared.acquire_request()
        draws = 0
        await asyncio.gather(*(shared.acquire_request() for _ in range(20)))
    finally:
        await shared.aclose()
    # One token every 20 ms: each grant after the first waits for a refill. Taking turns, a grant costs
    # about two draws (the one that finds the bucket short, the one after the sleep); with every waiter
    # asking on every wake-up it was about one per waiter per refill (180 here before the change).
    assert draws <= 4 * 20  # 36 in a run, 180 before; 4 a grant leaves room for a rounding sliver


async def test_a_dead_holders_places_free_up_when_the_lease_ends_or_it_restarts(url: str) -> None:
    time = FakeTime()
    crashed = await PgUpstreamLimits.open(url, qps=10, max_concurrent_tasks=1, holder="w1", now=time.now)
    slot = crashed.task_slot()
    await slot.__aenter__()  # held, and never given back: the process "dies" with it
    other = await PgUpstreamLimits.open(url, qps=10, max_concurrent_tasks=1, holder="w2", now=time.now,
                                        sleep=time.sleep)  # fmt: skip
    try:
        started = time.now()
        async with other.task_slot():
            assert other.held == {0}
        assert time.now() - started >= SLOT_LEASE  # it waited for the lease to run out
        async with other.task_slot():  # taken again (the dead holder's lease stays expired)
            pass
        await crashed._pool.execute("UPDATE upstream_slots SET holder = 'w1', until = 9e18")
        restarted = await PgUpstreamLimits.open(url, qps=10, max_concurrent_tasks=1, holder="w1")
        async with restarted.task_slot():  # the same WORKER_ID restarting frees what it left at once
            assert restarted.held == {0}
        await restarted.aclose()
    finally:
        await other.aclose()
        crashed._renewer.cancel() if crashed._renewer else None
        await crashed._pool.close()


async def _kill_session(lock: PgLeaderLock) -> None:
    """The server ends the lock's session, as when the connection or the holder's host dies."""
    pid = lock._conn.get_server_pid()
    conn = await asyncpg.connect(SERVER_URL)
    try:
        await conn.execute("SELECT pg_terminate_backend($1)", pid)
    finally:
        await conn.close()


async def test_one_poller_lock_holder_and_another_takes_it_when_its_session_ends(url: str) -> None:
    name = poller_lock_name("123456:secret-part")
    assert name == "poller:123456"
    first, second = PgLeaderLock(url, name), PgLeaderLock(url, name)
    other_bot = PgLeaderLock(url, poller_lock_name("999:x"))
    try:
        assert await first.try_acquire() and first.held
        assert not await second.try_acquire()
        assert await other_bot.try_acquire()  # another bot's poller is another lock
        await _kill_session(first)
        await asyncio.wait_for(first.lost.wait(), 10)
        assert not first.held and not await first.check()
        assert await second.try_acquire()
        assert not await first.try_acquire()
    finally:
        for lock in (first, second, other_bot):
            await lock.release()


async def test_the_elected_poller_stops_at_once_when_its_connection_dies_and_another_takes_over(
    url: str,
) -> None:
    polling: list[str] = []
    events: list[str] = []
    seen = {event: asyncio.Event() for event in ("a stops", "b polls")}

    def election(who: str) -> PollerElection:
        def note(event: str) -> None:
            events.append(event)
            if event in seen:
                seen[event].set()

        async def start() -> None:
            polling.append(who)
            note(f"{who} polls")

        async def stop() -> None:
            if who in polling:
                polling.remove(who)
                note(f"{who} stops")

        return PollerElection(PgLeaderLock(url, "poller:1"), start, stop, retry=0.05, check=0.05)

    a, b = election("a"), election("b")
    await a.start()
    await b.start()
    try:
        assert polling == ["a"] and a.leading and not b.leading
        await _kill_session(a.lock)
        await asyncio.wait_for(asyncio.gather(*(event.wait() for event in seen.values())), 10)
        assert events[0] == "a polls" and sorted(events[1:]) == ["a stops", "b polls"]
        assert polling == ["b"] and not a.leading and b.leading
    finally:
        await a.stop()
        await b.stop()
    assert polling == []
