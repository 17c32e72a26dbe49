"""generate_jitter: each task runs at its own pace (for the polling benchmark's "5 s +- 30 %")."""

from __future__ import annotations

import pytest

from api_client.emulator import EmulatorConfig
from api_client.emulator.__main__ import parse_args

from ._support import AK, SK, EmulatorClient, FakeTime


def _client(jitter: float, seed: int = 0) -> EmulatorClient:
    time = FakeTime()
    config = EmulatorConfig(
        access_key=AK, secret_key=SK, queue_seconds=1.0, generate_seconds=4.0, generate_jitter=jitter,
        rng_seed=seed, clock=time, sleep=time.sleep,
    )
    return EmulatorClient(config, time)


async def _status(emu: EmulatorClient, task_id: str) -> str:
    status: str = (await emu.result(task_id)).json()["data"]["status"]
    return status


async def test_each_task_takes_its_own_time_within_the_jitter() -> None:
    emu = _client(0.3)
    ids = [await emu.submit_id() for _ in range(20)]
    paces = [emu.state.tasks[i].pace for i in ids]
    assert all(0.7 <= p <= 1.3 for p in paces) and max(paces) - min(paces) > 0.3
    task = emu.state.tasks[ids[0]]
    emu.time.advance(1.0 * task.pace - 0.01)
    assert await _status(emu, ids[0]) == "in_queue"
    emu.time.advance(0.02)
    assert await _status(emu, ids[0]) == "generating"
    emu.time.now = emu.state.store.done_at(task) - 0.01
    assert await _status(emu, ids[0]) == "generating"
    emu.time.advance(0.02)
    assert await _status(emu, ids[0]) == "done"
    await emu.http.aclose()


async def test_same_seed_same_paces_and_jitter_leaves_the_ids_alone() -> None:
    first, second, plain = _client(0.3, seed=5), _client(0.3, seed=5), _client(0.0, seed=5)
    runs = []
    for emu in (first, second, plain):
        ids = [await emu.submit_id() for _ in range(5)]
        runs.append((ids, [emu.state.tasks[i].pace for i in ids]))
        await emu.http.aclose()
    assert runs[0] == runs[1]
    assert runs[2][0] == runs[0][0] and runs[2][1] == [1.0] * 5


async def test_slowing_the_service_down_moves_running_tasks_too() -> None:
    emu = _client(0.0)
    task_id = await emu.submit_id()
    emu.time.advance(5.5)
    emu.state.config.generate_seconds = 11.0
    assert await _status(emu, task_id) == "generating"
    assert emu.state.store.done_at(emu.state.tasks[task_id]) == emu.state.tasks[task_id].submitted_at + 12.0
    await emu.http.aclose()


def test_jitter_flag_and_its_bounds() -> None:
    config, *_ = parse_args(["--generate-jitter", "0.3"])
    assert config.generate_jitter == 0.3
    assert parse_args([])[0].generate_jitter == 0.0
    for bad in (-0.1, 1.0):
        with pytest.raises(ValueError):
            EmulatorConfig(generate_jitter=bad)
