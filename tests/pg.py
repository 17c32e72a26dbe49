"""PostgreSQL for tests: is the server there, and a fresh schema per test, dropped afterwards.

The server is `PORTRAIT_BOT_TEST_DATABASE_URL` (default: the local trust-auth server's `test` database).
Where it is unreachable the PostgreSQL cases skip with the reason shown by `-ra`; CI sets
`PORTRAIT_BOT_REQUIRE_POSTGRES=1` (.ci/run), which turns that skip into a failure, so a CI machine whose
PostgreSQL is down cannot pass by skipping half the storage suite.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import cache
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

SERVER_URL = os.environ.get("PORTRAIT_BOT_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
REQUIRED = os.environ.get("PORTRAIT_BOT_REQUIRE_POSTGRES") == "1"


@cache
def unreachable() -> str | None:
    """Why the test server cannot be used (None: it can); asked once per test session."""

    async def probe() -> None:
        conn = await asyncpg.connect(SERVER_URL, timeout=5)
        await conn.close()

    try:
        asyncio.run(probe())
    except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def postgres_or_skip() -> None:
    reason = unreachable()
    if reason is None:
        return
    where = urlsplit(SERVER_URL)._replace(netloc=urlsplit(SERVER_URL).hostname or "").geturl()
    message = f"PostgreSQL at {where} is unreachable ({reason})"
    if REQUIRED:
        pytest.fail(f"{message}, and PORTRAIT_BOT_REQUIRE_POSTGRES=1 requires it", pytrace=False)
    pytest.skip(f"{message}; set PORTRAIT_BOT_TEST_DATABASE_URL to run the PostgreSQL cases")


def schema_url(name: str) -> str:
    """SERVER_URL with `search_path` set to one schema (what Store.open then works in)."""
    parts = urlsplit(SERVER_URL)
    query = "&".join(p for p in (parts.query, f"search_path={name}") if p)
    return urlunsplit(parts._replace(query=query))


@asynccontextmanager
async def temporary_schema() -> AsyncIterator[str]:
    """CREATE SCHEMA t_<random>; yields its URL; DROP SCHEMA ... CASCADE at the end, whatever happened."""
    name = f"t_{secrets.token_hex(6)}"
    conn = await asyncpg.connect(SERVER_URL)
    try:
        await conn.execute(f"CREATE SCHEMA {name}")
        try:
            yield schema_url(name)
        finally:
            await conn.execute(f"DROP SCHEMA {name} CASCADE")
    finally:
        await conn.close()
