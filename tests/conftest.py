"""Fixtures shared by every test folder: PostgreSQL, where a test needs the server itself."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from storage import Store
from tests.pg import postgres_or_skip, temporary_schema


@pytest.fixture
def postgres() -> None:
    """Skips (or, in CI, fails) when the server is unreachable. A sync fixture on purpose: the probe runs
    its own event loop, which it cannot do from inside the test's."""
    postgres_or_skip()


@pytest.fixture
async def migrated_pg_url(postgres: None) -> AsyncIterator[str]:
    """The URL of a fresh schema with every migration applied, dropped after the test."""
    async with temporary_schema() as schema_url:
        await (await Store.open(schema_url)).close()
        yield schema_url
