"""Fault injection: rates, scripted faults, latency, dropped connections, stuck tasks, counters."""

import httpx
import pytest

from api_client.emulator import EmulatorConfig, Fault

from ._support import RESULT, SUBMIT, EmulatorClient, FakeTime


@pytest.mark.parametrize(
    "rate_field, http_status, code",
    [("rate_429", 429, 50429), ("rate_430", 429, 50430), ("rate_500", 500, 50500)],
)
async def test_full_rate_answers_the_fault(
    emu: EmulatorClient, rate_field: str, http_status: int, code: int
) -> None:
    setattr(emu.state.faults, rate_field, 1.0)
    response = await emu.submit()
    assert (response.status_code, response.json()["code"]) == (http_status, code)
    assert emu.state.submits_received == 1 and not emu.state.tasks


async def test_partial_rate_is_seeded_and_repeatable(fake_time: FakeTime) -> None:
    outcomes = []
    for _ in range(2):
        config = EmulatorConfig(access_key="AKtest", secret_key="SKtest", clock=fake_time,
                                fault_rate_429=0.5, rng_seed=7)
        emu = EmulatorClient(config, fake_time)
        outcomes.append([(await emu.submit()).status_code for _ in range(12)])
        await emu.http.aclose()
    assert outcomes[0] == outcomes[1]
    assert {200, 429} == set(outcomes[0])


async def test_faults_can_be_limited_to_one_action(emu: EmulatorClient) -> None:
    task_id = await emu.submit_id()
    emu.state.faults.actions = frozenset({SUBMIT})
    emu.state.faults.rate_500 = 1.0
    assert (await emu.result(task_id)).status_code == 200
    assert (await emu.submit()).status_code == 500


async def test_scripted_faults_apply_once_in_order(emu: EmulatorClient) -> None:
    emu.state.faults.push(Fault.CONCURRENCY, SUBMIT)
    emu.state.faults.push(Fault.THROTTLED)
    task_id_response = await emu.submit()
    assert task_id_response.json()["code"] == 50430
    assert (await emu.result("1")).json()["code"] == 50429
    assert (await emu.submit()).json()["code"] == 10000


async def test_faults_come_after_authentication(emu: EmulatorClient) -> None:
    emu.state.faults.rate_429 = 1.0
    response = await emu.raw(SUBMIT, b"{}", sk="wrong")
    assert response.status_code == 401


async def test_latency_uses_the_injected_sleep(emu: EmulatorClient) -> None:
    emu.state.faults.latency_seconds = 2.5
    await emu.submit()
    assert emu.time.sleeps == [2.5]


async def test_dropped_connection_is_a_transport_error_and_creates_nothing(emu: EmulatorClient) -> None:
    emu.state.faults.push(Fault.DROP, SUBMIT)
    with pytest.raises(httpx.TransportError):
        await emu.submit()
    assert emu.state.submits_received == 1 and not emu.state.tasks
    assert emu.state.calls[-1].http_status is None


async def test_drop_after_processing_leaves_the_task_behind(emu: EmulatorClient) -> None:
    emu.state.faults.push(Fault.DROP_AFTER, SUBMIT)
    with pytest.raises(httpx.RemoteProtocolError):
        await emu.submit()
    assert len(emu.state.tasks) == 1  # the submit happened: the outcome is unknown to the client


async def test_drop_rate_with_drop_after_processing(emu: EmulatorClient) -> None:
    emu.state.faults.drop_rate = 1.0
    emu.state.faults.drop_after_processing = True
    with pytest.raises(httpx.RemoteProtocolError):
        await emu.submit()
    assert len(emu.state.tasks) == 1


async def test_stuck_tasks_stay_in_queue(emu: EmulatorClient) -> None:
    emu.state.faults.stuck_rate = 1.0
    task_id = await emu.submit_id()
    emu.time.advance(3600)
    assert (await emu.result(task_id)).json()["data"]["status"] == "in_queue"
    assert emu.state.tasks[task_id].stuck


async def test_clear_restores_normal_answers(emu: EmulatorClient) -> None:
    emu.state.faults.rate_500 = 1.0
    emu.state.faults.push(Fault.DROP)
    emu.state.faults.clear()
    assert (await emu.submit()).status_code == 200
    assert emu.state.received[RESULT] == 0
