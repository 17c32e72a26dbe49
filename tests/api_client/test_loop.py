"""`api_client.loop`: uvloop when it is installed, the standard loop (and no error) when it is not."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator

import pytest

from api_client import loop


@pytest.fixture
def default_policy() -> Iterator[None]:
    yield
    asyncio.set_event_loop_policy(None)


@pytest.fixture
def without_uvloop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # `import uvloop` now raises ImportError


async def _loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_without_uvloop_everything_falls_back(without_uvloop: None, default_policy: None) -> None:
    before = asyncio.get_event_loop_policy()
    assert loop.fast_loop_factory() is None
    assert loop.install_fast_loop() is False
    assert asyncio.get_event_loop_policy() is before
    assert loop.run(_loop_module()).startswith("asyncio")


def test_with_uvloop_new_loops_are_uvloop(default_policy: None) -> None:
    pytest.importorskip("uvloop")
    assert loop.fast_loop_factory() is not None
    assert loop.run(_loop_module()).startswith("uvloop")
    assert loop.install_fast_loop() is True
    assert asyncio.run(_loop_module()).startswith("uvloop")  # programs that create their own loop too
