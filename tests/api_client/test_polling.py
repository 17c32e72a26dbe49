"""wait(): poll schedule, not_found grace, deadline, progress reports and cancellation, on a fake clock."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterable

import pytest

from api_client.clock import FakeClock
from api_client.errors import PollDeadlineExceeded, RiskRejected, RiskStage, TaskNotFound
from api_client.models import TaskResult, TaskStatus
from api_client.polling import PollSchedule, wait

Q, G, D, N = TaskStatus.IN_QUEUE, TaskStatus.GENERATING, TaskStatus.DONE, TaskStatus.NOT_FOUND


class Script:
    """A poll function answering the given statuses in order (the last one repeats), recording poll times."""

    def __init__(self, clock: FakeClock, statuses: Iterable[TaskStatus]) -> None:
        self.clock = clock
        self.statuses = list(statuses)
        self.times: list[float] = []

    async def __call__(self) -> TaskResult:
        self.times.append(self.clock.monotonic())
        status = self.statuses[min(len(self.times), len(self.statuses)) - 1]
        images = (b"jpeg",) if status is D else ()
        return TaskResult(status, images=images, request_id=f"r{len(self.times)}")


class Recorder:
    def __init__(self) -> None:
        self.seen: list[TaskStatus] = []

    async def __call__(self, status: TaskStatus) -> None:
        self.seen.append(status)


def test_schedule_delays_grow_then_cap() -> None:
    delays = list(itertools.islice(PollSchedule().delays(), 7))
    assert delays == [1.5, 2.25, 3.375, 5.0, 5.0, 5.0, 5.0]
    custom = list(itertools.islice(PollSchedule(first_delay=1, factor=2, max_delay=3).delays(), 4))
    assert custom == [1, 2, 3, 3]


@pytest.mark.parametrize(
    "fields", [{"first_delay": -1}, {"factor": 0.5}, {"max_delay": 0}, {"not_found_grace": -1}]
)
def test_schedule_rejects_nonsense(fields: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        PollSchedule(**fields)


async def test_polls_on_schedule_and_reports_each_change_once() -> None:
    clock = FakeClock()
    poll = Script(clock, [Q, Q, G, G, G, D])
    progress = Recorder()
    result = await wait(poll, clock=clock, on_progress=progress)
    assert result.status is D and result.images == (b"jpeg",) and result.request_id == "r6"
    assert clock.sleeps == [1.5, 2.25, 3.375, 5.0, 5.0, 5.0]
    assert poll.times == [1.5, 3.75, 7.125, 12.125, 17.125, 22.125]
    assert progress.seen == [Q, G, D]


async def test_custom_schedule_is_used() -> None:
    clock = FakeClock()
    poll = Script(clock, [G, G, D])
    await wait(poll, clock=clock, schedule=PollSchedule(first_delay=0.5, factor=2.0, max_delay=1.0))
    assert clock.sleeps == [0.5, 1.0, 1.0]


async def test_brief_not_found_after_submit_is_tolerated_and_not_reported() -> None:
    clock = FakeClock()
    poll = Script(clock, [N, N, Q, D])
    progress = Recorder()
    result = await wait(poll, clock=clock, on_progress=progress)
    assert result.status is D
    assert progress.seen == [Q, D]


async def test_not_found_becomes_final_after_the_grace_period() -> None:
    clock = FakeClock()
    poll = Script(clock, [N])
    with pytest.raises(TaskNotFound) as info:
        await wait(poll, clock=clock, task_id="T1")
    # First not_found at 1.5 s; readings at 3.75, 7.125 are within 10 s of it; 12.125 is not.
    assert poll.times == [1.5, 3.75, 7.125, 12.125]
    assert "T1" in info.value.message


async def test_not_found_grace_restarts_after_another_status() -> None:
    clock = FakeClock()
    schedule = PollSchedule(first_delay=1, factor=1, max_delay=1, not_found_grace=2.5)
    poll = Script(clock, [N, N, Q, N, N, N, N, D])
    with pytest.raises(TaskNotFound):
        await wait(poll, clock=clock, schedule=schedule)
    # not_found at 4, 5, 6 s is within 2.5 s of 4 s; the one at 7 s ends it. Without the reset at 3 s
    # (in_queue), the reading at 4 s would already be 3 s after the first streak began.
    assert poll.times == [1, 2, 3, 4, 5, 6, 7]


async def test_deadline_with_a_last_poll_at_the_deadline() -> None:
    clock = FakeClock()
    poll = Script(clock, [Q])
    with pytest.raises(PollDeadlineExceeded):
        await wait(poll, clock=clock, deadline=10.0)
    assert clock.sleeps == [1.5, 2.25, 3.375, 2.875]
    assert poll.times[-1] == pytest.approx(10.0)
    assert clock.monotonic() == pytest.approx(10.0)


async def test_deadline_beats_not_found_grace() -> None:
    clock = FakeClock()
    poll = Script(clock, [N])
    with pytest.raises(PollDeadlineExceeded):
        await wait(poll, clock=clock, deadline=4.0)


async def test_error_from_a_poll_propagates() -> None:
    clock = FakeClock()

    async def poll() -> TaskResult:
        raise RiskRejected("Post Img Risk Not Pass", stage=RiskStage.OUTPUT_IMAGE, code=50511)

    with pytest.raises(RiskRejected) as info:
        await wait(poll, clock=clock)
    assert info.value.stage is RiskStage.OUTPUT_IMAGE


async def test_failing_progress_callback_does_not_lose_the_result(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()

    async def broken(status: TaskStatus) -> None:
        raise RuntimeError("chat message vanished")

    result = await wait(Script(clock, [Q, D]), clock=clock, on_progress=broken)
    assert result.status is D
    assert "progress callback failed" in caplog.text


class BlockingClock(FakeClock):
    """A clock whose sleeps never end by themselves, so a test can cancel a waiter mid-sleep."""

    def __init__(self) -> None:
        super().__init__()
        self.sleeping = asyncio.Event()

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.sleeping.set()
        await asyncio.Event().wait()


async def test_cancel_while_sleeping_propagates_cleanly() -> None:
    clock = BlockingClock()
    poll = Script(clock, [Q])
    before = asyncio.all_tasks()
    waiter = asyncio.create_task(wait(poll, clock=clock))
    await clock.sleeping.wait()
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert poll.times == []
    assert asyncio.all_tasks() == before  # nothing left running


async def test_cancel_during_a_poll_propagates_cleanly() -> None:
    clock = FakeClock()
    started = asyncio.Event()

    async def slow_poll() -> TaskResult:
        started.set()
        await asyncio.Event().wait()
        raise AssertionError("never answers")

    before = asyncio.all_tasks()
    waiter = asyncio.create_task(wait(slow_poll, clock=clock))
    await started.wait()
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert waiter.cancelled()
    assert asyncio.all_tasks() == before
