"""Throttle pacing, concurrency cap and cancellation safety, all on fake clocks (no real sleeps)."""

from __future__ import annotations

import asyncio
import math

import pytest

from api_client.clock import Clock, FakeClock, SystemClock
from api_client.throttle import Throttle


class GateClock:
    """A clock whose sleep blocks until the test advances time past the deadline (for cancellation tests)."""

    def __init__(self) -> None:
        self.time = 0.0
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def now(self) -> float:
        return 1_704_067_200.0 + self.time

    def monotonic(self) -> float:
        return self.time

    async def sleep(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sleepers.append((self.time + seconds, future))
        await future

    @property
    def sleeping(self) -> int:
        return sum(1 for _, f in self._sleepers if not f.done())

    async def advance(self, seconds: float) -> None:
        self.time += seconds
        for deadline, future in self._sleepers:
            if deadline <= self.time + 1e-12 and not future.done():
                future.set_result(None)
        self._sleepers = [(d, f) for d, f in self._sleepers if not f.done()]
        await settle()


async def settle(rounds: int = 20) -> None:
    """Let every ready task run until it blocks again."""
    for _ in range(rounds):
        await asyncio.sleep(0)


@pytest.mark.parametrize("qps", [5.0, 2.0, 2.5, 0.5, 10.0, 1.0])
async def test_sequential_acquisitions_take_n_minus_burst_over_qps(qps: float) -> None:
    clock = FakeClock()
    throttle = Throttle(qps, 1, clock)
    n = 25
    for _ in range(n):
        await throttle.acquire_request()
    burst = max(1.0, qps)
    assert clock.monotonic() == pytest.approx((n - burst) / qps)


async def test_burst_is_free_then_one_token_per_interval() -> None:
    clock = FakeClock()
    throttle = Throttle(4.0, 1, clock)
    times = []
    for _ in range(8):
        await throttle.acquire_request()
        times.append(clock.monotonic())
    assert times == pytest.approx([0, 0, 0, 0, 0.25, 0.5, 0.75, 1.0])


async def test_concurrent_callers_are_paced_and_served_in_arrival_order() -> None:
    clock = FakeClock()
    qps, n = 3.0, 30
    throttle = Throttle(qps, 1, clock)
    served: list[tuple[int, float]] = []

    async def caller(i: int) -> None:
        async with throttle.request_slot():
            served.append((i, clock.monotonic()))

    await asyncio.gather(*(caller(i) for i in range(n)))
    assert [i for i, _ in served] == list(range(n))
    for k, (_, at) in enumerate(served, start=1):
        assert at >= (k - qps) / qps - 1e-9, "never more than burst + qps*t tokens by time t"
    assert clock.monotonic() == pytest.approx((n - qps) / qps)


async def test_idle_time_refills_only_up_to_the_burst() -> None:
    clock = FakeClock()
    throttle = Throttle(2.0, 1, clock)
    for _ in range(2):
        await throttle.acquire_request()
    clock.advance(3600)
    assert throttle.tokens() == pytest.approx(2.0)
    start = clock.monotonic()
    for _ in range(4):
        await throttle.acquire_request()
    assert clock.monotonic() - start == pytest.approx(1.0)


async def test_hold_off_makes_every_caller_wait() -> None:
    clock = FakeClock()
    throttle = Throttle(10.0, 1, clock)
    throttle.hold_off(3.0)
    await throttle.acquire_request()
    assert clock.monotonic() == pytest.approx(3.0)
    throttle.hold_off(1.0)
    throttle.hold_off(0.5)  # a shorter hold never shortens a longer one
    await throttle.acquire_request()
    assert clock.monotonic() == pytest.approx(4.0)


async def test_task_slots_never_exceed_the_limit() -> None:
    clock = FakeClock()
    throttle = Throttle(100.0, 3, clock)
    running = 0
    peak = 0

    async def task(i: int) -> None:
        nonlocal running, peak
        async with throttle.task_slot():
            running += 1
            peak = max(peak, running)
            assert throttle.tasks_in_flight == running <= 3
            for _ in range(1 + i % 4):
                await clock.sleep(1.0)
            running -= 1

    await asyncio.gather(*(task(i) for i in range(20)))
    assert peak == 3
    assert throttle.tasks_in_flight == 0


async def test_task_slot_is_released_when_the_body_raises() -> None:
    throttle = Throttle(1.0, 1, FakeClock())
    with pytest.raises(RuntimeError):
        async with throttle.task_slot():
            raise RuntimeError("boom")
    assert throttle.tasks_in_flight == 0
    async with asyncio.timeout(5), throttle.task_slot():  # guard against a deadlock only
        assert throttle.tasks_in_flight == 1


async def test_cancelled_task_slot_waiter_takes_no_slot() -> None:
    throttle = Throttle(1.0, 2, FakeClock())
    release = asyncio.Event()

    async def holder() -> None:
        async with throttle.task_slot():
            await release.wait()

    holders = [asyncio.create_task(holder()) for _ in range(2)]
    await settle()
    waiter = asyncio.create_task(holder())
    await settle()
    assert not waiter.done() and throttle.tasks_in_flight == 2
    waiter.cancel()
    await settle()
    assert waiter.cancelled()
    release.set()
    await asyncio.gather(*holders)
    assert throttle.tasks_in_flight == 0

    # exactly two slots exist afterwards: not fewer (leak) and not more (double release)
    release.clear()
    again = [asyncio.create_task(holder()) for _ in range(3)]
    await settle()
    assert throttle.tasks_in_flight == 2
    assert sum(t.done() for t in again) == 0
    release.set()
    await asyncio.gather(*again)
    assert throttle.tasks_in_flight == 0


async def test_cancelled_request_waiter_takes_no_token() -> None:
    clock = GateClock()
    throttle = Throttle(1.0, 1, clock)
    await throttle.acquire_request()  # the burst token, at t=0

    sleeping = asyncio.create_task(throttle.acquire_request())  # head of the queue, sleeps for 1 s
    await settle()
    queued = asyncio.create_task(throttle.acquire_request())  # waits on the FIFO behind it
    await settle()
    assert clock.sleeping == 1 and not queued.done()

    sleeping.cancel()
    await settle()
    assert sleeping.cancelled()
    await clock.advance(1.0)
    assert queued.done() and not queued.cancelled()
    assert clock.time == pytest.approx(1.0), "the cancelled waiter's token went to the next in line"
    assert throttle.tokens() == pytest.approx(0.0, abs=1e-9)


async def test_cancelled_queued_waiter_does_not_block_the_queue() -> None:
    clock = GateClock()
    throttle = Throttle(1.0, 1, clock)
    await throttle.acquire_request()
    first = asyncio.create_task(throttle.acquire_request())
    await settle()
    middle = asyncio.create_task(throttle.acquire_request())
    last = asyncio.create_task(throttle.acquire_request())
    await settle()
    middle.cancel()
    await clock.advance(1.0)
    assert first.done() and middle.cancelled() and not last.done()
    await clock.advance(1.0)
    assert last.done()
    assert clock.time == pytest.approx(2.0)


@pytest.mark.parametrize(("qps", "tasks"), [(0.0, 1), (-1.0, 1), (1.0, 0)])
def test_invalid_limits_are_refused(qps: float, tasks: int) -> None:
    with pytest.raises(ValueError):
        Throttle(qps, tasks, FakeClock())


# --- FakeClock, which the whole project's tests rely on ---


async def test_fake_clock_sleep_advances_both_clocks_and_records() -> None:
    clock = FakeClock(1000.0, monotonic_start=5.0)
    await clock.sleep(2.5)
    await clock.sleep(-1.0)
    clock.advance(0.5)
    assert clock.now() == 1003.0 and clock.monotonic() == 8.0
    assert clock.sleeps == [2.5, 0.0]
    assert math.isclose(clock.slept, 2.5)
    with pytest.raises(ValueError):
        clock.advance(-1)


async def test_fake_clock_sleep_yields_to_other_tasks() -> None:
    clock = FakeClock()
    order: list[str] = []

    async def other() -> None:
        order.append("other")

    task = asyncio.create_task(other())
    await clock.sleep(10)
    order.append("after sleep")
    await task
    assert order == ["other", "after sleep"]


def test_both_clocks_satisfy_the_protocol() -> None:
    assert isinstance(FakeClock(), Clock)
    assert isinstance(SystemClock(), Clock)
    real = SystemClock()
    assert real.monotonic() <= real.monotonic()
