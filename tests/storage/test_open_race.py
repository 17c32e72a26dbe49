"""Several processes opening one database at once: all of them start, and each migration runs once.

Real processes, not coroutines: the race is between SQLite connections of different processes (the bot, a
second worker, an admin command, the container's health check), each reading the schema version and then
migrating. The children start, report "ready", and all open the file only when the test says "go", so
the opens really overlap.
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
from pathlib import Path

import pytest

from storage.migrate import available

ROOT = Path(__file__).resolve().parents[2]
OPENERS = 4

_CHILD = """
import asyncio, sys
sys.path.insert(0, sys.argv[2])
from storage import Store

async def main() -> None:
    print("ready", flush=True)
    sys.stdin.readline()
    store = await Store.open(sys.argv[1], quota_timezone="Asia/Shanghai")
    print("opened", store.schema_version, flush=True)
    await store.close()

asyncio.run(main())
"""


async def _open_together(path: Path, count: int) -> list[tuple[int | None, str, str]]:
    pipe = asyncio.subprocess.PIPE
    children = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", _CHILD, str(path), str(ROOT), stdin=pipe, stdout=pipe, stderr=pipe
        )
        for _ in range(count)
    ]
    for child in children:
        assert child.stdout is not None
        assert (await child.stdout.readline()).strip() == b"ready"
    for child in children:  # every child is waiting on stdin: release them as close together as we can
        assert child.stdin is not None
        child.stdin.write(b"go\n")
    results = []
    for child in children:
        out, err = await child.communicate()
        results.append((child.returncode, out.decode(), err.decode()))
    return results


@pytest.mark.timeout(60)
async def test_processes_opening_a_new_database_together_all_start(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    results = await _open_together(path, OPENERS)
    for code, out, err in results:
        assert code == 0, err
        assert out.strip().endswith(str(available()[-1].version))
    with sqlite3.connect(path) as conn:
        versions = [row[0] for row in conn.execute("SELECT version FROM schema_version ORDER BY version")]
    assert versions == [m.version for m in available()]  # each applied exactly once
