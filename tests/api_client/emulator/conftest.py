from collections.abc import AsyncIterator

import pytest

from api_client.emulator import EmulatorConfig

from ._support import AK, SK, EmulatorClient, FakeTime


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def config(fake_time: FakeTime) -> EmulatorConfig:
    return EmulatorConfig(
        access_key=AK,
        secret_key=SK,
        queue_seconds=2.0,
        generate_seconds=5.0,
        clock=fake_time,
        sleep=fake_time.sleep,
    )


@pytest.fixture
async def emu(config: EmulatorConfig, fake_time: FakeTime) -> AsyncIterator[EmulatorClient]:
    client = EmulatorClient(config, fake_time)
    yield client
    await client.http.aclose()
